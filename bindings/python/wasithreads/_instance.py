"""``Instance``: a module instantiated once (a plugin), its exports called from any thread,
its memory read and written by the host."""

from __future__ import annotations

import asyncio
import ctypes
import threading
from collections.abc import Iterator, Mapping
from ctypes import byref, c_int, c_size_t, c_void_p
from typing import Callable, TypeVar, Union

from . import _ffi, _waiter
from ._callbacks import RunState, current
from ._convert import StrEnum, uint
from ._errors import Error, InstanceCallbackError, InstanceEnded, UsageError, check, take
from ._exit import Exit, ExitKind, take_exit
from ._ffi import CFuncPtr, lib
from ._handle import Handle, live_runs
from ._memory import view
from ._run import release_callbacks
from ._values import Layout, ValKind, from_code

T = TypeVar("T")

#: What an export call returns: None (no results), the value, or a tuple of values.
Result = Union[None, int, float, tuple[Union[int, float], ...]]


class CallMode(StrEnum):
    """How an instance's export calls run (``wt_instance_call_mode``)."""

    PARALLEL = "parallel"
    """Each calling host thread runs its calls on a guest thread of its own (its own stack,
    thread-locals and ``pthread_self``), made by the module's own ``pthread_create`` on
    its first call and kept for its later ones: calls from different threads run in
    parallel. Modules built for ``wasm32-wasip1-threads`` (wasi-libc's
    ``__pthread_create`` in the name section) get it."""
    SERIAL = "serial"
    """Calls run one at a time on the instance's main guest thread; other callers wait."""


def _why(exit: Exit) -> str:
    if exit.kind is ExitKind.CODE:
        return f"thread {exit.tid} exited with code {exit.code}"
    if exit.kind is ExitKind.TRAP:
        return f"thread {exit.tid} trapped: {exit.message}"
    if exit.kind is ExitKind.TIMEOUT:
        return "its timeout elapsed"
    return "it was cancelled"


class Export:
    """A callable export of an instance: ``export(*args)`` calls it (as
    ``Instance.call``), ``await export.call_async(*args)`` without blocking the event
    loop.

    Attributes:
        name: the export's name.
        params, results: its types, tuples of ``ValKind``.
    """

    __slots__ = (
        "_cname",
        "_core",
        "_nargs",
        "_nresults",
        "_params",
        "_results",
        "_results_type",
        "name",
        "params",
        "results",
    )

    def __init__(
        self, core: Core, name: str, params: tuple[ValKind, ...], results: tuple[ValKind, ...]
    ) -> None:
        self._core = core
        self.name = name
        self._cname = name.encode()
        self.params = params
        self.results = results
        self._nargs = len(params)
        self._nresults = len(results)
        self._params = Layout(params)
        self._results = Layout(results)
        self._results_type = ctypes.c_char * self._results.size

    def __call__(self, *args: int | float) -> Result:
        """Calls the export with ``args`` (checked against its parameter types) on the
        calling thread's guest thread; returns ``None``, the result, or a tuple of them.

        Raises:
            TypeError: a wrong number or type of arguments (the instance is unchanged).
            OverflowError: an int out of range for its i32 / i64 parameter.
            InstanceEnded: the instance ended, in this call or before.
            InstanceCallbackError: the same, when a host function or callback of yours
                raised: its ``__cause__`` is that exception.
            LimitError: no guest thread could be made for this host thread, or the
                calling thread's stack is too small.
        """
        argv = self._packed(args)
        if not self._nresults:
            self._core.call(self._cname, argv, self._nargs, None, 0)
            return None
        resv = self._results_type()
        self._core.call(self._cname, argv, self._nargs, resv, self._nresults)
        values = self._results.values(resv)
        if self._nresults == 1:
            value: int | float = values[0]
            return value
        return values

    def _packed(self, args: tuple[object, ...]) -> bytes | None:
        if len(args) != self._nargs:
            raise TypeError(f"{self.name}{self._signature()} takes {self._nargs} arguments, not {len(args)}")
        if not args:
            return None
        return self._params.pack(args, lambda i: f"argument {i + 1} of {self.name}{self._signature()}")

    async def call_async(self, *args: int | float) -> Result:
        """The call for asyncio: runs it on a helper thread (which gets a guest thread of
        its own) and awaits it without blocking the event loop.

        Cancelling the awaiting task cancels the instance (a call cannot be stopped on its
        own: its guest thread may hold the guest's locks): ``CancelledError`` is raised
        once the call has returned. To stop waiting without ending the instance, await
        ``asyncio.shield(...)`` of it.
        """
        self._packed(args)  # a wrong call raises here, in the caller's task
        return await self._core.in_helper(lambda: self(*args))

    def _signature(self) -> str:
        params = ", ".join(k.value for k in self.params)
        results = ", ".join(k.value for k in self.results)
        return f"({params}) -> ({results})"

    def __repr__(self) -> str:
        return f"<wasithreads.Export {self.name}{self._signature()}>"


class Exports(Mapping[str, Export]):
    """The exports an instance can call: functions whose parameters and results are all
    numbers. ``exports.name(*args)`` or ``exports["name"](*args)``; a read-only mapping
    from name to ``Export`` (in the module's order); ``dir()`` lists them."""

    def __init__(self, exports: dict[str, Export]) -> None:
        self._exports = exports

    def __getitem__(self, name: str) -> Export:
        return self._exports[name]

    def __getattr__(self, name: str) -> Export:
        exports = self.__dict__.get("_exports")
        if exports is not None and name in exports:
            export: Export = exports[name]
            return export
        raise AttributeError(f"the instance has no callable export {name!r} (it has: {', '.join(exports or ())})")

    def __iter__(self) -> Iterator[str]:
        return iter(self._exports)

    def __len__(self) -> int:
        return len(self._exports)

    def __dir__(self) -> list[str]:
        return sorted({*self._exports, "get", "items", "keys", "values"})

    def __repr__(self) -> str:
        return f"<wasithreads.Exports {', '.join(self._exports)}>"


class Memory:
    """The instance's guest memory (its shared memory, for threaded modules).

    ``read`` and ``write`` copy, bounds-checked against the memory's current size, and
    work also after the instance ended (until it is closed). ``len(memory)`` is the
    current size; it grows when the guest grows the memory. ``view()`` (and, on Python
    3.12+, ``memoryview(memory)``) is a writable zero-copy view of the memory at its
    current size: the base never moves, but a view made before the guest grows the memory
    does not see the growth (make a new one). Guest threads read and write the memory at
    the same time as the host; ordering (a call that returns, the guest's atomics) is the
    host's business. A view keeps the memory mapped, also after the instance is closed.
    """

    __slots__ = ("_core",)

    def __init__(self, core: Core) -> None:
        self._core = core

    def _use(self, fn: Callable[[int], T]) -> T:
        return self._core.handle().use(fn)

    def __len__(self) -> int:
        size: int = self._use(lib.wt_instance_memory_size)
        return size

    def read(self, offset: int, n: int) -> bytes:
        """``n`` bytes at ``offset``. ``UsageError`` if they are not all inside the memory."""
        offset = uint(offset, "offset", 64)
        n = uint(n, "n", 64)
        if n > len(self):  # before allocating n bytes
            raise UsageError(f"cannot read {n} bytes: the memory has {len(self)}")
        buf = ctypes.create_string_buffer(n)
        self._use(lambda p: check(lib.wt_instance_memory_read(p, offset, buf, n)))
        return buf.raw

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Copies ``data`` (any bytes-like object) to ``offset``. ``UsageError`` (nothing
        written) if it does not fit inside the memory."""
        offset = uint(offset, "offset", 64)
        if isinstance(data, bytes):
            src: object = data
            n = len(data)
        else:
            mv = memoryview(data).cast("B")  # TypeError for what is not bytes-like
            n = mv.nbytes
            src = (ctypes.c_char * n).from_buffer(mv) if not mv.readonly and mv.c_contiguous else mv.tobytes()
        self._use(lambda p: check(lib.wt_instance_memory_write(p, offset, src, n)))

    def view(self) -> memoryview:
        """A writable ``memoryview`` of the whole memory at its current size (empty for a
        module without a shared memory)."""
        pinned = self._core.state.pinned
        return self._use(lambda p: view(lib.wt_instance_memory_data(p), lib.wt_instance_memory_size(p), pinned.pin))

    def __buffer__(self, flags: int) -> memoryview:  # Python 3.12+: memoryview(memory)
        return self.view()

    def __repr__(self) -> str:
        try:
            return f"<wasithreads.Memory {len(self)} bytes>"
        except Error:
            return "<wasithreads.Memory closed>"


class Core:
    """What an instance's ``Export``s and ``Memory`` share with it: the handle, the state
    its callbacks share, how it ended. Holds no reference to the ``Instance``, so that an
    ``Instance`` dropped without ``close()`` is closed at once, also while its exports or
    memory are still referenced."""

    __slots__ = ("exit", "h", "lock", "state")

    def __init__(self, state: RunState) -> None:
        self.h: Handle | None = None
        self.state = state
        self.exit: Exit | None = None  # how it ended, once closed
        self.lock = threading.Lock()

    def handle(self) -> Handle:
        h = self.h
        if h is None:
            raise UsageError("the instance has not started")
        return h

    def cancel(self) -> None:
        h = self.h
        if h is None:
            return
        try:
            h.use(lib.wt_instance_cancel)
        except Error:
            pass  # closed: it has ended

    def call(
        self,
        cname: bytes,
        argv: bytes | None,
        nargs: int,
        resv: ctypes.Array[ctypes.c_char] | None,
        nresults: int,
    ) -> None:
        h = self.h
        if h is None:
            raise UsageError("the instance has not started")
        raw = _ffi.wt_exit_t()
        try:
            err = h.call(lib.wt_instance_call, cname, argv, nargs, resv, nresults, byref(raw))
        except UsageError:
            if self.exit is not None:  # closed
                raise self.ended(self.exit, None) from None
            raise
        if err:
            error = take(err)
            if not isinstance(error, InstanceEnded):
                raise error
            first_report = not self.state.reported
            ended = self.ended(take_exit(raw), str(error))
            if first_report and isinstance(ended.__cause__, KeyboardInterrupt):
                # Ctrl-C while a host function ran Python on the main thread (a call's
                # guest thread): it ended the instance; say it as Ctrl-C says it.
                raise ended.__cause__ from ended
            raise ended

    def ended(self, exit: Exit, message: str | None) -> InstanceEnded:
        """The error for a call that found the instance ended with ``exit``."""
        text = message or f"the instance ended: {_why(exit)}"
        state = self.state
        if not state.errors:
            return InstanceEnded(text, exit)
        state.reported = True
        errors = list(state.errors)
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        err = InstanceCallbackError(
            f"{type(first).__name__}: {first} raised in a host function or callback{more}; {text}", exit, errors
        )
        err.__cause__ = first
        return err

    async def in_helper(self, fn: Callable[[], T]) -> T:
        """``fn()`` on a helper thread, awaited; cancelling the task cancels the instance
        and waits for ``fn`` to return."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        _waiter.wait_for(HelperJob(fn, loop, done))
        try:
            return await asyncio.shield(done)
        except asyncio.CancelledError:
            self.cancel()
            await settled(done)
            raise


class Instance:
    """A module instantiated once, made by ``Module.instantiate``: ``_initialize`` has
    run, the guest's threads go on between calls, and every option it was made with
    (host functions, limits, stdio, callbacks) applies for its whole life.

    Thread-safe: any number of threads may call its exports at once (in parallel, see
    ``call_mode``), read and write its memory, cancel and close it. A call releases the
    GIL while wasm runs.

    It ends at the first of: a trap or ``proc_exit`` in any of its guest threads, its
    ``timeout`` / ``call_timeout``, ``cancel()``, ``close()``. Every call in flight and
    every later call then raises ``InstanceEnded`` with the instance's first exit
    (``InstanceCallbackError`` when a host function or callback of yours raised).
    ``close()`` (or leaving a ``with`` block) ends it, joins its threads and returns how
    it ended.

    Attributes:
        exports: the exports it can call (``Exports``): ``inst.exports.add(1, 2)``.
        memory: its guest memory (``Memory``).
        call_mode: ``CallMode.PARALLEL`` or ``CallMode.SERIAL``.
    """

    exports: Exports
    memory: Memory
    call_mode: CallMode

    def __init__(self) -> None:
        # Made by Module.instantiate before wt_instance_new; see Module.instantiate.
        self._state = RunState(cancel=lib.wt_instance_cancel)
        self._core = Core(self._state)
        self._keep: list[CFuncPtr] = []  # the ctypes callbacks: alive until wt_instance_free returned
        self._out = c_void_p()  # filled by wt_instance_new
        self.memory = Memory(self._core)
        self.exports = Exports({})

    def _adopt(self) -> None:
        if self._core.h is not None or not self._out.value:
            return
        ptr = self._out.value
        h = self._core.h = Handle(
            ptr,
            lib.wt_instance_free,
            "instance",
            wake=lib.wt_instance_cancel,
            end=end_instance,
            pinned=self._state.pinned,
        )
        state = self._state
        with state.lock:
            state.run_ptr = ptr
            pending = state.cancel_pending
        if pending:  # a callback raised during _initialize
            lib.wt_instance_cancel(ptr)
        live_runs.add(h)
        serial = lib.wt_instance_call_mode(ptr) == _ffi.WT_CALLS_SERIAL
        self.call_mode = CallMode.SERIAL if serial else CallMode.PARALLEL
        exports = {}
        for i in range(lib.wt_instance_export_count(ptr)):
            raw: bytes | None = lib.wt_instance_export_name(ptr, i)
            if raw is None:
                continue
            name = raw.decode("utf-8", "replace")
            params, results = _export_type(ptr, raw)
            exports[name] = Export(self._core, name, params, results)
        self.exports = Exports(exports)

    # -- calls

    def call(self, name: str, *args: int | float) -> Result:
        """Calls export ``name`` with ``args``: ``inst.call("add", 1, 2)`` is
        ``inst.exports.add(1, 2)`` (see ``Export.__call__``). ``KeyError`` for no such
        callable export."""
        return self._export(name)(*args)

    async def call_async(self, name: str, *args: int | float) -> Result:
        """``call`` for asyncio (see ``Export.call_async``): cancelling the awaiting task
        cancels the instance."""
        return await self._export(name).call_async(*args)

    def _export(self, name: str) -> Export:
        try:
            return self.exports[name]
        except KeyError:
            raise KeyError(f"the instance has no callable export {name!r}") from None

    # -- control

    def cancel(self) -> None:
        """Ends the instance with ``ExitKind.CANCELLED`` unless it already ended: every
        guest thread stops within milliseconds and calls in flight raise
        ``InstanceEnded``. Returns at once; safe from any thread, from host functions and
        callbacks, any number of times."""
        self._core.cancel()

    @property
    def closed(self) -> bool:
        return self._core.h is None or self._core.h.closed

    def close(self) -> Exit:
        """Ends the instance if it still lives (as ``cancel``), waits until every guest
        thread stopped and was joined, frees it, and returns how it ended: its first exit
        (``ExitKind.CANCELLED`` if nothing ended it before), with ``stdout``/``stderr``
        for ``PIPE``, ``diagnostics`` and ``stopped_at``. Idempotent (the same ``Exit``).

        Raises:
            InstanceCallbackError: a host function or callback raised and no call has
                reported it yet.
            UsageError: called from one of the instance's own host functions or
                callbacks (it would wait for itself; ``cancel()`` is allowed there).
        """
        return self._close(report=True)

    async def close_async(self) -> Exit:
        """``close`` for asyncio: ends the instance and awaits the join of its threads
        (milliseconds, or up to the ``teardown_grace`` for a host function that does not
        return) without blocking the event loop."""
        if self._core.exit is not None or self._core.h is None:
            return self._close(report=True)
        self.cancel()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Exit] = loop.create_future()
        _waiter.wait_for(HelperJob(lambda: self._close(report=False), loop, done))
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            await settled(done)  # the instance is ending anyway: the task ends when it is joined
            raise
        return self._close(report=True)

    def _close(self, report: bool) -> Exit:
        if getattr(self, "_out", None) is None:
            raise UsageError("the instance was not made")  # __init__ did not finish
        if self._core.h is None:
            self._adopt()  # made, but an exception came before Module.instantiate finished
        h = self._core.h
        if h is None:
            release_callbacks(self._state, self._keep)
            self._keep = []
            self._state.close_pipes()
            raise UsageError("the instance was not made")
        if current.state is self._state and self._core.exit is None:
            raise UsageError(
                "Instance.close called from the instance's own host function or callback: it would wait for "
                "itself (cancel() is allowed there)"
            )
        if self._core.exit is None:
            raw = _ffi.wt_exit_t()
            try:
                h.use(lambda p: check(lib.wt_instance_close(p, byref(raw))))
            except UsageError:
                pass  # another thread is closing it
            else:
                with self._core.lock:  # one Exit, with the output of PIPE, even for concurrent closes
                    if self._core.exit is None:
                        self._core.exit = self._state.exit(raw)
                    else:
                        lib.wt_exit_clear(byref(raw))
        if h.close():
            with self._state.lock:
                self._state.run_ptr = None
            release_callbacks(self._state, self._keep)
            self._keep = []
            self._state.close_pipes()
        ended = self._core.exit
        if ended is None:  # freed at interpreter exit
            raise UsageError("the instance is closed")
        state = self._state
        if report and state.errors and not state.reported:
            raise self._core.ended(ended, None)
        return ended

    def __enter__(self) -> Instance:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        state = self._state
        if exc is not None and state.errors and not state.reported:
            state.reported = True
            if hasattr(exc, "add_note"):
                exc.add_note(f"wasithreads: host functions or callbacks of the instance also raised: {state.errors!r}")
        self._close(report=exc is None)

    async def __aenter__(self) -> Instance:
        return self

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            await self.close_async()
        else:
            self.__exit__(exc_type, exc, tb)

    def __del__(self) -> None:
        core = getattr(self, "_core", None)
        if core is None or (core.h is None and not self._out.value):
            return  # never made (an instance made but not adopted, after Ctrl-C, is closed here)
        if current.state is self._state:
            # Dropped inside its own host function or callback: closing would wait for
            # this thread. Cancel, and close on another thread.
            core.cancel()
            threading.Thread(target=self._close, args=(False,), name="wasithreads-free", daemon=True).start()
            return
        try:
            self._close(report=True)
        except InstanceCallbackError:
            raise  # not reported yet: goes to sys.unraisablehook
        except Exception:  # noqa: BLE001 - e.g. at interpreter shutdown
            pass

    def __repr__(self) -> str:
        if self._core.exit is not None:
            status = f"closed, ended {self._core.exit.kind.name}"
        elif self.closed:
            status = "closed"
        else:
            status = f"{self.call_mode.value} calls"
        return f"<wasithreads.Instance {status}>"


def _export_type(ptr: int, name: bytes) -> tuple[tuple[ValKind, ...], tuple[ValKind, ...]]:
    size = 8
    while True:
        params = (c_int * size)()
        results = (c_int * size)()
        nparams = c_size_t()
        nresults = c_size_t()
        check(lib.wt_instance_export_type(ptr, name, params, size, byref(nparams), results, size, byref(nresults)))
        if nparams.value <= size and nresults.value <= size:
            return (
                tuple(from_code(params[i]) for i in range(nparams.value)),
                tuple(from_code(results[i]) for i in range(nresults.value)),
            )
        size = max(nparams.value, nresults.value)


async def settled(future: asyncio.Future[T]) -> None:
    """Waits, through further cancellations, until ``future`` has its outcome, and marks
    an exception in it as retrieved."""
    while not future.done():
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            pass
        except BaseException:  # noqa: BLE001 - the outcome of a cancelled call is not reported
            pass
    if not future.cancelled():
        future.exception()


def end_instance(ptr: int) -> None:
    """Ends an instance and joins its threads (interpreter exit, see _run)."""
    raw = _ffi.wt_exit_t()
    err = lib.wt_instance_close(ptr, byref(raw))
    if err:
        lib.wt_error_free(err)
    else:
        lib.wt_exit_clear(byref(raw))


class HelperJob:
    """``fn()`` for a helper thread of ``_waiter``, its outcome handed to ``future``."""

    __slots__ = ("fn", "future", "loop")

    def __init__(self, fn: Callable[[], T], loop: asyncio.AbstractEventLoop, future: asyncio.Future[T]) -> None:
        self.fn: Callable[[], object] = fn
        self.loop = loop
        self.future: asyncio.Future[object] = future  # type: ignore[assignment]

    def _wait_in_helper(self) -> None:
        try:
            value = self.fn()
        except BaseException as e:  # noqa: BLE001 - handed to the awaiting task
            self._settle(None, e)
        else:
            self._settle(value, None)

    def _settle(self, value: object, error: BaseException | None) -> None:
        future = self.future

        def settle() -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)

        try:
            self.loop.call_soon_threadsafe(settle)
        except RuntimeError:
            pass  # the loop is closed: nobody waits any more
