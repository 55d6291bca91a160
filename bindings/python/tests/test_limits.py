"""Limits of a run (threads, descriptors, table elements, memory), diagnostics, the
teardown grace, core dumps and engine settings, each checked by what the guest sees."""

import gc
import threading
import time

import pytest

import guests
import wasithreads as wt
from wasithreads import _run

LIMIT_REACHED = "thread-spawn failed: the run's limit of 1 threads is reached"


def test_thread_limit_is_applied_and_said_in_diagnostics(load):
    # 3 spawns with room for 1: two fail, the guest exits with the number that failed.
    module = load(guests.spawner(3))
    assert module.run(timeout=5).code == 0
    exit = module.run(max_threads=1, timeout=5)
    assert (exit.kind, exit.code) == (wt.ExitKind.CODE, 2)
    assert exit.diagnostics == ((0, LIMIT_REACHED), (0, LIMIT_REACHED))


def test_on_diagnostic_is_called_as_it_happens(load):
    seen = []
    lock = threading.Lock()

    def on_diagnostic(tid, message):
        with lock:
            seen.append((tid, message, threading.get_ident()))

    exit = load(guests.spawner(2)).run(max_threads=0, on_diagnostic=on_diagnostic)
    assert exit.code == 2
    assert [(tid, message) for tid, message, _ in seen] == [(0, "thread-spawn failed: the run's thread limit is 0")] * 2
    assert list(exit.diagnostics) == [(tid, message) for tid, message, _ in seen]
    assert threading.get_ident() not in {ident for *_, ident in seen}  # on a guest thread


def test_raising_on_diagnostic_cancels_the_run(load):
    def on_diagnostic(tid, message):
        raise RuntimeError(message)

    with pytest.raises(wt.CallbackError) as info:
        load(guests.blocker(3)).run(max_threads=1, on_diagnostic=on_diagnostic)
    assert str(info.value.__cause__) == LIMIT_REACHED
    assert info.value.exit.kind is wt.ExitKind.CANCELLED


def test_descriptor_limit(load, tmp_path):
    module = load(guests.OPEN_UNTIL_FULL)
    mfile = 33  # WASI errno: too many open files
    # 256 by default: stdin, stdout, stderr and the directory, then 252 more.
    assert module.run(dirs={tmp_path: "/"}).code == 252 * 100 + mfile
    assert module.run(dirs={tmp_path: "/"}, max_fds=6).code == 2 * 100 + mfile
    with pytest.raises(wt.LimitError, match=r"descriptor limit \(3\) leaves no room"):
        module.run(dirs={tmp_path: "/"}, max_fds=3)
    with pytest.raises(ValueError):
        module.run(max_fds=-1)


def test_table_element_limit(load):
    module = load(guests.GROW_TABLE)  # exits 1 when growing its table by 1000 fails
    assert module.run().code == 0
    assert module.run(max_table_elements=1001).code == 0
    assert module.run(max_table_elements=1000).code == 1
    exit = module.run(max_table_elements=0)  # not even the initial table fits
    assert (exit.kind, exit.tid) == (wt.ExitKind.TRAP, 0)
    assert "table" in exit.message


def test_instance_limits_refuse_a_main_thread_that_does_not_fit(load):
    module = load(guests.GROW_TABLE)  # defines one memory
    assert module.run().code == 0
    with pytest.raises(wt.LimitError, match="limit of 0 private memories"):
        module.run(max_memories=0)
    with pytest.raises(wt.LimitError, match="instance memory limit"):
        module.run(max_instance_bytes=1)
    assert module.run(max_memories=1, max_instance_bytes=1 << 20).code == 0


def test_write_and_creation_caps_give_the_guest_dquot(load, tmp_path):
    module = load(guests.CREATE_AND_WRITE)
    dquot, badf = 19, 8
    assert module.run(dirs={tmp_path: "/"}).code == 0
    assert (tmp_path / "f").read_bytes() == b"hello"
    (tmp_path / "f").unlink()
    assert module.run(dirs={tmp_path: "/"}, max_files_created=0).code == dquot * 100 + badf
    assert module.run(dirs={tmp_path: "/"}, max_write_bytes=0).code == dquot
    assert module.run(dirs={tmp_path: "/"}, max_write_bytes=3, max_files_created=1).code == 0
    assert (tmp_path / "f").read_bytes() == b"hel"


def test_memory_limit_below_the_minimum_cannot_start(load):
    with pytest.raises(wt.LimitError, match="below the module's minimum memory"):
        load(guests.SPIN).run(max_memory=1000)


def test_teardown_grace_gives_up_on_a_stuck_callback_and_keeps_it_callable(load):
    release = threading.Event()
    exits = []

    def stuck(tid, data):  # the guest's "ready\n" write blocks here until released
        release.wait(10)

    start = time.monotonic()
    run = load(guests.blocker(0)).start(
        stdout=stuck, timeout=0.05, teardown_grace=0.1, on_thread_exit=lambda *event: exits.append(event)
    )
    exit = run.wait()
    waited = time.monotonic() - start
    assert exit.kind is wt.ExitKind.TIMEOUT
    assert 0.1 <= waited < 5  # the grace, not the default 5 s
    [(tid, message)] = exit.diagnostics
    assert tid == 0 and message.startswith("thread(s) 0 had not stopped 100 ms after the run ended")
    assert exits == []  # thread 0 is still in the callback
    kept = len(_run._abandoned)
    assert load(guests.printers(2)).run(stdout=lambda tid, data: None, teardown_grace=0.1).ok
    assert len(_run._abandoned) == kept  # a run whose threads all stopped frees its callbacks
    run.close()  # does not wait for thread 0 either
    assert len(_run._abandoned) == kept + 1  # the run's ctypes callbacks, kept for good
    del run
    gc.collect()
    # The abandoned thread returns from the callback it was in (the binding kept it
    # alive) and then stops without calling any other callback of the run: no
    # thread-exit callback after the run was freed.
    release.set()
    time.sleep(0.5)
    assert exits == []


def test_core_dump_of_a_trap(load, tmp_path):
    dump = tmp_path / "core.wasm"
    assert load(guests.printers(1)).run(stdout=wt.DEVNULL, coredump=dump).ok
    assert not dump.exists()  # only traps leave a dump
    exit = load(guests.TRAP_IN_MAIN).run(coredump=dump)
    assert exit.kind is wt.ExitKind.TRAP
    data = dump.read_bytes()
    assert data.startswith(b"\0asm\x01\0\0\0") and b"core" in data and b"corestack" in data
    with pytest.raises(wt.HostIOError) as info:
        load(guests.TRAP_IN_MAIN).run(coredump=tmp_path / "no" / "core.wasm")
    assert info.value.errno == 2


def test_epoch_interruption_engine_still_stops_busy_guests():
    with wt.Engine(epoch_interruption=True) as engine:
        spin = engine.load(guests.SPIN)
        start = time.monotonic()
        assert spin.run(timeout=0.1).kind is wt.ExitKind.TIMEOUT
        assert time.monotonic() - start < 2
        with spin.start() as run:
            run.cancel()
            assert run.wait(5).kind is wt.ExitKind.CANCELLED
