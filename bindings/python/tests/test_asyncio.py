"""asyncio: run_async, wait_async, and cancelling the task cancels the guest."""

import asyncio
import sys
import threading
import time

import pytest

import guests
import wasithreads as wt


def test_run_async_returns_the_exit_with_piped_output(load):
    async def main():
        return await load(guests.printers(3, exit_code=4)).run_async(stdout=wt.PIPE)

    exit = asyncio.run(main())
    assert exit == wt.Exit(wt.ExitKind.CODE, 4, 0)
    lines = exit.stdout.splitlines(keepends=True)
    assert sorted(lines[:3]) == [f"line from thread {n}\n".encode() for n in range(3)]
    assert lines[3:] == [b"main done\n"]  # main writes once every thread has counted in


def test_run_async_does_not_block_the_event_loop(load):
    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        t = asyncio.ensure_future(ticker())
        exit = await load(guests.SPIN).run_async(timeout=0.3)
        t.cancel()
        return exit, ticks

    exit, ticks = asyncio.run(main())
    assert exit.kind is wt.ExitKind.TIMEOUT
    assert ticks >= 3  # about 30; a loop blocked by the run would tick at most once


def _ticker_run(tmp_path, module):
    """A task running TICKER (3 threads writing without end) to a file, the file, the
    thread-exit events, and the tids started."""
    out = tmp_path / "ticks.txt"
    events, started = [], []
    lock = threading.Lock()

    def on_exit(tid, kind, code):
        with lock:
            events.append((tid, kind, code))

    task = asyncio.ensure_future(
        module.run_async(stdout=out, on_thread_exit=on_exit, on_thread_start=started.append)
    )
    return task, out, events, started


async def _until_all_write(out, started):
    """Until all three threads have started and 1000 bytes are written."""
    for _ in range(2000):
        if len(started) == 3 and out.exists() and out.stat().st_size >= 1000:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"the guest did not get going: threads {started}")


def test_cancelling_the_task_stops_the_guest_before_cancelled_error(load, tmp_path):
    module = load(guests.TICKER)

    async def main():
        task, out, events, started = _ticker_run(tmp_path, module)
        await _until_all_write(out, started)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # By now every guest thread has stopped and been joined: each one's exit callback
        # has run, and the output no longer grows.
        seen = sorted(events)
        size = out.stat().st_size
        await asyncio.sleep(0.1)
        return seen, size, out.stat().st_size, sorted(events)

    seen, size, later_size, later = asyncio.run(main())
    assert seen == [(tid, "terminated", 0) for tid in range(3)]
    assert later == seen
    assert later_size == size > 0
    assert size % 5 == 0  # whole "tick\n" writes only


def test_wait_for_timeout_cancels_the_guest(load, tmp_path):
    module = load(guests.TICKER)

    async def main():
        with module.start(stdout=tmp_path / "ticks.txt") as run:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(run.wait_async(), 0.1)
            assert run.done  # cancelled and joined before wait_for raised
            return await run.wait_async()

    exit = asyncio.run(main())
    assert exit == wt.Exit(wt.ExitKind.CANCELLED, 0, -1)


def test_shielded_wait_leaves_the_run_going(load):
    ready = threading.Event()

    def on_output(tid, data):
        ready.set()

    async def main():
        with load(guests.blocker(2)).start(stdout=on_output) as run:
            while not ready.is_set():
                await asyncio.sleep(0.005)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(run.wait_async()), 0.1)
            assert not run.done
            run.cancel()
            return await run.wait_async()

    assert asyncio.run(main()).kind is wt.ExitKind.CANCELLED


def test_many_tasks_wait_for_one_run_and_a_thread_too(load):
    async def main():
        with load(guests.SPIN).start(timeout=0.2) as run:
            from_thread = []
            t = threading.Thread(target=lambda: from_thread.append(run.wait()))
            t.start()
            exits = await asyncio.gather(*(run.wait_async() for _ in range(5)))
            t.join()
            return exits, from_thread

    exits, from_thread = asyncio.run(main())
    assert all(e is exits[0] for e in exits + from_thread)
    assert exits[0].kind is wt.ExitKind.TIMEOUT


def test_wait_async_after_the_end_and_after_close(load):
    async def main():
        run = load(guests.printers(1)).start(stdout=wt.DEVNULL)
        first = await run.wait_async()
        run.close()
        return first, await run.wait_async()

    first, again = asyncio.run(main())
    assert first is again and first.ok


def test_callback_error_from_run_async(load):
    def on_output(tid, data):
        raise RuntimeError("no output wanted")

    async def main():
        return await load(guests.blocker(2)).run_async(stdout=on_output)

    with pytest.raises(wt.CallbackError) as info:
        asyncio.run(main())
    assert isinstance(info.value.__cause__, RuntimeError)
    assert info.value.exit.kind is wt.ExitKind.CANCELLED


def test_run_async_is_a_coroutine_function_with_the_run_options(load):
    import inspect

    module = load(guests.SPIN)
    params = inspect.signature(module.run_async).parameters
    assert list(params) == list(inspect.signature(module.run).parameters)
    if sys.version_info >= (3, 12):  # inspect.markcoroutinefunction
        assert inspect.iscoroutinefunction(module.run_async)
    coro = module.run_async(timeout=0.01)
    assert inspect.iscoroutine(coro)
    assert asyncio.run(coro).kind is wt.ExitKind.TIMEOUT


def test_event_loop_in_a_worker_thread(load):
    # Another thread's loop: the wake-up crosses threads through call_soon_threadsafe.
    result = []

    def worker():
        result.append(asyncio.run(load(guests.printers(2)).run_async(stdout=wt.PIPE)))

    t = threading.Thread(target=worker)
    start = time.monotonic()
    t.start()
    t.join(10)
    assert not t.is_alive() and time.monotonic() - start < 10
    assert result[0].ok and result[0].stdout.endswith(b"main done\n")
