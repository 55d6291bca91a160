"""Python callables called from guest threads: the ctypes trampolines around the user's
callbacks and the state they share with their run.

A trampoline never lets an exception reach ctypes (which would only print it): it records
it in the run's ``RunState``, which cancels the run; ``Run`` raises ``CallbackError``
once the run has ended.
"""

from __future__ import annotations

import ctypes
import threading
from typing import TYPE_CHECKING, Callable

from . import _ffi
from ._exit import THREAD_KINDS
from ._ffi import CFuncPtr, lib

if TYPE_CHECKING:
    from ctypes import _Pointer, c_char

#: ``(tid, data)``: what guest thread ``tid`` wrote with one ``fd_write``.
OutputCallback = Callable[[int, bytes], None]
#: ``(tid, kind, code)``: kind is "returned", "exited", "trapped" or "terminated".
ThreadExitCallback = Callable[[int, str, int], None]
#: ``(tid)``: called on each new guest thread before it runs wasm.
ThreadStartCallback = Callable[[int], None]


class _Current(threading.local):
    # The run whose callback this thread is executing, if any (to refuse a wait on the run
    # from inside its own callback, which would deadlock).
    state: RunState | None = None


current = _Current()


class RunState:
    """What the callbacks of one run share with its ``Run``. Holds no reference to the
    ``Run`` itself, so that a ``Run`` dropped by the user is freed at once."""

    __slots__ = ("cancel_pending", "errors", "lock", "reported", "run_ptr", "stopped", "user_callbacks")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.errors: list[BaseException] = []
        self.run_ptr: int | None = None
        self.cancel_pending = False
        self.reported = False
        # tid -> backtrace of each thread stopped by the run's end (Exit.stopped_at),
        # written by the exit trampoline; None when the run has backtraces=False.
        self.stopped: dict[int, str] | None = None
        # Whether the run calls a Python callable of the user's (which may raise).
        self.user_callbacks = False

    def failed(self, exc: BaseException, where: str, tid: int) -> None:
        """A callback raised ``exc``: remember it and cancel the run."""
        if hasattr(exc, "add_note"):
            exc.add_note(f"(raised in the wasithreads {where} callback on guest thread {tid})")
        with self.lock:
            self.errors.append(exc)
            ptr = self.run_ptr
            if ptr is None:
                self.cancel_pending = True  # the run has not been handed to Python yet
        if ptr is not None:
            lib.wt_run_cancel(ptr)  # allowed from a callback of the run


def output_callback(state: RunState, fn: OutputCallback, where: str) -> CFuncPtr:
    """The ``wt_output_callback_t`` calling ``fn`` for the stream named ``where``."""
    string_at = ctypes.string_at
    here = current

    def trampoline(_user_data: int | None, tid: int, data: _Pointer[c_char], length: int) -> None:
        previous = here.state
        here.state = state
        try:
            fn(tid, string_at(data, length) if length else b"")
        except BaseException as e:  # noqa: BLE001 - reported after the run
            state.failed(e, where, tid)
        finally:
            here.state = previous

    return _ffi.OUTPUT_CB(trampoline)


def thread_exit_callback(state: RunState, fn: ThreadExitCallback | None) -> CFuncPtr:
    """The run's thread-exit trampoline: records the backtrace of each terminated thread
    in ``state.stopped`` (unless that is None) and calls ``fn`` (if any)."""
    here = current
    kinds = THREAD_KINDS
    stopped = state.stopped
    terminated = _ffi.WT_THREAD_TERMINATED

    if fn is None:
        assert stopped is not None

        def record(_user_data: int | None, tid: int, how: _Pointer[_ffi.wt_thread_exit_t]) -> None:
            # No user code runs here: no bookkeeping of the current run, nothing that can
            # raise but MemoryError (which must not reach ctypes either).
            try:
                h = how[0]
                if h.kind == terminated:
                    where = h.backtrace  # bytes or None; copied before the call returns
                    if where:
                        stopped[tid] = where.decode("utf-8", "replace")
            except BaseException:  # noqa: BLE001 - a lost backtrace is all it costs
                pass

        return _ffi.THREAD_EXIT_CB(record)

    def trampoline(_user_data: int | None, tid: int, how: _Pointer[_ffi.wt_thread_exit_t]) -> None:
        previous = here.state
        here.state = state
        try:
            h = how[0]
            kind = h.kind
            if stopped is not None and kind == terminated:
                where = h.backtrace
                if where:
                    stopped[tid] = where.decode("utf-8", "replace")
            fn(tid, kinds.get(kind, str(kind)), h.code)
        except BaseException as e:  # noqa: BLE001 - reported after the run
            state.failed(e, "on_thread_exit", tid)
        finally:
            here.state = previous

    return _ffi.THREAD_EXIT_CB(trampoline)


def thread_start_callback(state: RunState, fn: ThreadStartCallback) -> CFuncPtr:
    """The ``wt_thread_start_callback_t`` calling ``fn``."""
    here = current

    def trampoline(_user_data: int | None, tid: int) -> None:
        previous = here.state
        here.state = state
        try:
            fn(tid)
        except BaseException as e:  # noqa: BLE001 - reported after the run
            state.failed(e, "on_thread_start", tid)
        finally:
            here.state = previous

    return _ffi.THREAD_START_CB(trampoline)
