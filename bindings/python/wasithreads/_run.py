"""``Run``: a run in progress, waited for, cancelled and freed from any thread."""

from __future__ import annotations

import asyncio
import atexit
import threading
import time
from ctypes import byref, c_void_p
from typing import Callable

from . import _ffi, _waiter
from ._callbacks import RunState, current
from ._errors import CallbackError, Error, UsageError, check
from ._exit import Exit, ExitKind
from ._ffi import CFuncPtr, lib
from ._handle import Handle, live_runs

# A wait on the main thread blocks on a lock (see _waiter) in slices of _SLICE seconds, so
# that a signal that the kernel delivered to another thread still reaches the main
# thread's handler promptly.
_SLICE = 0.25


# The ctypes callbacks of runs whose end gave up waiting for a thread (teardown grace):
# that thread may still be inside one of them (the library starts no callback of a run
# after its end, but one already running goes on until it returns), so they are never
# freed.
_abandoned: list[list[CFuncPtr]] = []


def release_callbacks(state: RunState, keep: list[CFuncPtr]) -> None:
    """Drops a freed run's ctypes callbacks, or keeps them for good if a thread of the
    run may still call them."""
    if state.abandoned and keep:
        _abandoned.append(keep)


def end_run(ptr: int) -> None:
    """Cancels a run and joins its threads (interpreter exit, see _close_runs_at_exit)."""
    lib.wt_run_cancel(ptr)
    raw = _ffi.wt_exit_t()
    err = lib.wt_run_wait(ptr, byref(raw))
    if err:
        lib.wt_error_free(err)
    else:
        lib.wt_exit_clear(byref(raw))


def is_main_thread() -> bool:
    return threading.get_ident() == threading.main_thread().ident


class Run:
    """A run started with ``Module.start`` (``wt_run_t``).

    ``cancel``, ``wait`` and ``done`` may be called from any threads at once. Leaving a
    ``with`` block, ``close()``, or dropping the last reference cancels the run if it is
    still going, joins its guest threads and frees it.
    """

    def __init__(self) -> None:
        # Made by Module.start/run before the run starts; see Module._launch.
        self._state = RunState()
        self._keep: list[CFuncPtr] = []  # the ctypes callbacks: alive until wt_run_free returned
        self._out = c_void_p()  # filled by wt_run_start
        self._h: Handle | None = None
        self._exit: Exit | None = None
        self._lock = threading.Lock()
        # Released when _exit is set (made, acquired, by _start_waiter); each waiter that
        # gets it passes it on.
        self._done: threading.Lock | None = None
        self._helper_waits = False  # a helper thread has been given this run
        self._watchers: list[Callable[[], None]] = []  # called once _exit is set (wait_async)

    def _adopt(self) -> None:
        if self._h is not None or not self._out.value:
            return
        ptr = self._out.value
        self._h = Handle(ptr, lib.wt_run_free, "run", wake=lib.wt_run_cancel, end=end_run, pinned=self._state.pinned)
        state = self._state
        with state.lock:
            state.run_ptr = ptr
            pending = state.cancel_pending
        if pending:  # a callback raised before the run was handed to Python
            lib.wt_run_cancel(ptr)
        if len(live_runs) > 256:  # drop handles whose close was interrupted after the free
            live_runs.difference_update([h for h in live_runs if h.ptr is None])
        live_runs.add(self._h)

    # -- control

    def cancel(self) -> None:
        """Ends the run with ``ExitKind.CANCELLED`` unless it already ended; every guest
        thread is stopped within milliseconds. Returns at once; safe from any thread (also
        from the run's own callbacks), any number of times, also after the end."""
        h = self._h
        if h is None:
            return
        try:
            h.use(lib.wt_run_cancel)
        except Error:
            return  # closed: the run has ended

    @property
    def done(self) -> bool:
        """True once the run has ended and all its guest threads have been joined."""
        return self._exit is not None or self._poll() is not None

    def wait(self, timeout: float | None = None) -> Exit | None:
        """Waits until the run has ended and every guest thread has been joined.

        Args:
            timeout: seconds to wait at most; ``None`` waits as long as it takes, 0 only
                looks.

        Returns:
            how the run ended (the same ``Exit`` each time), or ``None`` if it is still
            going after ``timeout``.

        Raises:
            CallbackError: a callback raised (each call raises it again).
            UsageError: the run has not started, or ``wait`` was called from one of
                the run's own callbacks (that would never return).
        """
        if self._exit is None:
            if timeout is not None:
                timeout = float(timeout)
                if not timeout >= 0:
                    raise ValueError(f"timeout must be >= 0 or None, not {timeout!r}")
            if current.state is self._state:
                raise UsageError("Run.wait called from a callback of the same run: it would never return")
            h = self._h
            if h is None:
                raise UsageError("the run has not started")
            t = timeout
            if h.use(lambda ptr: self._poll_ptr(ptr) or self._block(ptr, t)) is None:
                return None
        return self._result()

    async def wait_async(self) -> Exit:
        """``wait`` for asyncio: waits, without blocking the event loop, until the run has
        ended and every guest thread has been joined.

        Cancelling the awaiting task cancels the run: ``CancelledError`` is raised once
        the run has ended and its guest threads are joined, so no guest code runs after
        it. To stop waiting without cancelling the run, await
        ``asyncio.shield(run.wait_async())`` (``asyncio.wait_for`` and
        ``asyncio.timeout`` cancel what they wait for).

        Returns:
            how the run ended (the same ``Exit`` each time).

        Raises:
            CallbackError: a callback raised.
            UsageError: the run has not started.
        """
        if self._exit is None:
            if self._h is None:
                raise UsageError("the run has not started")
            loop = asyncio.get_running_loop()
            ended = loop.create_future()

            def wake() -> None:  # on whichever thread stores the outcome
                try:
                    loop.call_soon_threadsafe(_resolve, ended)
                except RuntimeError:
                    pass  # the loop is closed: nobody waits any more

            if self._watch(wake):
                self._start_waiter()
                try:
                    await asyncio.shield(ended)
                except asyncio.CancelledError:
                    self.cancel()
                    while not ended.done():  # the end of a cancelled run takes milliseconds
                        try:
                            await asyncio.shield(ended)
                        except asyncio.CancelledError:
                            pass  # cancelled again: it is being cancelled already
                    raise
        return self._result()

    def _watch(self, wake: Callable[[], None]) -> bool:
        """Has ``wake()`` called once the outcome is stored; False if it is already."""
        with self._lock:
            if self._exit is not None:
                return False
            self._watchers.append(wake)
            return True

    def _result(self) -> Exit:
        assert self._exit is not None
        state = self._state
        if state.errors:
            state.reported = True
            raise self._callback_error()
        return self._exit

    def _callback_error(self) -> CallbackError:
        errors = list(self._state.errors)
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        exit = self._exit
        cancelled = exit is None or exit.kind is ExitKind.CANCELLED
        how = "was cancelled" if cancelled or exit is None else f"ended ({exit.kind.name})"
        err = CallbackError(f"a callback raised {type(first).__name__}: {first}{more}; the run {how}", exit, errors)
        err.__cause__ = first
        return err

    def _store(self, raw: _ffi.wt_exit_t) -> Exit:
        exit = self._state.exit(raw)
        watchers: list[Callable[[], None]] = []
        with self._lock:
            if self._exit is None:
                self._exit = exit
                if self._done is not None:
                    self._done.release()  # exactly once: made before _exit was set
                watchers, self._watchers = self._watchers, []
            stored = self._exit
        for wake in watchers:
            wake()
        return stored

    def _poll(self) -> Exit | None:
        h = self._h
        if h is None:
            return self._exit
        try:
            return h.use(self._poll_ptr)
        except Error:
            return self._exit

    def _poll_ptr(self, ptr: int) -> Exit | None:
        if self._exit is not None:
            return self._exit
        raw = _ffi.wt_exit_t()
        if lib.wt_run_try_wait(ptr, byref(raw)):
            return self._store(raw)
        return None

    def _wait_blocking(self, ptr: int) -> Exit:
        raw = _ffi.wt_exit_t()
        check(lib.wt_run_wait(ptr, byref(raw)))  # releases the GIL while it blocks
        return self._store(raw)

    def _block(self, ptr: int, timeout: float | None) -> Exit | None:
        # A thread other than the main one, waiting without a timeout, simply calls
        # wt_run_wait (the GIL is released while it blocks).
        if timeout is None and not is_main_thread():
            return self._wait_blocking(ptr)
        if timeout == 0:
            return None
        done = self._start_waiter()
        if done is None:
            return self._exit  # it ended just now
        deadline = None if timeout is None else time.monotonic() + timeout
        h = self._h
        while True:
            remaining = _SLICE if deadline is None else min(_SLICE, deadline - time.monotonic())
            if remaining <= 0 or self._exit is not None:
                return self._exit  # None unless it ended just now
            if done.acquire(timeout=remaining):  # Ctrl-C interrupts it
                done.release()  # for the next waiter
                return self._exit
            if h is not None and h.closed and self._exit is None:
                # Another thread is closing the run (so it is cancelled) but could not
                # collect the outcome; we still hold a use: collect it here.
                return self._wait_blocking(ptr)

    def _start_waiter(self) -> threading.Lock | None:
        """Makes sure a helper thread waits for the run; returns the lock released when the
        run has ended, or None if it has ended."""
        with self._lock:
            if self._exit is not None:
                return None
            if self._done is None:
                self._done = threading.Lock()
                self._done.acquire()
            done = self._done
            if self._helper_waits:
                return done
        # An exception (Ctrl-C) before the flag is set only means that a later wait hands
        # the run to a helper again; two helpers waiting for one run is harmless.
        _waiter.wait_for(self)
        self._helper_waits = True
        return done

    def _wait_in_helper(self) -> None:
        """Runs on a helper thread: wt_run_wait, which releases _done through _store."""
        h = self._h
        assert h is not None
        try:
            h.use(self._wait_blocking)
        except Error:
            pass  # closed meanwhile: whoever closed it stored the outcome

    # -- lifetime

    @property
    def closed(self) -> bool:
        return self._h is None or self._h.closed

    def close(self) -> None:
        """Cancels the run if it is still going, waits until its guest threads are joined
        and frees it. Idempotent.

        Raises:
            CallbackError: a callback raised and no ``wait`` has reported it yet.
        """
        self._close(report=True)

    def _close(self, report: bool) -> None:
        if getattr(self, "_out", None) is None:
            return  # __init__ did not finish
        if self._h is None:
            self._adopt()  # started, but an exception came before Module.start finished
            if self._h is None:
                release_callbacks(self._state, self._keep)  # a plain wt_run may have ended
                self._keep = []
                self._state.close_pipes()
                return  # never started
        h = self._h
        if current.state is self._state:
            # Freeing joins the run's threads, one of which is us: cancel now and let
            # another thread free it.
            self.cancel()
            threading.Thread(target=self._close, args=(False,), name="wasithreads-free", daemon=True).start()
            return

        def finish(ptr: int) -> None:
            lib.wt_run_cancel(ptr)
            if self._exit is None:
                self._wait_blocking(ptr)  # returns within milliseconds of the cancel

        if h.close(before_free=finish):
            with self._state.lock:
                self._state.run_ptr = None
            release_callbacks(self._state, self._keep)
            self._keep = []  # no callback can come any more, unless abandoned
            self._state.close_pipes()
        state = self._state
        if report and state.errors and not state.reported:
            state.reported = True
            raise self._callback_error()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self._close(report=exc is None)
        state = self._state
        if exc is not None and state.errors and not state.reported:
            # Do not hide the exception leaving the block; mention the callbacks' on it.
            state.reported = True
            if hasattr(exc, "add_note"):
                exc.add_note(f"wasithreads: callbacks of the run also raised: {state.errors!r}")

    def __del__(self) -> None:
        try:
            self._close(report=True)
        except CallbackError:
            raise  # not reported yet: goes to sys.unraisablehook ("Exception ignored in ...")
        except Exception:  # noqa: BLE001 - e.g. at interpreter shutdown
            pass

    def __repr__(self) -> str:
        if self._exit is not None:
            status = f"ended {self._exit.kind.name}"
        elif self.closed:
            status = "closed"
        else:
            status = "running"
        return f"<wasithreads.Run {status}>"


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@atexit.register
def _close_runs_at_exit() -> None:
    # Guest threads must not call into Python while it finalizes: end, join and free
    # every run and instance still alive (the free may wait for views of their memory;
    # their threads are joined before). Their callback objects are still referenced by
    # their Run and Instance objects, which are alive (a dead one has freed its handle).
    for h in list(live_runs):
        if h.ptr is not None:
            try:
                h.close(before_free=h.end)
            except Exception:  # noqa: BLE001 - nothing to report to at exit
                pass
