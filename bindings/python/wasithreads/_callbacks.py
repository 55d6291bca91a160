"""Python callables called from guest threads: the ctypes trampolines around the user's
callbacks and host functions, and the state they share with their run or instance.

A trampoline never lets an exception reach ctypes (which would only print it): it records
it in the run's ``RunState``. A callback's exception cancels the run (or instance); a host
function's is returned to the library as a ``wt_error_t``, which traps the calling guest
thread and so ends the run (or instance). ``Run`` raises ``CallbackError`` once the run
has ended, ``Instance`` its ``InstanceCallbackError`` from the calls that see the end.
"""

from __future__ import annotations

import ctypes
import threading
from typing import TYPE_CHECKING, Callable

from . import _ffi
from ._capture import Capture
from ._exit import THREAD_KINDS, Exit, ThreadExitKind, take_exit
from ._ffi import CFuncPtr, lib
from ._funcs import Caller, Func
from ._memory import Pinned
from ._values import Layout, results_of

if TYPE_CHECKING:
    from ctypes import _Pointer, c_char

#: ``(tid, data)``: what guest thread ``tid`` wrote with one ``fd_write``.
OutputCallback = Callable[[int, bytes], None]
#: ``(tid, kind, code)``: how guest thread ``tid`` ended.
ThreadExitCallback = Callable[[int, ThreadExitKind, int], None]
#: ``(tid)``: called on each new guest thread before it runs wasm.
ThreadStartCallback = Callable[[int], None]
#: ``(tid, message)``: something the library tells the host about thread ``tid``.
DiagnosticCallback = Callable[[int, str], None]


#: How the diagnostic that the run's end gave up waiting for threads begins (the C API has
#: no other way to say it; tests/test_limits.py checks the text).
ABANDONED = "had not stopped"


class _Current(threading.local):
    # The run whose callback this thread is executing, if any (to refuse a wait on the run
    # from inside its own callback, which would deadlock).
    state: RunState | None = None


current = _Current()


class RunState:
    """What the callbacks of one run share with its ``Run``. Holds no reference to the
    ``Run`` itself, so that a ``Run`` dropped by the user is freed at once."""

    __slots__ = (
        "abandoned",
        "cancel",
        "cancel_pending",
        "capture",
        "diagnostics",
        "errors",
        "lock",
        "pinned",
        "reported",
        "run_ptr",
        "stopped",
        "user_callbacks",
    )

    def __init__(self, cancel: Callable[[int], None] = lib.wt_run_cancel) -> None:
        self.lock = threading.Lock()
        self.errors: list[BaseException] = []
        # The wt_run_t or wt_instance_t once Python has it, and how to cancel it.
        self.run_ptr: int | None = None
        self.cancel = cancel
        # The memory's pin (see _memory), handed to the owner's Handle.
        self.pinned = Pinned()
        self.cancel_pending = False
        self.reported = False
        # tid -> backtrace of each thread stopped by the run's end (Exit.stopped_at),
        # written by the exit trampoline; None when the run has backtraces=False.
        self.stopped: dict[int, str] | None = None
        # Whether the run calls a Python callable of the user's (which may raise).
        self.user_callbacks = False
        # (tid, message) of each diagnostic (Exit.diagnostics), written by its trampoline.
        self.diagnostics: list[tuple[int, str]] = []
        # The files of stdout=PIPE / stderr=PIPE, made by the first of them.
        self.capture: Capture | None = None
        # The run's end gave up waiting for some thread (teardown grace): that thread may
        # still call the run's callbacks after wt_run_free, so they must never be freed.
        self.abandoned = False

    def exit(self, raw: _ffi.wt_exit_t) -> Exit:
        """The ``Exit`` of a filled ``wt_exit_t`` (whose message is released), with what
        this run's callbacks and pipes collected."""
        with self.lock:
            diagnostics = tuple(self.diagnostics)
        output = self.capture.take() if self.capture is not None else (None, None)
        return take_exit(raw, self.stopped, output, diagnostics)

    def pipe(self, stream: int) -> int:
        """A descriptor collecting ``stream`` (1 or 2) for ``Exit.stdout`` / ``stderr``."""
        if self.capture is None:
            self.capture = Capture()
        return self.capture.add(stream)

    def close_pipes(self) -> None:
        if self.capture is not None:
            self.capture.close()

    def record(self, exc: BaseException, where: str, tid: int) -> None:
        """A callback or host function raised ``exc``: remember it."""
        if hasattr(exc, "add_note"):
            exc.add_note(f"(raised in the wasithreads {where} on guest thread {tid})")
        with self.lock:
            self.errors.append(exc)

    def failed(self, exc: BaseException, where: str, tid: int) -> None:
        """A callback raised ``exc``: remember it and cancel the run."""
        self.record(exc, f"{where} callback", tid)
        with self.lock:
            ptr = self.run_ptr
            if ptr is None:
                self.cancel_pending = True  # the run has not been handed to Python yet
        if ptr is not None:
            self.cancel(ptr)  # allowed from a callback of the run


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
            fn(tid, kinds[kind], h.code)
        except BaseException as e:  # noqa: BLE001 - reported after the run
            state.failed(e, "on_thread_exit", tid)
        finally:
            here.state = previous

    return _ffi.THREAD_EXIT_CB(trampoline)


def diagnostic_callback(state: RunState, fn: DiagnosticCallback | None) -> CFuncPtr:
    """The run's diagnostic trampoline: records each diagnostic in ``state.diagnostics``
    and calls ``fn`` (if any)."""
    here = current
    record = state.diagnostics.append  # atomic under the GIL

    def trampoline(_user_data: int | None, tid: int, message: bytes | None) -> None:
        previous = here.state
        here.state = state
        try:
            text = (message or b"").decode("utf-8", "replace")
            if ABANDONED in text:
                state.abandoned = True
            record((tid, text))
            if fn is not None:
                fn(tid, text)
        except BaseException as e:  # noqa: BLE001 - reported after the run
            state.failed(e, "on_diagnostic", tid)
        finally:
            here.state = previous

    return _ffi.DIAGNOSTIC_CB(trampoline)


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


def host_function_callback(state: RunState, func: Func, where: str) -> CFuncPtr:
    """The ``wt_func_callback_t`` calling ``func`` (named ``where``, e.g. ``env::log``).
    An exception, or a result of the wrong type, traps the calling guest thread with the
    exception's text, and is kept in ``state.errors`` unless the run or instance was
    already ending."""
    here = current
    fn = func.fn
    wants_caller = func.caller
    params = Layout(func.params)
    results = Layout(func.results)
    nresults = len(func.results)
    pinned = state.pinned
    string_at = ctypes.string_at
    memmove = ctypes.memmove
    error_new = lib.wt_error_new
    caller_tid = lib.wt_caller_tid
    is_ending = lib.wt_caller_is_ending
    what = f"host function {where}"

    def result_name(i: int) -> str:
        return f"the result of {what}" if nresults == 1 else f"result {i} of {what}"

    def trampoline(
        _env: int | None, caller_ptr: int, args: int | None, _nargs: int, out: int | None, _nout: int
    ) -> int | None:
        previous = here.state
        here.state = state
        caller = None
        try:
            values = params.values(string_at(args, params.size)) if args else ()
            if wants_caller:
                caller = Caller(caller_ptr, pinned)
                value = fn(caller, *values)
            else:
                value = fn(*values)
            returned = (value,) if nresults == 1 else results_of(value, func.results, what)
            if out is not None and returned:  # out is NULL only without results
                memmove(out, results.pack(returned, result_name), results.size)
            return None
        except BaseException as e:  # noqa: BLE001 - traps the guest thread; raised after the end
            try:
                # Raising once the run or instance is ending is how a blocking host
                # function stops (the end's own exit is what is reported): not an error.
                if not is_ending(caller_ptr):
                    state.record(e, what, caller_tid(caller_ptr))
                text = f"{type(e).__name__}: {e}"
            except BaseException:  # noqa: BLE001 - even str(e) may raise
                text = type(e).__name__
            err: int | None = error_new(text.encode("utf-8", "replace"))
            return err
        finally:
            if caller is not None:
                caller._ptr = None
            here.state = previous

    return _ffi.FUNC_CB(trampoline)
