"""The Python API over the C ABI: Engine, Module, Run, Exit, Error."""

from __future__ import annotations

import atexit
import ctypes
import enum
import io
import math
import operator
import os
import threading
import time
from ctypes import byref, c_void_p
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import IO, Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, TypeVar, Union

from . import _ffi
from ._ffi import lib

__all__ = [
    "DEVNULL",
    "CallbackError",
    "Engine",
    "Error",
    "Exit",
    "ExitKind",
    "Module",
    "Run",
    "library_path",
    "version",
]

#: Pass as ``stdin``, ``stdout`` or ``stderr`` to give the guest an empty input / discard
#: its output. Equal to ``subprocess.DEVNULL``, which works too.
DEVNULL = -3

T = TypeVar("T")
PathArg = Union[str, "os.PathLike[str]", "os.PathLike[bytes]", bytes]
#: ``(tid, data)``: what guest thread ``tid`` wrote with one ``fd_write``.
OutputCallback = Callable[[int, bytes], None]
#: ``(tid, kind, code)``: kind is "returned", "exited", "trapped" or "terminated".
ThreadExitCallback = Callable[[int, str, int], None]
#: ``(tid)``: called on each new guest thread before it runs wasm.
ThreadStartCallback = Callable[[int], None]
Output = Union[None, int, PathArg, OutputCallback, IO[bytes], IO[str]]
Input = Union[None, int, bytes, bytearray, memoryview, PathArg, IO[bytes]]
Source = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", "os.PathLike[bytes]"]


class Error(Exception):
    """A libwasithreads call failed or was misused; ``str(error)`` is the library's message.

    Raised for modules that do not load (invalid bytes, unknown imports, …), runs that
    cannot start (a preopen directory that does not exist, …) and closed handles.
    Problems the binding sees before calling the library (a wrong type, a NUL byte in a
    string, a negative timeout) raise ``TypeError`` / ``ValueError`` instead.
    """


class CallbackError(Error):
    """One or more callbacks (stdout/stderr/on_thread_exit/on_thread_start) raised.

    The first exception cancels the run. The run still ends normally (every guest thread is
    stopped and joined); then ``Module.run`` / ``Run.wait`` (or ``Run.close`` if the run
    was never waited for) raises this error. ``__cause__`` is the first exception.

    Attributes:
        exit: how the run ended (usually ``ExitKind.CANCELLED``, because of the exception).
        errors: every exception the callbacks raised, in order. On Python 3.11+ each
            carries a note saying which callback and guest thread raised it.
    """

    exit: Optional["Exit"]
    errors: List[BaseException]

    def __init__(self, message: str, exit: Optional["Exit"], errors: List[BaseException]):
        super().__init__(message)
        self.exit = exit
        self.errors = errors


def _check(err: Optional[int]) -> None:
    if err:
        raw = lib.wt_error_message(err)
        message = raw.decode("utf-8", "replace") if raw is not None else "unknown error"
        lib.wt_error_free(err)
        raise Error(message)


def version() -> str:
    """The version of the loaded libwasithreads, e.g. ``"0.1.0"``."""
    raw: bytes = lib.wt_version()
    return raw.decode()


def library_path() -> str:
    """The path of the libwasithreads.so this package loaded."""
    return _ffi.LIB_PATH


def _cstr(value: Union[str, bytes], what: str) -> bytes:
    if isinstance(value, str):
        data = value.encode("utf-8")
    elif isinstance(value, bytes):
        data = value
    else:
        raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")
    if b"\0" in data:
        raise ValueError(f"{what} contains a NUL byte: {value!r}")
    return data


def _cpath(value: PathArg, what: str) -> bytes:
    try:
        data = os.fsencode(value)
    except TypeError:
        raise TypeError(f"{what} must be a path (str, bytes or os.PathLike), not {type(value).__name__}") from None
    if b"\0" in data:
        raise ValueError(f"{what} contains a NUL byte: {value!r}")
    return data


def _ptr(out: c_void_p) -> int:
    """The pointer a successful C call wrote to ``out``."""
    assert out.value, "the library returned NULL without an error"
    return out.value


def _uint(value: Any, what: str, bits: int) -> int:
    try:
        n = operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an int, not {type(value).__name__}") from None
    if not 0 <= n < (1 << bits):
        raise ValueError(f"{what} must be in 0..{(1 << bits) - 1}, not {n}")
    return n


# ---------------------------------------------------------------------------------------
# Handles: a pointer, freed once, never while another thread is inside a call using it.


class _Handle:
    """An owned C pointer. ``use`` brackets every C call that uses it; ``close`` waits
    for calls in flight, then frees exactly once."""

    __slots__ = ("ptr", "_free", "_wake", "_what", "_lock", "_idle", "_users", "_closing")

    def __init__(self, ptr: int, free: Callable[[int], None], what: str,
                 wake: Optional[Callable[[int], None]] = None):
        self.ptr: Optional[int] = ptr
        self._free = free
        self._wake = wake
        self._what = what
        self._lock = threading.Lock()
        self._idle: Optional[threading.Condition] = None  # made when close() must wait
        self._users = 0
        self._closing = False

    @property
    def closed(self) -> bool:
        return self.ptr is None or self._closing

    def use(self, fn: Callable[[int], T]) -> T:
        """``fn(ptr)``, with the pointer kept valid (``close`` waits) until it returns.

        Raises:
            Error: the handle is closed.

        The count of uses is raised and the flag saying so set with no Python-level call
        in between, so a KeyboardInterrupt can never leave a use counted that nobody
        releases (which would make ``close`` wait forever)."""
        counted = False
        try:
            with self._lock:
                if self.ptr is None or self._closing:
                    raise Error(f"the {self._what} is closed")
                ptr = self.ptr
                self._users += 1
                counted = True
            return fn(ptr)
        finally:
            if counted:
                with self._lock:
                    self._users -= 1
                    if self._users == 0 and self._idle is not None:
                        self._idle.notify_all()

    def close(self, before_free: Optional[Callable[[int], None]] = None) -> bool:
        """Frees the pointer; returns False if it was already closed (or being closed).

        Written so that a KeyboardInterrupt (raised by the SIGINT handler at a Python-level
        call or loop) at any point after the handle is marked closing still frees it: the
        body is one try/finally, whose finally block calls no Python function on the
        usual path, and re-raises a Ctrl-C that came while it waited for other threads."""
        ptr = 0
        try:
            with self._lock:
                if self.ptr is None or self._closing:
                    return False
                ptr = self.ptr
                self._closing = True
            if before_free is not None:
                before_free(ptr)
        finally:
            if ptr:
                interrupted: Optional[BaseException] = None
                if self._users:  # a new use needs the handle open: 0 stays 0
                    while True:
                        try:
                            if self._wake is not None:
                                self._wake(ptr)  # e.g. wt_run_cancel: the users' calls return
                            self._wait_idle()
                            break
                        except BaseException as e:  # noqa: BLE001 - re-raised below
                            interrupted = e
                self.ptr = None
                self._free(ptr)
                _live_handles.discard(self)
                if interrupted is not None:
                    raise interrupted
        return True

    def _wait_idle(self) -> None:
        with self._lock:
            if self._idle is None:
                self._idle = threading.Condition(self._lock)
            while self._users:
                self._idle.wait()


# Runs not freed yet, freed at interpreter exit so that no guest thread calls into a
# finalizing interpreter (see _close_runs_at_exit).
_live_handles: "set[_Handle]" = set()


# ---------------------------------------------------------------------------------------
# Results


class ExitKind(enum.Enum):
    """Why a run ended (``wt_exit_kind``)."""

    CODE = _ffi.WT_EXIT_CODE
    """``_start`` returned (code 0) or a thread called ``proc_exit(code)``."""
    TRAP = _ffi.WT_EXIT_TRAP
    """A thread trapped; ``Exit.tid`` says which and ``Exit.message`` why."""
    TIMEOUT = _ffi.WT_EXIT_TIMEOUT
    """The run's ``timeout`` passed."""
    CANCELLED = _ffi.WT_EXIT_CANCELLED
    """The host cancelled the run (``Run.cancel``, Ctrl-C, a callback that raised)."""


_EXIT_KINDS = {k.value: k for k in ExitKind}
_NO_BACKTRACES: Mapping[int, str] = MappingProxyType({})
_THREAD_KINDS = {
    _ffi.WT_THREAD_RETURNED: "returned",
    _ffi.WT_THREAD_EXITED: "exited",
    _ffi.WT_THREAD_TRAPPED: "trapped",
    _ffi.WT_THREAD_TERMINATED: "terminated",
}


@dataclass(frozen=True)
class Exit:
    """How a run ended.

    Attributes:
        kind: why it ended.
        code: for ``CODE``, 0 when ``_start`` returned, else the ``proc_exit`` argument;
            0 for the other kinds.
        tid: the thread that ended the run: 0 = main thread, > 0 a spawned thread,
            -1 for ``TIMEOUT`` and ``CANCELLED``.
        message: for ``TRAP``, ``"wasm trap: <reason>"`` followed by the wasm backtrace;
            ``None`` otherwise.
        stopped_at: read-only mapping, tid -> where that thread was when the run's end
            (a timeout, a cancel, a trap or ``proc_exit`` in another thread) stopped it:
            ``"wasm backtrace:"`` then one frame a line, innermost first,
            ``"    N: name (module offset 0x..)"``, in the function indices and code
            offsets of the module as loaded (what ``wasm-objdump -d`` shows of it). A
            thread stopped inside a host call (an atomic wait, ``poll_oneoff``, a read)
            shows the call's caller. Only threads stopped while in wasm appear (not the
            one that trapped, not threads that had finished): empty when every thread
            ended by itself, and for runs with ``backtraces=False``. Sorted by tid. Not
            part of ``==`` / ``hash`` (it says where threads happened to be).
    """

    kind: ExitKind
    code: int
    tid: int
    message: Optional[str] = None
    stopped_at: Mapping[int, str] = field(default_factory=lambda: _NO_BACKTRACES, compare=False)

    @property
    def ok(self) -> bool:
        """True when the run ended with exit code 0."""
        return self.kind is ExitKind.CODE and self.code == 0


def _take_exit(raw: _ffi.wt_exit_t, stopped: Optional[Dict[int, str]] = None) -> Exit:
    """Converts a filled ``wt_exit_t`` and releases its message. ``stopped`` is what the
    run's thread-exit trampoline recorded (every call of it has returned by now)."""
    message = None
    if raw.message:
        message = ctypes.string_at(raw.message).decode("utf-8", "replace")
    lib.wt_exit_clear(byref(raw))
    stopped_at = MappingProxyType(dict(sorted(stopped.items()))) if stopped else _NO_BACKTRACES
    return Exit(_EXIT_KINDS[raw.kind], raw.code, raw.tid, message, stopped_at)


# ---------------------------------------------------------------------------------------
# Engine and Module


class _Owned:
    """Lifetime of an object that owns one `_Handle` as `self._h`: `close()` (idempotent),
    `with` blocks, `__del__` as a backstop."""

    _h: "_Handle"

    @property
    def closed(self) -> bool:
        return self._h.closed

    def close(self) -> None:
        h = getattr(self, "_h", None)
        if h is not None:
            h.close()

    def __enter__(self: "_T") -> "_T":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"<wasithreads.{type(self).__name__}{' closed' if self.closed else ''}>"


_T = TypeVar("_T", bound="_Owned")


class Engine(_Owned):
    """A compilation and execution environment (``wt_engine_t``). Thread-safe.

    Args:
        opt_level: Cranelift optimisation level: 0 none, 1 speed (default), 2 speed and size.
        cache: use Wasmtime's on-disk compilation cache (default off).
        max_wasm_stack: largest wasm stack of one guest thread, bytes (default 1 MiB);
            deeper recursion traps.
        interrupt_tick_us: while a run is ending, how often threads that have not stopped
            yet are woken again (default 1000 µs, at least 50).

    Use as a context manager or call ``close()``; modules keep working in runs already
    started, but cannot be loaded or started once their engine is closed.
    """

    def __init__(
        self,
        *,
        opt_level: Optional[int] = None,
        cache: Optional[bool] = None,
        max_wasm_stack: Optional[int] = None,
        interrupt_tick_us: Optional[int] = None,
    ):
        config = None
        if any(v is not None for v in (opt_level, cache, max_wasm_stack, interrupt_tick_us)):
            config = lib.wt_engine_config_new()
            if not config:
                raise MemoryError("wt_engine_config_new")
        try:
            if opt_level is not None:
                lib.wt_engine_config_set_opt_level(config, _uint(opt_level, "opt_level", 8))
            if cache is not None:
                lib.wt_engine_config_set_cache(config, bool(cache))
            if max_wasm_stack is not None:
                lib.wt_engine_config_set_max_wasm_stack(config, _uint(max_wasm_stack, "max_wasm_stack", 63))
            if interrupt_tick_us is not None:
                lib.wt_engine_config_set_interrupt_tick_us(config, _uint(interrupt_tick_us, "interrupt_tick_us", 64))
            out = c_void_p()
            _check(lib.wt_engine_new(config, byref(out)))
        finally:
            lib.wt_engine_config_free(config)
        self._h = _Handle(_ptr(out), lib.wt_engine_free, "engine")

    # -- modules

    def load(self, source: Source) -> "Module":
        """Compiles a module.

        Args:
            source: the module as ``bytes`` (``.wasm`` binary or WAT text; also
                ``bytearray``/``memoryview``), or the path of a ``.wasm``/``.wat`` file
                (``str`` or ``os.PathLike``). Pass WAT held in a ``str`` as
                ``text.encode()``: a ``str`` is always a path.

        Raises:
            Error: the module is invalid, imports something wasithreads does not provide,
                or imports ``wasi::thread-spawn`` without a shared memory; or the file
                cannot be read.
        """
        out = c_void_p()
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            self._h.use(lambda engine: _check(lib.wt_module_load(engine, data, len(data), byref(out))))
        elif isinstance(source, (str, os.PathLike)):
            path = _cpath(source, "module path")
            try:
                self._h.use(lambda engine: _check(lib.wt_module_load_file(engine, path, byref(out))))
            except Error as e:
                if isinstance(source, str) and source.lstrip().startswith("(") and not os.path.exists(source):
                    raise Error(f"{e} (a str is a path; pass WAT text as bytes: text.encode())") from None
                raise
        else:
            raise TypeError(f"source must be bytes or a path, not {type(source).__name__}")
        return Module(self, _ptr(out))

    def validate(self, source: Union[bytes, bytearray, memoryview]) -> None:
        """Checks ``.wasm`` bytes or WAT text the way ``load`` does (it compiles them, so it
        costs as much) and raises ``Error`` saying what is wrong, e.g. "the module imports
        wasi::thread-spawn but has no shared memory"."""
        if not isinstance(source, (bytes, bytearray, memoryview)):
            raise TypeError(f"source must be bytes, not {type(source).__name__}")
        data = bytes(source)
        self._h.use(lambda engine: _check(lib.wt_module_validate(engine, data, len(data))))

    def deserialize(self, data: Union[bytes, bytearray, memoryview]) -> "Module":
        """Loads a module from bytes made by ``Module.serialize`` with the same library
        version and engine settings, skipping compilation.

        SECURITY: the bytes are machine code, checked for format and version but not for
        integrity. Only pass bytes this library produced and nobody else could change.
        """
        data = bytes(data)
        out = c_void_p()
        self._h.use(lambda engine: _check(lib.wt_module_deserialize(engine, data, len(data), byref(out))))
        return Module(self, _ptr(out))

    # -- lifetime

    def close(self) -> None:
        """Releases the engine (idempotent). Runs already started go on."""
        super().close()


class Module(_Owned):
    """A compiled module (``wt_module_t``), made by ``Engine.load``. Thread-safe: any number
    of threads may run it at once."""

    def __init__(self, engine: Engine, ptr: int):
        self._engine = engine
        self._h = _Handle(ptr, lib.wt_module_free, "module")

    @property
    def engine(self) -> Engine:
        return self._engine

    def run(
        self,
        *,
        args: Optional[Iterable[Union[str, bytes]]] = None,
        env: Optional[Union[Mapping[str, str], Iterable[Tuple[str, str]]]] = None,
        inherit_env: bool = False,
        dirs: Optional[Mapping[PathArg, str]] = None,
        readonly_dirs: Optional[Mapping[PathArg, str]] = None,
        stdin: Input = None,
        stdout: Output = None,
        stderr: Output = None,
        timeout: Optional[float] = None,
        max_threads: Optional[int] = None,
        max_memory: Optional[int] = None,
        on_thread_exit: Optional[ThreadExitCallback] = None,
        on_thread_start: Optional[ThreadStartCallback] = None,
        backtraces: bool = True,
    ) -> Exit:
        """Runs ``_start`` and waits until every guest thread has exited and been joined.

        Args:
            args: the guest's argv, ``argv[0]`` first (default ``["wasm"]``).
            env: variables for the guest (a mapping or ``(key, value)`` pairs). The guest
                sees no host variable unless ``inherit_env=True``.
            inherit_env: pass the host process's environment too (``env`` comes after it).
            dirs: host directory -> guest path, read-write (e.g. ``{"/srv/data": "/data"}``).
                Without any, the guest has no file system.
            readonly_dirs: like ``dirs``, but the guest may only read.
            stdin: ``None`` = the host's stdin; ``DEVNULL`` = empty; ``bytes`` = that
                data (each run reads it from the start); a ``str``/``os.PathLike`` = a file
                opened when the run starts; an ``int`` fd or a file object with
                ``fileno()`` (duplicated; bytes already buffered in the Python object are
                not seen); another object with ``read()`` is read to the end now.
            stdout, stderr: ``None`` = the host's stdout/stderr; ``DEVNULL`` = discarded;
                a callable ``(tid, data: bytes)``; an ``int`` fd or a file object with
                ``fileno()`` (flushed now, then written to directly); a ``str``/
                ``os.PathLike`` = a file created or truncated now; another object with
                ``write()`` gets each write (``bytes``, decoded for text files).
            timeout: seconds; the run ends with ``ExitKind.TIMEOUT`` after it.
            max_threads: most spawned threads alive at once (default 1024); past it
                ``thread-spawn`` returns an error to the guest.
            max_memory: cap on the guest's linear memory, bytes.
            on_thread_exit: ``(tid, kind, code)`` once per guest thread after it stopped;
                kind is "returned", "exited", "trapped" or "terminated", code the
                ``proc_exit`` code for "exited", else 0. (Where a "terminated" thread
                was: ``Exit.stopped_at[tid]`` after the run.)
            on_thread_start: ``(tid)`` on each new guest thread before it runs wasm.
            backtraces: record where each thread the run's end stopped was, in
                ``Exit.stopped_at`` (default). This registers a thread-exit callback of
                the binding's own, a short Python call (taking the GIL) on every guest
                thread as it exits; ``False`` leaves guest threads that no callback of
                yours needs without any Python call, and ``Exit.stopped_at`` empty.

        Callbacks run on guest threads, possibly at the same time for different threads
        and streams (never two at once for one output stream). If one raises, the run is
        cancelled and, once it has ended, ``CallbackError`` is raised.

        Ctrl-C (``KeyboardInterrupt`` in the main thread) cancels the run, waits for its
        threads to stop, and propagates.

        Returns:
            how the run ended (traps, ``proc_exit``, timeouts are results, not exceptions).

        Raises:
            Error: the run could not start (no ``_start``, a missing preopen directory, …).
            CallbackError: a callback raised.
        """
        run = Run()
        try:
            config, run._keep = _make_config(
                run._state, args=args, env=env, inherit_env=inherit_env, dirs=dirs,
                readonly_dirs=readonly_dirs, stdin=stdin, stdout=stdout, stderr=stderr,
                timeout=timeout, max_threads=max_threads, max_memory=max_memory,
                on_thread_exit=on_thread_exit, on_thread_start=on_thread_start, backtraces=backtraces,
            )
            if not run._state.user_callbacks and not _is_main_thread() and (
                    not run._keep or not threading.current_thread().daemon):
                # No Python callback of the user's (nothing to cancel the run on an
                # exception) and no Ctrl-C to serve (signals go to the main thread): plain
                # wt_run, which supervises the run on this thread instead of starting a
                # supervisor thread. Not in a daemon thread when our own exit trampoline
                # is registered: such a thread may still be in wt_run at interpreter exit,
                # and only runs of the start path are cancelled and joined then
                # (_close_runs_at_exit), before guest threads could call into a
                # finalizing interpreter.
                return self._run_here(config, run._state)
            self._launch(run, config)
            exit = run.wait()
            assert exit is not None  # no timeout
            return exit
        finally:
            # After Ctrl-C (or any exception, even one raised the moment wt_run_start
            # returned) this cancels the run first; it always joins every guest thread
            # and frees the run.
            run._close(report=False)

    def start(
        self,
        *,
        args: Optional[Iterable[Union[str, bytes]]] = None,
        env: Optional[Union[Mapping[str, str], Iterable[Tuple[str, str]]]] = None,
        inherit_env: bool = False,
        dirs: Optional[Mapping[PathArg, str]] = None,
        readonly_dirs: Optional[Mapping[PathArg, str]] = None,
        stdin: Input = None,
        stdout: Output = None,
        stderr: Output = None,
        timeout: Optional[float] = None,
        max_threads: Optional[int] = None,
        max_memory: Optional[int] = None,
        on_thread_exit: Optional[ThreadExitCallback] = None,
        on_thread_start: Optional[ThreadStartCallback] = None,
        backtraces: bool = True,
    ) -> "Run":
        """Starts a run like ``run`` (same arguments) and returns at once.

        Use the ``Run`` as a context manager (leaving the block cancels the run if it is
        still going and frees it) or call ``close()``.
        """
        run = Run()
        config, run._keep = _make_config(
            run._state, args=args, env=env, inherit_env=inherit_env, dirs=dirs, readonly_dirs=readonly_dirs,
            stdin=stdin, stdout=stdout, stderr=stderr, timeout=timeout, max_threads=max_threads,
            max_memory=max_memory, on_thread_exit=on_thread_exit, on_thread_start=on_thread_start,
            backtraces=backtraces,
        )
        try:
            self._launch(run, config)
        except BaseException:
            run._close(report=False)
            raise
        return run

    def _run_here(self, config: Optional[int], state: "_RunState") -> Exit:
        """``wt_run`` on the calling thread (not the main thread; no Python callbacks of
        the user's, at most the binding's own exit trampoline, which never raises)."""
        raw = _ffi.wt_exit_t()
        try:
            self._engine._h.use(lambda engine: self._h.use(
                lambda module: _check(lib.wt_run(engine, module, config, byref(raw)))))
        finally:
            lib.wt_run_config_free(config)
        return _take_exit(raw, state.stopped)

    def _launch(self, run: "Run", config: Optional[int]) -> None:
        """Starts ``run`` with ``config`` (and frees the config). wt_run_start writes the
        pointer straight into the Run, so that an exception at any point (KeyboardInterrupt
        included) leaves a Run that ``_close`` can free."""
        out = byref(run._out)
        try:
            self._engine._h.use(lambda engine: self._h.use(
                lambda module: _check(lib.wt_run_start(engine, module, config, out))))
        finally:
            lib.wt_run_config_free(config)
        run._adopt()

    def serialize(self) -> bytes:
        """The compiled module (machine code included), for ``Engine.deserialize``."""
        raw = _ffi.wt_bytes_t()
        self._h.use(lambda module: _check(lib.wt_module_serialize(module, byref(raw))))
        try:
            return ctypes.string_at(raw.data, raw.len)
        finally:
            lib.wt_bytes_free(byref(raw))

    def close(self) -> None:
        """Releases the module (idempotent). Runs in progress keep it alive."""
        super().close()


# ---------------------------------------------------------------------------------------
# Callbacks


# The run whose callback the current thread is executing, if any (to refuse a wait on the
# run from inside its own callback, which would deadlock).
_tls = threading.local()


class _RunState:
    """What the callbacks of one run share with its ``Run``. Holds no reference to the
    ``Run`` itself, so that a ``Run`` dropped by the user is freed at once."""

    __slots__ = ("lock", "errors", "run_ptr", "cancel_pending", "reported", "stopped", "user_callbacks")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.errors: List[BaseException] = []
        self.run_ptr: Optional[int] = None
        self.cancel_pending = False
        self.reported = False
        # tid -> backtrace of each thread stopped by the run's end (Exit.stopped_at),
        # written by the exit trampoline; None when the run has backtraces=False.
        self.stopped: Optional[Dict[int, str]] = None
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


def _output_callback(state: _RunState, fn: OutputCallback, where: str) -> Any:
    string_at = ctypes.string_at
    tls = _tls

    def trampoline(_user_data: Any, tid: int, data: Any, length: int) -> None:
        previous = getattr(tls, "state", None)
        tls.state = state
        try:
            fn(tid, string_at(data, length) if length else b"")
        except BaseException as e:  # noqa: BLE001 - reported after the run
            state.failed(e, where, tid)
        finally:
            tls.state = previous

    return _ffi.OUTPUT_CB(trampoline)


def _thread_exit_callback(state: _RunState, fn: Optional[ThreadExitCallback]) -> Any:
    """The run's thread-exit trampoline: records the backtrace of each terminated thread
    in ``state.stopped`` (unless that is None) and calls ``fn`` (if any)."""
    tls = _tls
    kinds = _THREAD_KINDS
    stopped = state.stopped
    terminated = _ffi.WT_THREAD_TERMINATED

    if fn is None:
        assert stopped is not None

        def record(_user_data: Any, tid: int, how: Any) -> None:
            # No user code runs here: no tls bookkeeping, nothing that can raise but
            # MemoryError (which must not reach ctypes either).
            try:
                h = how[0]
                if h.kind == terminated:
                    where = h.backtrace  # bytes or None; copied before the call returns
                    if where:
                        stopped[tid] = where.decode("utf-8", "replace")
            except BaseException:  # noqa: BLE001 - a lost backtrace is all it costs
                pass

        return _ffi.THREAD_EXIT_CB(record)

    def trampoline(_user_data: Any, tid: int, how: Any) -> None:
        previous = getattr(tls, "state", None)
        tls.state = state
        try:
            h = how[0]
            kind = h.kind
            if stopped is not None and kind == terminated:
                where = h.backtrace
                if where:
                    stopped[tid] = where.decode("utf-8", "replace")
            fn(tid, kinds.get(kind, str(kind)), h.code)
        except BaseException as e:  # noqa: BLE001
            state.failed(e, "on_thread_exit", tid)
        finally:
            tls.state = previous

    return _ffi.THREAD_EXIT_CB(trampoline)


def _thread_start_callback(state: _RunState, fn: ThreadStartCallback) -> Any:
    tls = _tls

    def trampoline(_user_data: Any, tid: int) -> None:
        previous = getattr(tls, "state", None)
        tls.state = state
        try:
            fn(tid)
        except BaseException as e:  # noqa: BLE001
            state.failed(e, "on_thread_start", tid)
        finally:
            tls.state = previous

    return _ffi.THREAD_START_CB(trampoline)


def _writer(target: Any) -> OutputCallback:
    if isinstance(target, io.TextIOBase):
        def write_text(_tid: int, data: bytes) -> None:
            target.write(data.decode("utf-8", "replace"))
        return write_text

    def write_bytes(_tid: int, data: bytes) -> None:
        target.write(data)
    return write_bytes


def _fileno(obj: Any) -> Optional[int]:
    fileno = getattr(obj, "fileno", None)
    if fileno is None:
        return None
    try:
        return int(fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        return None


# ---------------------------------------------------------------------------------------
# Run configuration


def _make_config(
    state: _RunState,
    *,
    args: Any,
    env: Any,
    inherit_env: bool,
    dirs: Any,
    readonly_dirs: Any,
    stdin: Any,
    stdout: Any,
    stderr: Any,
    timeout: Any,
    max_threads: Any,
    max_memory: Any,
    on_thread_exit: Any,
    on_thread_start: Any,
    backtraces: bool,
) -> Tuple[Optional[int], List[Any]]:
    """A ``wt_run_config_t`` for these options (None when they are all defaults) and the
    ctypes callback objects it points to, which must outlive the run. Sets
    ``state.stopped`` and ``state.user_callbacks``."""
    keep: List[Any] = []
    if backtraces:
        state.stopped = {}
    state.user_callbacks = on_thread_exit is not None or on_thread_start is not None  # _set_output adds its own
    if (args is None and env is None and not inherit_env and dirs is None and readonly_dirs is None
            and stdin is None and stdout is None and stderr is None and timeout is None
            and max_threads is None and max_memory is None and on_thread_exit is None
            and on_thread_start is None and not backtraces):
        return None, keep
    config = lib.wt_run_config_new()
    if not config:
        raise MemoryError("wt_run_config_new")
    try:
        if args is not None:
            if isinstance(args, (str, bytes)):
                raise TypeError("args must be a list of strings, not a single string")
            for a in args:
                _check(lib.wt_run_config_push_arg(config, _cstr(a, "argument")))
        if inherit_env:
            lib.wt_run_config_inherit_env(config, True)
        if env is not None:
            items = env.items() if isinstance(env, Mapping) else env
            for k, v in items:
                _check(lib.wt_run_config_push_env(config, _cstr(k, "environment key"), _cstr(v, "environment value")))
        for mapping, fn in ((dirs, lib.wt_run_config_preopen_dir),
                            (readonly_dirs, lib.wt_run_config_preopen_dir_readonly)):
            if mapping is not None:
                for host, guest in mapping.items():
                    _check(fn(config, _cpath(host, "host directory"), _cstr(guest, "guest path")))
        if timeout is not None:
            seconds = float(timeout)
            if not seconds >= 0 or math.isinf(seconds):
                raise ValueError(f"timeout must be a finite number of seconds >= 0, not {timeout!r}")
            # 0 means "no timeout" to the C API: the smallest real timeout is 1 ms.
            lib.wt_run_config_set_timeout_ms(config, max(1, math.ceil(seconds * 1000)))
        if max_threads is not None:
            lib.wt_run_config_set_max_threads(config, _uint(max_threads, "max_threads", 32))
        if max_memory is not None:
            lib.wt_run_config_set_max_memory(config, _uint(max_memory, "max_memory", 64))
        for stream, target, name in ((1, stdout, "stdout"), (2, stderr, "stderr")):
            _set_output(config, state, keep, stream, target, name)
        _set_stdin(config, stdin)
        if on_thread_exit is not None or backtraces:
            if on_thread_exit is not None and not callable(on_thread_exit):
                raise TypeError("on_thread_exit must be callable")
            cb = _thread_exit_callback(state, on_thread_exit)
            keep.append(cb)
            lib.wt_run_config_set_thread_exit_callback(config, cb, None)
        if on_thread_start is not None:
            if not callable(on_thread_start):
                raise TypeError("on_thread_start must be callable")
            cb = _thread_start_callback(state, on_thread_start)
            keep.append(cb)
            lib.wt_run_config_set_thread_start_callback(config, cb, None)
    except BaseException:
        lib.wt_run_config_free(config)
        raise
    return config, keep


def _set_output(config: int, state: _RunState, keep: List[Any], stream: int, target: Any, name: str) -> None:
    if target is None:
        return
    if isinstance(target, bool):
        raise TypeError(f"{name} must be None, DEVNULL, a callable, a file or a path, not a bool")
    if isinstance(target, int):
        if target == DEVNULL:
            _check(lib.wt_run_config_set_output_null(config, stream))
        else:
            _check(lib.wt_run_config_set_output_fd(config, stream, target))
        return
    if isinstance(target, (str, bytes, os.PathLike)):
        _check(lib.wt_run_config_set_output_file(config, stream, _cpath(target, name)))
        return
    fd = _fileno(target)
    if fd is not None:
        flush = getattr(target, "flush", None)
        if flush is not None:
            flush()  # what Python buffered must come before the guest's output
        _check(lib.wt_run_config_set_output_fd(config, stream, fd))
        return
    if callable(target):
        fn = target
    elif hasattr(target, "write"):
        fn = _writer(target)
    else:
        raise TypeError(f"{name} must be None, DEVNULL, a callable, a file or a path, not {type(target).__name__}")
    cb = _output_callback(state, fn, name)
    state.user_callbacks = True
    keep.append(cb)
    _check(lib.wt_run_config_set_output_callback(config, stream, cb, None))


def _set_stdin(config: int, stdin: Any) -> None:
    if stdin is None:
        return
    if isinstance(stdin, bool):
        raise TypeError("stdin must be None, DEVNULL, bytes, a file or a path, not a bool")
    if isinstance(stdin, int):
        if stdin == DEVNULL:
            lib.wt_run_config_set_stdin_null(config)
        else:
            _check(lib.wt_run_config_set_stdin_fd(config, stdin))
        return
    if isinstance(stdin, (bytes, bytearray, memoryview)):
        data = bytes(stdin)
        _check(lib.wt_run_config_set_stdin_bytes(config, data, len(data)))
        return
    if isinstance(stdin, (str, os.PathLike)):
        _check(lib.wt_run_config_set_stdin_file(config, _cpath(stdin, "stdin")))
        return
    fd = _fileno(stdin)
    if fd is not None:
        _check(lib.wt_run_config_set_stdin_fd(config, fd))
        return
    if hasattr(stdin, "read"):
        data = stdin.read()
        if isinstance(data, str):
            data = data.encode("utf-8")
        _check(lib.wt_run_config_set_stdin_bytes(config, data, len(data)))
        return
    raise TypeError(f"stdin must be None, DEVNULL, bytes, a file or a path, not {type(stdin).__name__}")


# ---------------------------------------------------------------------------------------
# Runs

# Waiting: the C API has a blocking wt_run_wait and a non-blocking wt_run_try_wait, no
# wait with a timeout. A thread other than the main one, waiting without a timeout, simply
# calls wt_run_wait (the GIL is released while it blocks). The main thread must stay
# responsive to Ctrl-C, and waits with a timeout need a way out, so they hand the blocking
# wt_run_wait to a helper thread from a small pool and wait on a lock that the helper
# releases when the run has ended; acquiring a lock is interrupted by Ctrl-C and costs no
# CPU: no polling, no spinning. It is waited for in slices of _SLICE seconds only so that
# a signal that the kernel delivered to another thread still reaches the main thread's
# handler promptly.
_SLICE = 0.25
_WAITER_IDLE = 10.0  # seconds an idle helper thread stays for the next wait


class _Waiter:
    """One helper thread calling wt_run_wait for one run at a time. Plain locks are used
    as binary semaphores (cheaper than Condition/Event on this hot path)."""

    def __init__(self, pool: "_WaiterPool"):
        self._pool = pool
        self._go = threading.Lock()
        self._go.acquire()  # released by assign
        self._job: Optional["Run"] = None
        threading.Thread(target=self._loop, name="wasithreads-wait", daemon=True).start()

    def assign(self, run: "Run") -> None:
        self._job = run
        self._go.release()

    def _loop(self) -> None:
        pool = self._pool
        while True:
            if not self._go.acquire(timeout=_WAITER_IDLE):
                if pool.leave(self):
                    return
                # Someone took us off the idle list and is about to assign a job (unless an
                # exception stopped it there).
                if not self._go.acquire(timeout=_WAITER_IDLE):
                    return
            run, self._job = self._job, None
            assert run is not None
            run._wait_in_helper()
            del run
            pool.park(self)


class _WaiterPool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: List[_Waiter] = []

    def wait_for(self, run: "Run") -> None:
        with self._lock:
            waiter = self._idle.pop() if self._idle else None
        if waiter is None:
            waiter = _Waiter(self)
        waiter.assign(run)

    def park(self, waiter: _Waiter) -> None:
        with self._lock:
            self._idle.append(waiter)

    def leave(self, waiter: _Waiter) -> bool:
        with self._lock:
            if waiter in self._idle:
                self._idle.remove(waiter)
                return True
            return False

    def reset(self) -> None:  # in a forked child, the helper threads do not exist
        self._lock = threading.Lock()
        self._idle = []


_waiters = _WaiterPool()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_waiters.reset)


def _is_main_thread() -> bool:
    return threading.get_ident() == threading.main_thread().ident


class Run:
    """A run started with ``Module.start`` (``wt_run_t``).

    ``cancel``, ``wait`` and ``done`` may be called from any threads at once. Leaving a
    ``with`` block, ``close()``, or dropping the last reference cancels the run if it is
    still going, joins its guest threads and frees it.
    """

    def __init__(self) -> None:
        # Made by Module.start/run before the run starts; see Module._launch.
        self._state = _RunState()
        self._keep: List[Any] = []  # the ctypes callbacks: alive until wt_run_free returned
        self._out = c_void_p()  # filled by wt_run_start
        self._h: Optional[_Handle] = None
        self._exit: Optional[Exit] = None
        self._lock = threading.Lock()
        # Released when _exit is set (made, acquired, by _start_waiter); each waiter that
        # gets it passes it on.
        self._done: Optional[threading.Lock] = None
        self._helper_waits = False  # a helper thread has been given this run

    def _adopt(self) -> None:
        if self._h is not None or not self._out.value:
            return
        ptr = self._out.value
        self._h = _Handle(ptr, lib.wt_run_free, "run", wake=lib.wt_run_cancel)
        state = self._state
        with state.lock:
            state.run_ptr = ptr
            pending = state.cancel_pending
        if pending:  # a callback raised before the run was handed to Python
            lib.wt_run_cancel(ptr)
        if len(_live_handles) > 256:  # drop handles whose close was interrupted after the free
            _live_handles.difference_update([h for h in _live_handles if h.ptr is None])
        _live_handles.add(self._h)

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

    def wait(self, timeout: Optional[float] = None) -> Optional[Exit]:
        """Waits until the run has ended and every guest thread has been joined.

        Args:
            timeout: seconds to wait at most; ``None`` waits as long as it takes, 0 only
                looks.

        Returns:
            how the run ended (the same ``Exit`` each time), or ``None`` if it is still
            going after ``timeout``.

        Raises:
            CallbackError: a callback raised (each call raises it again).
            Error: the run was closed before it ended, or ``wait`` was called from one of
                the run's own callbacks (that would never return).
        """
        if self._exit is None:
            if timeout is not None:
                timeout = float(timeout)
                if not timeout >= 0:
                    raise ValueError(f"timeout must be >= 0 or None, not {timeout!r}")
            if getattr(_tls, "state", None) is self._state:
                raise Error("Run.wait called from a callback of the same run: it would never return")
            h = self._h
            if h is None:
                raise Error("the run has not started")
            t = timeout
            if h.use(lambda ptr: self._poll_ptr(ptr) or self._block(ptr, t)) is None:
                return None
        return self._result()

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
        err = CallbackError(
            f"a callback raised {type(first).__name__}: {first}{more}; the run was cancelled",
            self._exit,
            errors,
        )
        err.__cause__ = first
        return err

    def _store(self, raw: _ffi.wt_exit_t) -> Exit:
        exit = _take_exit(raw, self._state.stopped)
        with self._lock:
            if self._exit is None:
                self._exit = exit
                if self._done is not None:
                    self._done.release()  # exactly once: made before _exit was set
            return self._exit

    def _poll(self) -> Optional[Exit]:
        h = self._h
        if h is None:
            return self._exit
        try:
            return h.use(self._poll_ptr)
        except Error:
            return self._exit

    def _poll_ptr(self, ptr: int) -> Optional[Exit]:
        if self._exit is not None:
            return self._exit
        raw = _ffi.wt_exit_t()
        if lib.wt_run_try_wait(ptr, byref(raw)):
            return self._store(raw)
        return None

    def _wait_blocking(self, ptr: int) -> Exit:
        raw = _ffi.wt_exit_t()
        _check(lib.wt_run_wait(ptr, byref(raw)))  # releases the GIL while it blocks
        return self._store(raw)

    def _block(self, ptr: int, timeout: Optional[float]) -> Optional[Exit]:
        if timeout is None and not _is_main_thread():
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

    def _start_waiter(self) -> Optional[threading.Lock]:
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
        _waiters.wait_for(self)
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
                self._keep = []
                return  # never started
        h = self._h
        if getattr(_tls, "state", None) is self._state:
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
            self._keep = []  # no callback can come any more
        state = self._state
        if report and state.errors and not state.reported:
            state.reported = True
            raise self._callback_error()

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type: object, exc: Optional[BaseException], tb: object) -> None:
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
        except Exception:
            pass  # e.g. at interpreter shutdown

    def __repr__(self) -> str:
        if self._exit is not None:
            status = f"ended {self._exit.kind.name}"
        elif self.closed:
            status = "closed"
        else:
            status = "running"
        return f"<wasithreads.Run {status}>"


@atexit.register
def _close_runs_at_exit() -> None:
    # Guest threads must not call into Python while it finalizes: cancel and free (which
    # joins their threads) every run still alive. Their callback objects are still
    # referenced by their Run objects, which are alive (a dead Run has freed its handle).
    for h in list(_live_handles):
        if h.ptr is not None:
            try:
                h.close(before_free=lib.wt_run_cancel)
            except Exception:
                pass
