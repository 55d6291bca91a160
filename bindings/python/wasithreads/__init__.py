"""Run WebAssembly modules that use wasi-threads, in-process, on Wasmtime.

A Python binding (ctypes, ABI mode) of libwasithreads::

    import wasithreads as wt

    engine = wt.Engine()
    module = engine.load(b'(module ...)')        # .wasm bytes, WAT text as bytes, or a path
    exit = module.run(args=["prog", "x"], stdout=lambda tid, data: print(tid, data))
    if exit.kind is wt.ExitKind.TRAP:
        print(f"thread {exit.tid} trapped:", exit.message)
    for tid, backtrace in exit.stopped_at.items():  # threads the run's end stopped
        print(f"thread {tid} was stopped at", backtrace)

Set ``WASITHREADS_LIB=/path/to/libwasithreads.so`` to use another build of the library
than the one shipped in the package.
"""

from ._engine import Engine
from ._errors import CallbackError, Error
from ._exit import Exit, ExitKind
from ._ffi import library_path, version
from ._module import Module
from ._run import Run
from ._stdio import DEVNULL

# Tracebacks and reprs name the public path (wasithreads.Error), which stays when the
# private modules change.
for _public in (CallbackError, Engine, Error, Exit, ExitKind, Module, Run):
    _public.__module__ = __name__
del _public

try:
    from importlib.metadata import PackageNotFoundError as _NotFound
    from importlib.metadata import version as _dist_version

    try:
        __version__ = _dist_version("wasithreads")
    except _NotFound:  # used from a source tree with WASITHREADS_LIB
        __version__ = version()
except ImportError:  # pragma: no cover
    __version__ = version()

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
