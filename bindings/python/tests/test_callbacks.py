"""Callbacks from guest threads, and callbacks that raise."""

import gc
import sys
import threading
import time

import pytest

import guests
import wasithreads as wt


def test_callbacks_from_eight_guest_threads(load, collect):
    starts = []
    threads_seen = set()
    lock = threading.Lock()

    def on_start(tid):
        with lock:
            starts.append(tid)
            threads_seen.add(threading.get_ident())

    exit = load(guests.printers(8, exit_code=7)).run(
        stdout=collect.out, on_thread_start=on_start, on_thread_exit=collect.thread_exit
    )
    assert (exit.kind, exit.code, exit.tid) == (wt.ExitKind.CODE, 7, 0)
    assert sorted(starts) == list(range(9))
    assert collect.output == {0: b"main done\n", **{n + 1: f"line from thread {n}\n".encode() for n in range(8)}}
    assert sorted(collect.events) == [(0, "exited", 7)] + [(t, "returned", 0) for t in range(1, 9)]
    assert threading.get_ident() not in threads_seen  # callbacks ran on guest threads
    assert len(threads_seen) > 1


def test_thread_exit_kind_is_a_str_enum(load, collect):
    kinds = []
    load(guests.EXIT_IN_THREAD).run(on_thread_exit=lambda tid, kind, code: kinds.append((tid, kind)))
    assert all(type(kind) is wt.ThreadExitKind for _, kind in kinds)
    by_tid = dict(kinds)
    assert by_tid == {0: "terminated", 1: "terminated", 2: "exited"}  # the old strings still compare
    assert by_tid[2] is wt.ThreadExitKind.EXITED
    assert (f"{by_tid[2]}", str(by_tid[2]), f"{by_tid[2]:>8}") == ("exited", "exited", "  exited")
    assert {k.value for k in wt.ThreadExitKind} == {"returned", "exited", "trapped", "terminated"}
    assert wt.ThreadExitKind("trapped") is wt.ThreadExitKind.TRAPPED


def test_stdout_and_stderr_callbacks_are_separate(load):
    out, err = [], []
    exit = load(guests.ECHO).run(stdin=b"0123456789", stdout=lambda t, d: out.append((t, d)),
                                 stderr=lambda t, d: err.append((t, d)))
    assert exit.ok
    assert out == [(0, b"0123456"), (0, b"789")]
    assert err == [(0, b"<eof>")]


class Boom(Exception):
    pass


def test_raising_output_callback_cancels_and_raises_after_the_run(load, collect):
    def on_output(tid, data):
        raise Boom(f"bad output from {tid}: {data!r}")

    with pytest.raises(wt.CallbackError) as info:
        # Without the exception this guest would block forever.
        load(guests.blocker(3)).run(stdout=on_output, on_thread_exit=collect.thread_exit)
    err = info.value
    assert isinstance(err, wt.Error)
    assert isinstance(err.__cause__, Boom)
    assert str(err.__cause__) == "bad output from 0: b'ready\\n'"
    assert err.errors == [err.__cause__]
    assert err.exit == wt.Exit(wt.ExitKind.CANCELLED, 0, -1, None)
    assert "Boom" in str(err)
    # The run ended properly: every thread stopped and reported before run() raised.
    assert sorted(collect.events) == [(t, "terminated", 0) for t in range(4)]


def test_every_raising_exit_callback_is_reported(load):
    # The first exception cancels the run, so main may not spawn all 5 threads; every
    # thread that started gets its exit callback, and each of those raises.
    started = []

    def on_exit(tid, kind, code):
        raise Boom(tid)

    with pytest.raises(wt.CallbackError) as info:
        load(guests.printers(5)).run(stdout=wt.DEVNULL, on_thread_start=started.append, on_thread_exit=on_exit)
    assert sorted(e.args[0] for e in info.value.errors) == sorted(started)
    assert 0 in started and len(started) >= 2
    assert all(isinstance(e, Boom) for e in info.value.errors)


def test_raising_start_callback(load):
    def on_start(tid):
        if tid == 2:
            raise KeyError("two")

    with pytest.raises(wt.CallbackError) as info:
        load(guests.blocker(3)).run(stdout=wt.DEVNULL, on_thread_start=on_start)
    assert [type(e) for e in info.value.errors] == [KeyError]


def test_callback_error_is_raised_by_wait_each_time_and_by_close_if_unreported(load):
    def on_output(tid, data):
        raise Boom("x")

    module = load(guests.blocker(1))
    with module.start(stdout=on_output) as run:
        for _ in range(2):
            with pytest.raises(wt.CallbackError) as info:
                run.wait()
            assert info.value.exit.kind is wt.ExitKind.CANCELLED
    # Never waited for: leaving the block reports it.
    with pytest.raises(wt.CallbackError), module.start(stdout=on_output) as run:  # noqa: PT012 - raised on leaving
        while not run.done:  # ended (cancelled by the exception), not yet reported
            time.sleep(0.001)
    # An exception leaving the block wins; the callbacks' error is noted on it.
    with pytest.raises(RuntimeError) as info, module.start(stdout=on_output) as run:  # noqa: PT012 - raised on leaving
        while not run.done:
            time.sleep(0.001)
        raise RuntimeError("user error")
    if sys.version_info >= (3, 11):
        assert any("callbacks of the run also raised" in n for n in info.value.__notes__)


def test_callback_error_of_a_dropped_run_goes_to_unraisablehook(load, monkeypatch):
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: reported.append(u.exc_value))

    def on_output(tid, data):
        raise Boom("dropped")

    run = load(guests.blocker(1)).start(stdout=on_output)
    while not run.done:
        time.sleep(0.001)
    del run
    gc.collect()
    assert len(reported) == 1 and isinstance(reported[0], wt.CallbackError)
    assert isinstance(reported[0].__cause__, Boom)


def test_callback_may_cancel_its_own_run_but_not_wait_for_it(load):
    module = load(guests.blocker(2))
    seen = []
    holder = {}

    def on_output(tid, data):
        run = holder["run"]
        with pytest.raises(wt.Error, match="same run"):
            run.wait()
        seen.append(data)
        run.cancel()

    ready = threading.Event()
    run = module.start(stdout=lambda t, d: (ready.wait(), on_output(t, d)))
    holder["run"] = run
    ready.set()
    exit = run.wait()
    run.close()
    assert exit.kind is wt.ExitKind.CANCELLED
    assert seen == [b"ready\n"]
