"""Timeouts, cancelling, waiting, Ctrl-C, lifetime of runs."""

import os
import signal
import socket
import threading

import pytest

import guests
import wasithreads as wt


def ready_event():
    ready = threading.Event()

    def on_output(tid, data):
        if data == b"ready\n":
            ready.set()

    return ready, on_output


def test_timeout(load, collect):
    exit = load(guests.blocker(3)).run(timeout=0.2, stdout=wt.DEVNULL, on_thread_exit=collect.thread_exit)
    assert exit == wt.Exit(wt.ExitKind.TIMEOUT, 0, -1, None)
    assert sorted(collect.events) == [(t, "terminated", 0) for t in range(4)]
    assert load(guests.SPIN).run(timeout=0.05).kind is wt.ExitKind.TIMEOUT
    with pytest.raises(ValueError):
        load(guests.SPIN).run(timeout=-1)


def test_cancel_from_another_python_thread(load, collect):
    ready, on_output = ready_event()
    run = load(guests.blocker(4)).start(stdout=on_output, on_thread_exit=collect.thread_exit)

    def canceller():
        ready.wait()
        run.cancel()

    t = threading.Thread(target=canceller)
    t.start()
    exit = run.wait()
    t.join()
    assert exit == wt.Exit(wt.ExitKind.CANCELLED, 0, -1, None)
    assert sorted(collect.events) == [(t, "terminated", 0) for t in range(5)]
    run.cancel()  # after the end: nothing happens
    assert run.wait() is exit
    run.close()
    run.close()
    run.cancel()  # after close: nothing happens
    assert run.wait() is exit  # the outcome is remembered


def test_wait_with_timeout_returns_none_while_running(load):
    ready, on_output = ready_event()
    with load(guests.blocker(1)).start(stdout=on_output) as run:
        ready.wait()
        assert run.wait(timeout=0) is None
        assert run.wait(timeout=0.05) is None
        assert not run.done
        run.cancel()
        exit = run.wait(timeout=60)
        assert exit.kind is wt.ExitKind.CANCELLED
        assert run.done


def test_wait_from_several_threads(load):
    ready, on_output = ready_event()
    run = load(guests.blocker(2)).start(stdout=on_output)
    results = []
    waiters = [threading.Thread(target=lambda: results.append(run.wait())) for _ in range(4)]
    for w in waiters:
        w.start()
    ready.wait()
    run.cancel()
    for w in waiters:
        w.join()
    assert len(results) == 4 and all(r is results[0] for r in results)
    assert results[0].kind is wt.ExitKind.CANCELLED
    run.close()


def test_leaving_with_block_cancels_and_joins(load, collect):
    ready, on_output = ready_event()
    with load(guests.blocker(3)).start(stdout=on_output, on_thread_exit=collect.thread_exit) as run:
        ready.wait()
    assert run.closed
    # Every guest thread has stopped and reported by the time the block is left.
    assert sorted(collect.events) == [(t, "terminated", 0) for t in range(4)]
    assert run.wait().kind is wt.ExitKind.CANCELLED


def test_dropping_a_run_cancels_it(load, collect):
    ready, on_output = ready_event()
    run = load(guests.blocker(2)).start(stdout=on_output, on_thread_exit=collect.thread_exit)
    ready.wait()
    del run  # __del__: cancel, join, free
    assert sorted(collect.events) == [(t, "terminated", 0) for t in range(3)]


def test_run_finishing_by_itself_in_start(load):
    out = []
    with load(guests.printers(3, exit_code=4)).start(stdout=lambda t, d: out.append(d)) as run:
        exit = run.wait()
    assert exit.code == 4 and len(out) == 4


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="needs the main thread")
def test_ctrl_c_cancels_the_run_and_raises_keyboard_interrupt(load, collect):
    ready, on_output = ready_event()

    def interrupt():
        ready.wait()
        os.kill(os.getpid(), signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    t = threading.Thread(target=interrupt)
    t.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            load(guests.blocker(3)).run(stdout=on_output, on_thread_exit=collect.thread_exit)
    finally:
        t.join()
        signal.signal(signal.SIGINT, previous)
    # run() cancelled the run and joined every guest thread before raising.
    assert sorted(collect.events) == [(t, "terminated", 0) for t in range(4)]


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="needs the main thread")
def test_ctrl_c_during_a_long_wait(load, collect):
    # The same after the short polling phase, while the wait is handed to a helper thread.
    ready, on_output = ready_event()
    run = load(guests.blocker(1)).start(stdout=on_output, on_thread_exit=collect.thread_exit)
    ready.wait()
    assert run.wait(timeout=0.05) is None  # past the polling phase
    timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run.wait()
    finally:
        timer.join()
        signal.signal(signal.SIGINT, previous)
    assert not run.done  # interrupting a wait does not end the run by itself
    run.close()
    assert sorted(collect.events) == [(0, "terminated", 0), (1, "terminated", 0)]


def test_max_threads_refuses_spawns_past_the_limit(load, collect):
    # One spawned thread allowed: thread 1 starts and blocks forever, the other two spawns
    # fail, so main never sees 3 threads counted in; the timeout ends the run.
    starts = []
    exit = load(guests.blocker(3)).run(max_threads=1, timeout=0.5, stdout=collect.out,
                                       on_thread_start=starts.append, on_thread_exit=collect.thread_exit)
    assert exit.kind is wt.ExitKind.TIMEOUT
    assert collect.output == {}
    assert sorted(starts) == [0, 1]
    assert sorted(collect.events) == [(0, "terminated", 0), (1, "terminated", 0)]


def test_runs_from_several_python_threads_at_once(load, tmp_path):
    # Off the main thread, a run without Python callbacks is a plain wt_run; with
    # callbacks it is start + wait. Both at once, on one module, from 4 threads.
    module = load(guests.printers(3, exit_code=9))
    errors, results = [], []

    def worker(n):
        try:
            for i in range(10):
                if i % 2:
                    out = []
                    exit = module.run(stdout=lambda tid, d: out.append(d))  # noqa: B023 - ends before the next iteration
                    assert sorted(out) == [b"line from thread 0\n", b"line from thread 1\n",
                                           b"line from thread 2\n", b"main done\n"]
                else:
                    path = tmp_path / f"out-{n}-{i}.txt"
                    exit = module.run(stdout=path)
                    assert sorted(path.read_bytes().splitlines()) == [
                        b"line from thread 0", b"line from thread 1", b"line from thread 2", b"main done"]
                results.append(exit)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 40 and all(r == wt.Exit(wt.ExitKind.CODE, 9, 0, None) for r in results)


def test_a_preopened_socket_serves_a_connection(load):
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with load(guests.SOCKET_HI).start(sockets=[server]) as run:
            with socket.create_connection(("127.0.0.1", port), timeout=60) as client:
                got = b""
                while chunk := client.recv(16):
                    got += chunk
            exit = run.wait()
        assert got == b"hi"
        assert (exit.kind, exit.code) == (wt.ExitKind.CODE, 0)
        # The host's listener stays open and listening.
        socket.create_connection(("127.0.0.1", port), timeout=60).close()


def test_sockets_by_address_and_refused_ones(load):
    exit = load(guests.FD3_FILETYPE).run(sockets=["127.0.0.1:0"])
    assert (exit.kind, exit.code) == (wt.ExitKind.CODE, 6)
    with pytest.raises(wt.UsageError):
        load(guests.FD3_FILETYPE).run(sockets=["localhost:80"])
    with open(os.devnull, "rb") as f, pytest.raises(wt.HostIOError):
        load(guests.FD3_FILETYPE).run(sockets=[f])
    with pytest.raises(TypeError):
        load(guests.FD3_FILETYPE).run(sockets="127.0.0.1:0")
