"""``Module``: a compiled module, run (``run``) or started (``start``) with ``RunOptions``."""

from __future__ import annotations

import asyncio
import ctypes
import threading
from ctypes import byref
from typing import TYPE_CHECKING

from . import _config, _ffi, _waiter
from ._callbacks import RunState
from ._errors import InstanceCallbackError, InstanceEnded, check, take
from ._exit import Exit
from ._ffi import lib
from ._handle import Handle, Owned
from ._instance import HelperJob, Instance, settled
from ._options import RunOptions, takes_run_options
from ._run import Run, is_main_thread, release_callbacks

if TYPE_CHECKING:
    from ._engine import Engine


class Module(Owned):
    """A compiled module (``wt_module_t``), made by ``Engine.load``. Thread-safe: any number
    of threads may run it at once."""

    def __init__(self, engine: Engine, ptr: int) -> None:
        self._engine = engine
        self._h = Handle(ptr, lib.wt_module_free, "module")

    @property
    def engine(self) -> Engine:
        return self._engine

    @takes_run_options
    def run(self, options: RunOptions) -> Exit:
        """Runs ``_start`` and waits until every guest thread has exited and been joined.

        Callbacks run on guest threads, possibly at the same time for different threads
        and streams (never two at once for one output stream). If one raises, the run is
        cancelled and, once it has ended, ``CallbackError`` is raised.

        Ctrl-C (``KeyboardInterrupt`` in the main thread) cancels the run, waits for its
        threads to stop, and propagates.

        Returns:
            how the run ended (traps, ``proc_exit``, timeouts are results, not exceptions).

        Raises:
            LinkError: the module cannot run (no ``_start``).
            HostIOError: a file or directory of the options cannot be opened.
            LimitError: ``max_memory`` or ``max_fds`` leave no room for the module.
            CallbackError: a callback raised.
        """
        run = Run()
        try:
            config, run._keep = _config.build(options, run._state)
            if not run._state.user_callbacks and not is_main_thread() and not threading.current_thread().daemon:
                # No Python callback of the user's (nothing to cancel the run on an
                # exception) and no Ctrl-C to serve (signals go to the main thread): plain
                # wt_run, which supervises the run on this thread instead of starting a
                # supervisor thread. Not in a daemon thread: the binding's own trampolines
                # (diagnostics, backtraces) are registered, such a thread may still be in
                # wt_run at interpreter exit, and only runs of the start path are
                # cancelled and joined then (_run._close_runs_at_exit), before guest
                # threads could call into a finalizing interpreter.
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

    @takes_run_options
    async def run_async(self, options: RunOptions) -> Exit:
        """``run`` for asyncio: starts the run and awaits its end without blocking the
        event loop (same options, same result and exceptions).

        Cancelling the awaiting task cancels the run: ``CancelledError`` is raised once
        every guest thread has stopped and been joined, and the run is freed.
        Callbacks still run on guest threads, not in the event loop: to hand something
        to the loop from one, use ``loop.call_soon_threadsafe``.
        """
        run = Run()
        try:
            config, run._keep = _config.build(options, run._state)
            self._launch(run, config)
            return await run.wait_async()
        finally:
            run._close(report=False)

    @takes_run_options
    def start(self, options: RunOptions) -> Run:
        """Starts a run like ``run`` (same options) and returns at once.

        Use the ``Run`` as a context manager (leaving the block cancels the run if it is
        still going and frees it) or call ``close()``.
        """
        run = Run()
        config, run._keep = _config.build(options, run._state)
        try:
            self._launch(run, config)
        except BaseException:
            run._close(report=False)
            raise
        return run

    @takes_run_options
    def instantiate(self, options: RunOptions) -> Instance:
        """Instantiates the module once, as a plugin: on the calling thread as the
        instance's main guest thread (tid 0), running its ``_initialize`` export if it has
        one (a command's ``_start`` is not run; its exports can still be called). The
        options (``imports`` above all) apply for the instance's whole life.

        Use the ``Instance`` as a context manager (leaving the block closes it: every
        guest thread ended and joined) or call ``close()``.

        Raises:
            LinkError: an import that neither WASI, ``thread-spawn`` nor ``imports``
                provides, or a host function of another type (the message names both).
            InstanceEnded: ``_initialize`` (or the start function) trapped, exited or ran
                past the timeout; the message says how (``exit`` is ``None``).
            InstanceCallbackError: the same, because a host function raised.
            HostIOError, LimitError: as for ``run``.
        """
        return self._instantiate(options)

    def _instantiate(self, options: RunOptions) -> Instance:
        inst = Instance()
        config, inst._keep = _config.build(options, inst._state)
        out = byref(inst._out)
        try:
            err = self._engine._h.use(
                lambda engine: self._h.use(lambda module: lib.wt_instance_new(engine, module, config, out))
            )
        finally:
            lib.wt_run_config_free(config)
        if err:
            error = take(err)
            state = inst._state
            release_callbacks(state, inst._keep)
            inst._keep = []
            state.close_pipes()
            if isinstance(error, InstanceEnded) and state.errors:
                first = state.errors[0]
                text = f"{type(first).__name__}: {first} raised in a host function or callback; {error}"
                wrapped = InstanceCallbackError(text, None, state.errors)
                raise wrapped from first
            raise error
        inst._adopt()
        return inst

    @takes_run_options
    async def instantiate_async(self, options: RunOptions) -> Instance:
        """``instantiate`` for asyncio: instantiates on a helper thread (which is then the
        instance's main guest thread) and awaits it without blocking the event loop.
        Cancelling the awaiting task waits for ``_initialize`` to end, closes the
        instance and raises ``CancelledError``."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Instance] = loop.create_future()
        _waiter.wait_for(HelperJob(lambda: self._instantiate(options), loop, done))
        try:
            return await asyncio.shield(done)
        except asyncio.CancelledError:
            await settled(done)
            if not done.cancelled() and done.exception() is None:
                done.result().close()
            raise

    def _run_here(self, config: int | None, state: RunState) -> Exit:
        """``wt_run`` on the calling thread (not the main thread; no Python callbacks of
        the user's, at most the binding's own exit trampoline, which never raises)."""
        raw = _ffi.wt_exit_t()
        try:
            self._engine._h.use(
                lambda engine: self._h.use(lambda module: check(lib.wt_run(engine, module, config, byref(raw))))
            )
        finally:
            lib.wt_run_config_free(config)
        return state.exit(raw)

    def _launch(self, run: Run, config: int | None) -> None:
        """Starts ``run`` with ``config`` (and frees the config). wt_run_start writes the
        pointer straight into the Run, so that an exception at any point (KeyboardInterrupt
        included) leaves a Run that ``_close`` can free."""
        out = byref(run._out)
        try:
            self._engine._h.use(
                lambda engine: self._h.use(lambda module: check(lib.wt_run_start(engine, module, config, out)))
            )
        finally:
            lib.wt_run_config_free(config)
        run._adopt()

    def serialize(self) -> bytes:
        """The compiled module (machine code included), for ``Engine.deserialize``."""
        raw = _ffi.wt_bytes_t()
        self._h.use(lambda module: check(lib.wt_module_serialize(module, byref(raw))))
        try:
            return ctypes.string_at(raw.data, raw.len)
        finally:
            lib.wt_bytes_free(byref(raw))

    def close(self) -> None:
        """Releases the module (idempotent). Runs in progress keep it alive."""
        super().close()
