"""200 runs, and 100 instances, in a loop leave no thread and no file descriptor behind."""

import os
import threading
from pathlib import Path

import pytest

import guests
import wasithreads as wt


def count(path):
    return len(os.listdir(path))


def test_200_runs_do_not_grow_threads_or_fds(load, tmp_path):
    printers = load(guests.printers(4, exit_code=1))
    blocker = load(guests.blocker(2))
    stdin_file = tmp_path / "in.txt"
    stdin_file.write_bytes(b"x")
    out_file = open(tmp_path / "out.txt", "wb")  # noqa: SIM115 - closed below, before the count of fds

    def one(i):
        lines = []
        exit = printers.run(stdout=lambda tid, d: lines.append(d), stdin=stdin_file, stderr=out_file,
                            on_thread_exit=lambda tid, kind, code: None)
        assert exit.code == 1 and len(lines) == 5
        if i % 5 == 0:  # and runs collecting output
            assert printers.run(stdout=wt.PIPE, stderr=wt.PIPE).stdout.endswith(b"main done\n")
        if i % 10 == 0:  # also runs that are cancelled, and runs given up on with close()
            with blocker.start(stdout=wt.DEVNULL, timeout=0.001) as run:
                assert run.wait().kind is wt.ExitKind.TIMEOUT
            blocker.start(stdout=wt.DEVNULL).close()
            blocker.start(stdout=wt.PIPE).close()

    for i in range(20):  # warm up: let the library's thread pool reach its size
        one(i)
    threads, fds = count("/proc/self/task"), count("/proc/self/fd")
    for i in range(200):
        one(i)
    out_file.close()
    # File descriptors: exactly as before (minus the one just closed).
    assert count("/proc/self/fd") == fds - 1
    # Threads: the library keeps idle guest threads in a pool (they leave after 0.5 s
    # idle), so the count can differ by a thread or two from one moment to the next;
    # one run here uses at most 5. A leak of even one thread per run would add 200.
    assert count("/proc/self/task") <= threads + 5


def test_100_instances_do_not_grow_threads_or_fds(engine):
    module = engine.load(Path(__file__).resolve().parents[3] / "tests" / "guests" / "wat" / "plugin.wat")
    funcs = {"env": {"twice": wt.Func(lambda x: 2 * x, [int], [int]), "block": wt.Func(lambda: None, [], [])}}

    def one(i):
        with module.instantiate(imports=funcs, stdout=wt.PIPE) as inst:
            assert inst.exports.spawn_twice(i) == 2 * i
            callers = [threading.Thread(target=lambda: inst.exports.twice_plus(i)) for _ in range(2)]
            for t in callers:  # host threads that call once and exit
                t.start()
            for t in callers:
                t.join()
            if i % 3 == 0:
                inst.memory.view()  # a view dropped at once
            if i % 5 == 0:
                with pytest.raises(wt.InstanceEnded):
                    inst.exports.boom()

    for i in range(10):
        one(i)
    threads, fds = count("/proc/self/task"), count("/proc/self/fd")
    for i in range(100):
        one(i)
    assert count("/proc/self/fd") == fds
    assert count("/proc/self/task") <= threads + 5  # as above: idle pooled threads come and go
    module.close()
