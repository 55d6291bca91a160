"""The options of a run: ``RunOptions`` is the one place they are declared (name, type,
default, meaning); ``Module.run`` and ``Module.start`` take them as keyword arguments
through ``takes_run_options``, which gives both methods their signature and the
documentation of every option, for type checkers and for ``help()`` alike.

Adding an option: a field and its entry in the docstring of ``RunOptions``, and the C
setter that applies it in ``_config.build``.
"""

from __future__ import annotations

import functools
import inspect
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Callable, Protocol, TypeVar, Union

from ._callbacks import DiagnosticCallback, ThreadExitCallback, ThreadStartCallback
from ._convert import PathArg
from ._funcs import Func
from ._stdio import Input, Output

if TYPE_CHECKING:
    from typing_extensions import Concatenate, ParamSpec, dataclass_transform

    P = ParamSpec("P")
else:

    def dataclass_transform(**_: object) -> Callable[[T], T]:
        return lambda cls: cls


T = TypeVar("T")
S = TypeVar("S")
R = TypeVar("R")

Args = Iterable[Union[str, bytes]]
Env = Union[Mapping[str, str], Iterable[tuple[str, str]]]
Dirs = Mapping[PathArg, str]
# A listening socket: an ``int`` fd, an object with ``fileno()`` (``socket.socket``), or
# an "IP:PORT" address for the library to listen on.
Sockets = Iterable[Union[int, str, "HasFileno"]]
# Host functions: module name -> function name -> a callable (typed by its annotations) or
# a Func.
Imports = Mapping[str, Mapping[str, Union[Callable[..., Any], Func]]]


class HasFileno(Protocol):
    def fileno(self) -> int: ...


@dataclass_transform(kw_only_default=True, frozen_default=True)
def _keyword_dataclass(cls: type[T]) -> type[T]:
    # Keyword-only for type checkers everywhere and at run time where dataclasses can
    # (3.10+); Module.run/start refuse positional arguments themselves.
    if sys.version_info >= (3, 10):
        return dataclass(frozen=True, kw_only=True)(cls)
    return dataclass(frozen=True)(cls)


@_keyword_dataclass
class RunOptions:
    """What a run gets besides the module: the keyword arguments of ``Module.run``,
    ``Module.start`` and ``Module.instantiate`` (for an instance they apply for its whole
    life). Every option has a default: leave it out to get it.

    Options:
        imports: host functions the guest imports, ``{"env": {"log": fn}}``: a module
            name, a function name, and a callable or a ``wasithreads.Func``. A callable's
            WebAssembly signature comes from its annotations (``int`` is i32, ``float``
            f64, ``wasithreads.i64``/``f32``/... say others; the return annotation: none
            or ``None``, one type, or a ``tuple[...]`` of several); a first parameter
            annotated ``wasithreads.Caller`` gets the calling guest thread (its ``tid``,
            ``memory``, ``is_ending``, ``end_fd``). Host functions are called on the guest
            thread that calls them (any thread of the run or instance, several at once),
            with the GIL taken. Return ``None``, the value, or a tuple of the values. An
            exception (or a result of the wrong type) traps the calling guest thread with
            the exception's text, which ends the run or instance; the exception is raised
            again, as the ``__cause__`` of a ``CallbackError``, by ``Run.wait`` /
            ``Module.run`` or by the instance's calls and ``close``.
        args: the guest's argv, ``argv[0]`` first (default ``["wasm"]``).
        env: variables for the guest (a mapping or ``(key, value)`` pairs). The guest
            sees no host variable unless ``inherit_env=True``.
        inherit_env: pass the host process's environment too (``env`` comes after it).
        dirs: host directory -> guest path, read-write (e.g. ``{"/srv/data": "/data"}``).
            Without any, the guest has no file system.
        readonly_dirs: like ``dirs``, but the guest may only read.
        sockets: listening sockets for the guest, at descriptors 3, 4, ... in this
            order, before the directories (as the Wasmtime 46 CLI's ``tcplisten``): a
            bound, listening TCP or Unix stream socket (a ``socket.socket`` or an ``int``
            fd; duplicated, and made non-blocking, which the caller's socket shares), or
            an ``"IP:PORT"`` string the run's config binds and listens on (pass a
            ``socket.create_server(...)`` instead to learn a port 0 picked). Accepted
            connections count against ``max_fds`` and close when the run ends.
        stdin: ``None`` = the host's stdin; ``DEVNULL`` = empty; ``bytes`` = that
            data (each run reads it from the start); a ``str``/``os.PathLike`` = a file
            opened when the run starts; an ``int`` fd or a file object with
            ``fileno()`` (duplicated; bytes already buffered in the Python object are
            not seen); another object with ``read()`` is read to the end now.
        stdout, stderr: ``None`` = the host's stdout/stderr; ``DEVNULL`` = discarded;
            ``PIPE`` = collected into ``Exit.stdout`` / ``Exit.stderr`` (bytes, each
            ``fd_write`` whole, threads' writes in the order they happened);
            a callable ``(tid, data: bytes)``; an ``int`` fd or a file object with
            ``fileno()`` (flushed now, then written to directly); a ``str``/
            ``os.PathLike`` = a file created or truncated now; another object with
            ``write()`` gets each write (``bytes``, decoded for text files).
        timeout: seconds; the run ends with ``ExitKind.TIMEOUT`` after it (an instance
            too, counted from ``instantiate``: it bounds the instance's whole life).
        call_timeout: for instances, seconds one export call may take: past it the
            whole instance ends with ``ExitKind.TIMEOUT`` (stopping a thread mid-call
            could leave the guest's locks held), and every call in flight and after
            raises ``InstanceEnded``. Runs ignore it.
        max_threads: most spawned threads alive at once (default 1024); past it
            ``thread-spawn`` returns an error to the guest, and a diagnostic says why
            (``Exit.diagnostics``, ``on_diagnostic``).
        max_memory: cap on the guest's linear memory, bytes; ``memory.grow`` past it
            returns -1. Below the module's minimum the run cannot start (``LimitError``).
        max_fds: most descriptors the run may have open at once, stdio, ``sockets``
            and ``dirs`` included (default 256); past it ``path_open`` and
            ``sock_accept`` fail with ``mfile``. Too few
            for stdio and the directories: the run cannot start (``LimitError``).
        max_table_elements: most table elements all threads' tables hold together
            (default 10 000 000); ``table.grow`` past it returns -1.
        max_memories: most private (unshared) memories all threads' instances define
            together (default 1024); each, even of 0 pages, reserves 4 GiB of address
            space. A thread whose memories do not fit is not started: its spawn fails
            (a diagnostic says why); for the main thread the run cannot start
            (``LimitError``).
        max_instance_bytes: most host memory all threads' instances take for themselves
            (their globals, function references, imports; default 256 MiB), counted
            from above when each thread starts. Past it as for ``max_memories``.
        max_write_bytes: most bytes the guest writes, in all, to files under ``dirs``
            (default: no cap); past it a write is short, then fails with ``dquot``.
        max_files_created: most files, directories and links the guest creates under
            ``dirs`` (default: no cap); past it creating one fails with ``dquot``.
        teardown_grace: seconds the end of a run waits for its threads to stop (default
            5); past it the run's wait returns, a diagnostic names the threads still
            going, and they stop at their next interruption point. Only a thread in a
            callback that does not return, or in one huge instruction, takes that long.
        coredump: a path: when the run ends by a trap, a WebAssembly core dump (the
            tool-conventions format of Wasmtime and ``wasmgdb``) is written there. Its
            directory must exist when the run starts; a failure to write is a diagnostic.
        on_thread_exit: ``(tid, kind, code)`` once per guest thread after it stopped;
            kind is a ``ThreadExitKind`` (a ``str`` enum: "returned", "exited",
            "trapped" or "terminated"), code the ``proc_exit`` code for "exited", else 0.
            (Where a "terminated" thread was: ``Exit.stopped_at[tid]`` after the run.)
        on_thread_start: ``(tid)`` on each new guest thread before it runs wasm.
        on_diagnostic: ``(tid, message)`` for each diagnostic, as it happens, on a guest
            thread or the run's supervisor (they are in ``Exit.diagnostics`` anyway).
        backtraces: record where each thread the run's end stopped was, in
            ``Exit.stopped_at`` (default). This registers a thread-exit callback of
            the binding's own, a short Python call (taking the GIL) on every guest
            thread as it exits; ``False`` leaves guest threads that no callback of
            yours needs without any Python call, and ``Exit.stopped_at`` empty.
    """

    imports: Imports | None = None
    args: Args | None = None
    env: Env | None = None
    inherit_env: bool = False
    dirs: Dirs | None = None
    readonly_dirs: Dirs | None = None
    sockets: Sockets | None = None
    stdin: Input = None
    stdout: Output = None
    stderr: Output = None
    timeout: float | None = None
    call_timeout: float | None = None
    max_threads: int | None = None
    max_memory: int | None = None
    max_fds: int | None = None
    max_table_elements: int | None = None
    max_memories: int | None = None
    max_instance_bytes: int | None = None
    max_write_bytes: int | None = None
    max_files_created: int | None = None
    teardown_grace: float | None = None
    coredump: PathArg | None = None
    on_thread_exit: ThreadExitCallback | None = None
    on_thread_start: ThreadStartCallback | None = None
    on_diagnostic: DiagnosticCallback | None = None
    backtraces: bool = True


_NAMES = frozenset(f.name for f in fields(RunOptions))
_SECTION = "Options:\n"


def _options_doc() -> str:
    """The ``Options:`` section of ``RunOptions.__doc__``, checked to name every field."""
    doc = inspect.cleandoc(RunOptions.__doc__ or "")
    section = doc[doc.index(_SECTION) :]
    entries = re.findall(r"^    (\w+(?:, \w+)*):", section, re.M)  # "    name:" or "    a, b:"
    documented = {name for entry in entries for name in entry.split(", ")}
    assert documented == _NAMES, (
        f"RunOptions: fields not in its docstring {sorted(_NAMES - documented)}, "
        f"documented but no field {sorted(documented - _NAMES)}"
    )
    return section


def _signature(fn: Callable[..., object]) -> inspect.Signature:
    """``fn``'s signature with ``options`` replaced by the fields of ``RunOptions``."""
    own = inspect.signature(fn)
    options = [
        inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=f.type)
        for f in fields(RunOptions)
    ]
    return own.replace(parameters=[*list(own.parameters.values())[:1], *options])


_OPTIONS_DOC = _options_doc()


def _keyword_method(
    make: Callable[P, RunOptions],
) -> Callable[[Callable[[S, RunOptions], R]], Callable[Concatenate[S, P], R]]:
    def decorate(fn: Callable[[S, RunOptions], R]) -> Callable[Concatenate[S, P], R]:
        def method(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
            if args:
                raise TypeError(f"{fn.__qualname__}() takes 1 positional argument but {1 + len(args)} were given")
            try:
                options = make(*args, **kwargs)  # args is empty; the ParamSpec wants it passed
            except TypeError:
                unknown = [name for name in kwargs if name not in _NAMES]
                if unknown:  # as Python says it for a function's own parameters
                    raise TypeError(f"{fn.__qualname__}() got an unexpected keyword argument {unknown[0]!r}") from None
                raise
            return fn(self, options)

        functools.update_wrapper(method, fn)
        mark = getattr(inspect, "markcoroutinefunction", None)  # 3.12+
        if mark is not None and inspect.iscoroutinefunction(fn):
            mark(method)  # it returns fn's coroutine: inspect and asyncio see an async def
        method.__doc__ = f"{inspect.cleandoc(fn.__doc__ or '')}\n\n{_OPTIONS_DOC}"
        vars(method)["__signature__"] = _signature(fn)  # what inspect.signature and help() show
        return method

    return decorate


#: Decorates ``fn(self, options: RunOptions)`` into a method taking the fields of
#: ``RunOptions`` as keyword arguments (type checkers see them through the ``ParamSpec``),
#: with the options documented at the end of its docstring.
takes_run_options = _keyword_method(RunOptions)
