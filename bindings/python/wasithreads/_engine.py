"""``Engine``: compiles modules; its settings apply to every module it loads."""

from __future__ import annotations

import os
from ctypes import byref, c_void_p
from typing import Union

from ._convert import cpath, ptr, uint
from ._errors import Error, HostIOError, check
from ._ffi import lib
from ._handle import Handle, Owned
from ._module import Module

#: What ``Engine.load`` takes: module bytes (binary or WAT text) or a path.
Source = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", "os.PathLike[bytes]"]


class Engine(Owned):
    """A compilation and execution environment (``wt_engine_t``). Thread-safe.

    Args:
        opt_level: Cranelift optimisation level: 0 none, 1 speed (default), 2 speed and size.
        cache: use Wasmtime's on-disk compilation cache (default off).
        max_wasm_stack: largest wasm stack of one guest thread, bytes (default 1 MiB);
            deeper recursion traps.
        interrupt_tick_us: while a run is ending, how often threads that have not stopped
            yet are woken again (default 1000 µs, at least 50).
        epoch_interruption: stop busy guest code with Wasmtime's epoch checks instead of
            the interrupt page (default off; about five times the cost of the page's
            checks, but no signal: for running under valgrind and similar tools).
        max_module_bytes: the largest module ``load`` compiles, in bytes of WebAssembly
            binary (WAT is converted first); a bigger one raises ``LimitError`` before
            it is compiled (default: no limit). For hosts that load untrusted modules.
        max_functions: the most functions (imported and defined) of a module ``load``
            compiles; more raises ``LimitError`` (default: no limit).

    Raises:
        UsageError: a setting out of range (``opt_level`` not 0-2, ``max_wasm_stack``
            0 or above 256 MiB).

    Use as a context manager or call ``close()``; modules keep working in runs already
    started, but cannot be loaded or started once their engine is closed.
    """

    def __init__(
        self,
        *,
        opt_level: int | None = None,
        cache: bool | None = None,
        max_wasm_stack: int | None = None,
        interrupt_tick_us: int | None = None,
        epoch_interruption: bool | None = None,
        max_module_bytes: int | None = None,
        max_functions: int | None = None,
    ) -> None:
        config = None
        settings = (
            opt_level,
            cache,
            max_wasm_stack,
            interrupt_tick_us,
            epoch_interruption,
            max_module_bytes,
            max_functions,
        )
        if any(v is not None for v in settings):
            config = lib.wt_engine_config_new()
            if not config:
                raise MemoryError("wt_engine_config_new")
        try:
            if opt_level is not None:
                lib.wt_engine_config_set_opt_level(config, uint(opt_level, "opt_level", 8))
            if cache is not None:
                lib.wt_engine_config_set_cache(config, bool(cache))
            if max_wasm_stack is not None:
                lib.wt_engine_config_set_max_wasm_stack(config, uint(max_wasm_stack, "max_wasm_stack", 63))
            if interrupt_tick_us is not None:
                lib.wt_engine_config_set_interrupt_tick_us(config, uint(interrupt_tick_us, "interrupt_tick_us", 64))
            if epoch_interruption is not None:
                lib.wt_engine_config_set_epoch_interruption(config, bool(epoch_interruption))
            if max_module_bytes is not None:
                lib.wt_engine_config_set_max_module_bytes(config, uint(max_module_bytes, "max_module_bytes", 64))
            if max_functions is not None:
                lib.wt_engine_config_set_max_functions(config, uint(max_functions, "max_functions", 64))
            out = c_void_p()
            check(lib.wt_engine_new(config, byref(out)))
        finally:
            lib.wt_engine_config_free(config)
        self._h = Handle(ptr(out), lib.wt_engine_free, "engine")

    # -- modules

    def load(self, source: Source) -> Module:
        """Compiles a module.

        Args:
            source: the module as ``bytes`` (``.wasm`` binary or WAT text; also
                ``bytearray``/``memoryview``), or the path of a ``.wasm``/``.wat`` file
                (``str`` or ``os.PathLike``). Pass WAT held in a ``str`` as
                ``text.encode()``: a ``str`` is always a path.

        Raises:
            ModuleError: the bytes are not a module wasithreads can compile.
            LinkError: the module imports something wasithreads does not provide, or
                ``wasi::thread-spawn`` without a shared memory.
            LimitError: the module is over the engine's ``max_module_bytes`` or
                ``max_functions``, or has a function too big for Wasmtime once
                interruption points are added.
            HostIOError: the file cannot be read.
        """
        out = c_void_p()
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            self._h.use(lambda engine: check(lib.wt_module_load(engine, data, len(data), byref(out))))
        elif isinstance(source, (str, os.PathLike)):
            path = cpath(source, "module path")
            try:
                self._h.use(lambda engine: check(lib.wt_module_load_file(engine, path, byref(out))))
            except Error as e:
                if isinstance(source, str) and source.lstrip().startswith("(") and not os.path.exists(source):
                    hint = type(e)(f"{e} (a str is a path; pass WAT text as bytes: text.encode())")
                    if isinstance(e, HostIOError) and isinstance(hint, HostIOError):
                        hint.errno = e.errno
                    raise hint from None
                raise
        else:
            raise TypeError(f"source must be bytes or a path, not {type(source).__name__}")
        return Module(self, ptr(out))

    def validate(self, source: Source) -> None:
        """Checks a module the way ``load`` does (it compiles it, so it costs as much)
        and raises what ``load`` would, saying what is wrong, e.g. ``LinkError`` "the
        module imports wasi::thread-spawn but has no shared memory". ``source`` is what
        ``load`` takes; a file is read here."""
        if isinstance(source, (str, os.PathLike)):
            path = cpath(source, "module path")
            try:
                with open(path, "rb") as f:
                    source = f.read()
            except OSError as e:
                error = HostIOError(f"reading {os.fsdecode(path)}: {e.strerror} (os error {e.errno})")
                error.errno = e.errno
                raise error from None
        if not isinstance(source, (bytes, bytearray, memoryview)):
            raise TypeError(f"source must be bytes or a path, not {type(source).__name__}")
        data = bytes(source)
        self._h.use(lambda engine: check(lib.wt_module_validate(engine, data, len(data))))

    def deserialize(self, data: bytes | bytearray | memoryview) -> Module:
        """Loads a module from bytes made by ``Module.serialize`` with the same library
        version and engine settings, skipping compilation.

        SECURITY: the bytes are machine code, checked for format and version but not for
        integrity. Only pass bytes this library produced and nobody else could change.

        Raises:
            ModuleError: bytes of another version or engine settings, or not serialized.
        """
        data = bytes(data)
        out = c_void_p()
        self._h.use(lambda engine: check(lib.wt_module_deserialize(engine, data, len(data), byref(out))))
        return Module(self, ptr(out))

    # -- lifetime

    def close(self) -> None:
        """Releases the engine (idempotent). Runs already started go on."""
        super().close()
