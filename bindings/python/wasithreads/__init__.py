"""Run WebAssembly modules that use wasi-threads, in-process, on Wasmtime.

A Python binding (ctypes, ABI mode) of libwasithreads::

    import wasithreads as wt

    engine = wt.Engine()
    module = engine.load(b'(module ...)')        # .wasm bytes, WAT text as bytes, or a path
    exit = module.run(args=["prog", "x"], stdout=wt.PIPE)
    print(exit.stdout)                             # bytes, every thread's writes in order
    if exit.kind is wt.ExitKind.TRAP:
        print(f"thread {exit.tid} trapped:", exit.message)
    for tid, backtrace in exit.stopped_at.items():  # threads the run's end stopped
        print(f"thread {tid} was stopped at", backtrace)

    def log(caller: wt.Caller, ptr: int, length: int) -> None:   # a host function
        print(caller.tid, caller.memory[ptr:ptr + length].tobytes().decode())

    with module.instantiate(imports={"env": {"log": log}}) as inst:   # a plugin
        ptr = inst.exports.malloc(4)
        inst.memory.write(ptr, b"data")
        print(inst.exports.process(ptr, 4))    # from any thread, in parallel

Set ``WASITHREADS_LIB=/path/to/libwasithreads.so`` to use another build of the library
than the one shipped in the package.
"""

from ._engine import Engine
from ._errors import (
    CallbackError,
    Error,
    ExitError,
    HostIOError,
    InstanceCallbackError,
    InstanceEnded,
    LimitError,
    LinkError,
    ModuleError,
    UsageError,
)
from ._exit import Exit, ExitKind, ThreadExitKind
from ._ffi import library_path, version
from ._funcs import Caller, Func
from ._instance import CallMode, Export, Exports, Instance, Memory
from ._module import Module
from ._run import Run
from ._stdio import DEVNULL, PIPE
from ._values import ValKind, f32, f64, i32, i64

# Tracebacks and reprs name the public path (wasithreads.Error), which stays when the
# private modules change.
for _public in (
    CallMode,
    CallbackError,
    Caller,
    Engine,
    Error,
    Exit,
    ExitError,
    ExitKind,
    Export,
    Exports,
    Func,
    HostIOError,
    Instance,
    InstanceCallbackError,
    InstanceEnded,
    LimitError,
    LinkError,
    Memory,
    Module,
    ModuleError,
    Run,
    ThreadExitKind,
    UsageError,
    ValKind,
):
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
    "PIPE",
    "CallMode",
    "CallbackError",
    "Caller",
    "Engine",
    "Error",
    "Exit",
    "ExitError",
    "ExitKind",
    "Export",
    "Exports",
    "Func",
    "HostIOError",
    "Instance",
    "InstanceCallbackError",
    "InstanceEnded",
    "LimitError",
    "LinkError",
    "Memory",
    "Module",
    "ModuleError",
    "Run",
    "ThreadExitKind",
    "UsageError",
    "ValKind",
    "f32",
    "f64",
    "i32",
    "i64",
    "library_path",
    "version",
]
