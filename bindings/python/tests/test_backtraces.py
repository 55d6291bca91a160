"""Exit.stopped_at: where each thread was when the run's end stopped it, in the function
names and module offsets of the bytes the host loaded."""

import os
import re
import subprocess
import sys
import threading
from types import MappingProxyType

import pytest

import guests
import wasithreads as wt
import wasm as w

# Imports are functions 0 (thread-spawn) and 1 (poll_oneoff); then spin 2, waiter 3,
# sleeper 4, place 5, thread_start 6, main 7. In WAT:
#
#   (func $spin (loop $l (br $l)))
#   (func $waiter (drop (memory.atomic.wait32 (i32.const 0x80) (i32.const 0) (i64.const -1))))
#   (func $sleeper  ;; poll_oneoff on one relative monotonic clock of an hour
#     (i64.store (i32.const 0x200) (i64.const 0))         ;; userdata
#     (i32.store8 (i32.const 0x208) (i32.const 0))        ;; tag: clock
#     (i32.store (i32.const 0x210) (i32.const 1))         ;; clock id: monotonic
#     (i64.store (i32.const 0x218) (i64.const 3600000000000))
#     (i64.store (i32.const 0x220) (i64.const 0))         ;; precision
#     (i32.store16 (i32.const 0x228) (i32.const 0))       ;; flags: relative
#     (drop (call $poll (i32.const 0x200) (i32.const 0x300) (i32.const 1) (i32.const 0x100))))
#   (func $place (param i32)  ;; 0: spin, 1: waiter, 2: sleeper
#     (block (block (block (br_table 0 1 2 (local.get 0)))
#       (call $spin) (return))
#       (call $waiter) (return))
#     (call $sleeper))
#   (func $thread_start (export "wasi_thread_start") (param i32 i32)
#     (drop (i32.atomic.rmw.add (i32.const 0x40) (i32.const 1)))
#     (call $place (local.get 1)))
#   (func $main (export "_start") (local $i i32)  ;; 6 threads, thread n in place (n-1) % 3
#     (loop $l
#       (drop (call $spawn (i32.rem_u (local.get $i) (i32.const 3))))
#       (local.set $i (i32.add (local.get $i) (i32.const 1)))
#       (br_if $l (i32.lt_u (local.get $i) (i32.const 6))))
#     (loop $arrived (br_if $arrived (i32.ne (i32.atomic.load (i32.const 0x40)) (i32.const 6))))
#     (call $waiter))
SPAWN, POLL, SPIN, WAITER, SLEEPER, PLACE = 0, 1, 2, 3, 4, 5
THREADS = 6
PLACES = [w.Func("spin", (), (), [w.LOOP, w.br(0), w.END]),
          w.Func("waiter", (), (), [w.i32_const(0x80), w.i32_const(0), w.i64_const(-1),
                                    w.memory_atomic_wait32(), w.DROP]),
          w.Func("sleeper", (), (), [
              w.i32_const(0x200), w.i64_const(0), w.i64_store(),
              w.i32_const(0x208), w.i32_const(0), w.i32_store8(),
              w.i32_const(0x210), w.i32_const(1), w.i32_store(),
              w.i32_const(0x218), w.i64_const(3600 * 10**9), w.i64_store(),
              w.i32_const(0x220), w.i64_const(0), w.i64_store(),
              w.i32_const(0x228), w.i32_const(0), w.i32_store16(),
              w.i32_const(0x200), w.i32_const(0x300), w.i32_const(1), w.i32_const(0x100), w.call(POLL),
              w.DROP])]
GUEST = w.assemble(
    [("wasi", "thread-spawn", (w.I32,), (w.I32,)),
     ("wasi_snapshot_preview1", "poll_oneoff", (w.I32,) * 4, (w.I32,))],
    [
        *PLACES,
        w.Func("place", (w.I32,), (), [
            w.BLOCK, w.BLOCK, w.BLOCK, w.local_get(0), w.br_table([0, 1], 2), w.END,
            w.call(SPIN), w.RETURN, w.END,
            w.call(WAITER), w.RETURN, w.END,
            w.call(SLEEPER)]),
        w.Func("thread_start", (w.I32, w.I32), (), [
            w.i32_const(0x40), w.i32_const(1), w.i32_atomic_rmw_add(), w.DROP,
            w.local_get(1), w.call(PLACE)], export="wasi_thread_start"),
        w.Func("main", (), (), [
            w.LOOP,
            w.local_get(0), w.i32_const(3), w.I32_REM_U, w.call(SPAWN), w.DROP,
            w.local_get(0), w.i32_const(1), w.I32_ADD, w.local_set(0),
            w.local_get(0), w.i32_const(THREADS), w.I32_LT_U, w.br_if(0),
            w.END,
            w.LOOP, w.i32_const(0x40), w.i32_atomic_load(), w.i32_const(THREADS), w.I32_NE, w.br_if(0), w.END,
            w.call(WAITER)], locals=(w.I32,), export="_start"),
    ])
assert [GUEST.index[f] for f in ("spin", "waiter", "sleeper", "place")] == [SPIN, WAITER, SLEEPER, PLACE]

FRAME = re.compile(r"^ +(\d+): (.+) \(module offset 0x([0-9a-f]+)\)$")


def frames(backtrace):
    """[(name, offset)] of a backtrace text, innermost first."""
    head, *lines = backtrace.splitlines()
    assert head == "wasm backtrace:", backtrace
    out = []
    for n, line in enumerate(lines):
        m = FRAME.match(line)
        assert m and int(m.group(1)) == n, f"frame line {line!r} in\n{backtrace}"
        out.append((m.group(2), int(m.group(3), 16)))
    return out


def check_stopped_where_they_were(exit):
    g = GUEST
    assert sorted(exit.stopped_at) == list(range(THREADS + 1)), exit
    for tid, backtrace in exit.stopped_at.items():
        got = frames(backtrace)
        names = [name for name, _ in got]
        if tid == 0:
            assert names == ["waiter", "main"], backtrace
            assert got[0][1] == g.offset("waiter", w.memory_atomic_wait32()), backtrace
            assert got[1][1] == g.offset("main", w.call(WAITER)), backtrace
            continue
        place = (tid - 1) % 3
        inner = PLACES[place].name
        assert names == [inner, "place", "thread_start"], f"thread {tid}:\n{backtrace}"
        at = got[0][1]
        if inner == "spin":
            # Stopped at the loop's interruption point: one of the loop's instructions.
            assert at in g.offsets("spin"), f"thread {tid} at {at:#x}:\n{backtrace}"
        elif inner == "waiter":
            assert at == g.offset("waiter", w.memory_atomic_wait32()), backtrace
        else:  # inside poll_oneoff: the frame is its caller, at the call
            assert at == g.offset("sleeper", w.call(POLL)), backtrace
        assert got[1][1] == g.offset("place", w.call([SPIN, WAITER, SLEEPER][place])), backtrace
        assert got[2][1] == g.offset("thread_start", w.call(PLACE)), backtrace


def test_timeout_says_where_each_thread_was_in_the_loaded_bytes(load):
    exit = load(GUEST.wasm).run(timeout=0.5)
    assert exit == wt.Exit(wt.ExitKind.TIMEOUT, 0, -1, None)  # stopped_at is not compared
    check_stopped_where_they_were(exit)
    assert isinstance(exit.stopped_at, MappingProxyType)
    with pytest.raises(TypeError):
        exit.stopped_at[0] = "x"  # read-only
    hash(exit)


def test_cancel_from_a_worker_thread_with_the_users_exit_callback(load, collect):
    # A run from a non-main thread with the user's callback (the start path), cancelled:
    # the user's callback still sees every thread, and stopped_at is filled as well.
    module = load(GUEST.wasm)
    with module.start(on_thread_exit=collect.thread_exit) as run:
        assert run.wait(timeout=0.3) is None
        run.cancel()
        exit = run.wait()
    assert exit.kind is wt.ExitKind.CANCELLED
    assert sorted(collect.events) == [(tid, "terminated", 0) for tid in range(THREADS + 1)]
    check_stopped_where_they_were(exit)


@pytest.mark.parametrize("daemon", [False, True])
def test_runs_from_worker_threads_record_backtraces_too(load, daemon):
    # A plain wt_run in a worker thread; the start path in a daemon thread.
    results = []
    t = threading.Thread(target=lambda: results.append(load(GUEST.wasm).run(timeout=0.3)), daemon=daemon)
    t.start()
    t.join()
    check_stopped_where_they_were(results[0])


def test_interpreter_exit_with_a_run_going_in_a_daemon_thread():
    # A daemon thread's run goes through the start path, so interpreter exit cancels and
    # joins it: its guest threads call the (Python) exit trampoline while the interpreter
    # is still intact, never once it is finalizing. The process exits cleanly.
    script = (
        f"import sys, threading, time; sys.path.insert(0, {os.path.dirname(__file__)!r})\n"
        "import test_backtraces as t, wasithreads as wt\n"
        "m = wt.Engine().load(t.GUEST.wasm)\n"
        "threading.Thread(target=lambda: m.run(timeout=60), daemon=True).start()\n"
        "time.sleep(0.3)\n"
        "print('leaving', flush=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=30, env=os.environ)
    assert (done.returncode, done.stdout, done.stderr) == (0, b"leaving\n", b"")


def test_a_normal_exit_has_no_backtraces(load, collect):
    exit = load(guests.printers(4)).run(stdout=wt.DEVNULL, on_thread_exit=collect.thread_exit)
    assert exit.ok and exit.stopped_at == {}
    assert len(collect.events) == 5
    assert load(guests.printers(2, exit_code=3)).run(stdout=wt.DEVNULL).stopped_at == {}


def test_the_trapping_thread_has_its_message_and_no_stopped_at_entry(load):
    exit = load(guests.TRAP_IN_THREAD).run()
    assert exit.kind is wt.ExitKind.TRAP
    assert exit.tid not in exit.stopped_at
    assert "wasm backtrace:" in exit.message
    for backtrace in exit.stopped_at.values():
        frames(backtrace)


def test_backtraces_false_records_nothing(load, collect):
    exit = load(GUEST.wasm).run(timeout=0.2, backtraces=False)
    assert exit.kind is wt.ExitKind.TIMEOUT and exit.stopped_at == {}
    exit = load(GUEST.wasm).run(timeout=0.2, backtraces=False, on_thread_exit=collect.thread_exit)
    assert exit.stopped_at == {} and len(collect.events) == THREADS + 1
