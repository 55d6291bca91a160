"""The exceptions of the API, and the conversion of a returned ``wt_error_t`` into one.

The C API returns an error as a message only, no kind. ``classify`` is the one place
that gives it a kind: the message is a cause chain, ``"context: cause: cause"``, whose
outermost parts are phrases the library writes itself (not texts of Wasmtime or the OS),
and stable enough to sort by. ``_KINDS`` lists the opening phrases of each kind;
``classify`` tries them at the start of the message and, failing that, after each
``": "`` in turn (so ``"loading x.wasm: unknown import ..."`` is a ``LinkError``). An
unknown message falls back on what the failed call was doing (``default``): a module
load is a ``ModuleError``, anything else a plain ``Error``. An ``"(os error N)"`` in an
``HostIOError`` sets its ``errno``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ._ffi import lib

if TYPE_CHECKING:
    from ._exit import Exit


class Error(Exception):
    """A libwasithreads call failed or was misused; ``str(error)`` is the library's message.

    Raised as one of the subclasses below when the message says which kind of failure it
    is (``ModuleError``, ``LinkError``, ``LimitError``, ``UsageError``, ``HostIOError``);
    as ``Error`` itself otherwise (an internal error of the library). Problems the binding
    sees before calling the library (a wrong type, a NUL byte in a string, a negative
    timeout) raise ``TypeError`` / ``ValueError`` instead.
    """


class ModuleError(Error):
    """The bytes are not a module wasithreads can compile: not WebAssembly nor WAT,
    invalid, a shape it does not support (two shared memories, a 64-bit one, ...), or
    serialized bytes of another version or engine settings."""


class LinkError(Error):
    """A valid module that wasithreads cannot run as it is: an import it does not provide
    (only WASI preview 1, ``wasi::thread-spawn`` and one memory are), ``thread-spawn``
    without a shared memory, no ``_start`` export."""


class LimitError(Error):
    """A run could not start within its limits: ``max_memory`` below the module's
    minimum memory, ``max_fds`` without room for stdio and the directories, or the OS
    refused a thread or memory."""


class UsageError(Error, ValueError):
    """The API was misused: a closed engine, module or run, a setting out of range
    (``opt_level``, ``max_wasm_stack``, an environment key with ``=``), ``Run.wait``
    from the run's own callback. Also a ``ValueError``."""


class HostIOError(Error, OSError):
    """A file or descriptor of the host could not be used: a module file, a directory
    for ``dirs``, a file or descriptor for stdin/stdout/stderr, the core dump's directory.
    Also an ``OSError``; ``errno`` is set when the library names the OS error."""


class CallbackError(Error):
    """One or more callbacks (stdout/stderr/on_thread_exit/on_thread_start/on_diagnostic)
    raised.

    The first exception cancels the run. The run still ends normally (every guest thread is
    stopped and joined); then ``Module.run`` / ``Run.wait`` (or ``Run.close`` if the run
    was never waited for) raises this error. ``__cause__`` is the first exception.

    Attributes:
        exit: how the run ended (usually ``ExitKind.CANCELLED``, because of the exception).
        errors: every exception the callbacks raised, in order. On Python 3.11+ each
            carries a note saying which callback and guest thread raised it.
    """

    exit: Exit | None
    errors: list[BaseException]

    def __init__(self, message: str, exit: Exit | None, errors: list[BaseException]) -> None:
        super().__init__(message)
        self.exit = exit
        self.errors = errors


class ExitError(Error):
    """Raised by ``Exit.check()``: the run did not end with exit code 0 (another code, a
    trap, a timeout or a cancel). ``exit`` is how it ended."""

    exit: Exit

    def __init__(self, message: str, exit: Exit) -> None:
        super().__init__(message)
        self.exit = exit


# The opening phrases of the library's messages, by kind (see the module docstring).
_KINDS: list[tuple[type[Error], re.Pattern[str]]] = [
    (
        UsageError,
        re.compile(
            r"`\w+` is NULL|`\w+` is not valid UTF-8|stream must be 1|environment key .* must be"
            r"|opt level must be|max wasm stack must be|\S+ is not a file descriptor|the core dump path .* names no"
            r"|the module was loaded by a different engine"
        ),
    ),
    (
        LinkError,
        re.compile(
            r"unknown import|unsupported import|import `wasi::thread-spawn` must|the module imports"
            r"|cannot run this module|linking the module"
        ),
    ),
    (
        ModuleError,
        re.compile(
            r"module bytes are empty|not a WebAssembly|invalid WebAssembly|compiling module|reading module"
            r"|rewriting the module|not a module serialized|serialized module is|reading the serialized"
            r"|the compiled module has no interruption|the module has|shared memory \d+ is|data segment"
        ),
    ),
    (
        LimitError,
        re.compile(
            r"the memory limit|the descriptor limit|the descriptor table is full|the OS refused"
            r"|creating the shared memory|creating the memory|creating the interrupt page|opening the interrupt page"
        ),
    ),
    (
        HostIOError,
        re.compile(r"reading |opening |creating |cannot duplicate descriptor|writing "),
    ),
]
_PARTS = re.compile(r"(?:^|: )")
_ERRNO = re.compile(r"\(os error (\d+)\)")


def classify(message: str, default: type[Error] = Error) -> type[Error]:
    """The kind of error ``message`` (a library error's text) says it is."""
    for part in _PARTS.finditer(message):
        start = part.end()
        for kind, opening in _KINDS:
            if opening.match(message, start):
                return kind
    return default


def make_error(message: str, default: type[Error] = Error) -> Error:
    """The exception for a library error's ``message``."""
    kind = classify(message, default)
    error = kind(message)
    if isinstance(error, HostIOError):
        errno = _ERRNO.search(message)
        if errno:
            error.errno = int(errno.group(1))
    return error


def check(err: int | None, default: type[Error] = Error) -> None:
    """Raises the ``Error`` a C call returned (a ``wt_error_t *``, freed here), if any;
    ``default`` is its kind when the message does not say (see ``classify``)."""
    if err:
        raw = lib.wt_error_message(err)
        message = raw.decode("utf-8", "replace") if raw is not None else "unknown error"
        lib.wt_error_free(err)
        raise make_error(message, default)
