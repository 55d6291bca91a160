"""The exceptions of the API, and the conversion of a returned ``wt_error_t`` into one.

The C library gives every error a kind (``wt_error_kind``: decided where the error is
made, never read from its message) and, for a failed OS call, the OS error
(``wt_error_os_errno``). ``classify`` maps the kind to an exception class; the
``errno`` of an ``HostIOError`` is the OS error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._ffi import lib

if TYPE_CHECKING:
    from ._exit import Exit


class Error(Exception):
    """A libwasithreads call failed or was misused; ``str(error)`` is the library's message.

    Raised as one of the subclasses below, chosen by the kind the library gives the error
    (``wt_error_kind``: ``ModuleError``, ``LinkError``, ``LimitError``, ``UsageError``,
    ``HostIOError``); as ``Error`` itself for an internal error of the library. Problems the binding
    sees before calling the library (a wrong type, a NUL byte in a string, a negative
    timeout) raise ``TypeError`` / ``ValueError`` instead.
    """


class ModuleError(Error):
    """The bytes are not a module wasithreads can compile: not WebAssembly nor WAT,
    invalid, a shape it does not support (two shared memories, a 64-bit one, ...), or
    serialized bytes of another version or engine settings."""


class LinkError(Error):
    """A valid module that wasithreads cannot run as it is: an import it does not provide
    (WASI preview 1, ``wasi::thread-spawn``, one memory and the host functions of
    ``imports`` are), a host function of another type than the import's, ``thread-spawn``
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
    Also an ``OSError``; ``errno`` is the OS error (``wt_error_os_errno``) when there
    is one."""


class CallbackError(Error):
    """One or more callbacks (stdout/stderr/on_thread_exit/on_thread_start/on_diagnostic)
    or host functions (``imports``) raised.

    The first exception of a callback cancels the run; one of a host function traps the
    guest thread that called it, which ends the run. The run still ends normally (every
    guest thread is stopped and joined); then ``Module.run`` / ``Run.wait`` (or
    ``Run.close`` if the run was never waited for) raises this error. ``__cause__`` is
    the first exception. (For an instance: ``InstanceCallbackError``.)

    Attributes:
        exit: how the run ended (``ExitKind.CANCELLED`` after a callback's exception,
            ``TRAP`` with the exception's text after a host function's).
        errors: every exception the callbacks raised, in order. On Python 3.11+ each
            carries a note saying which callback and guest thread raised it.
    """

    exit: Exit | None
    errors: list[BaseException]

    def __init__(self, message: str, exit: Exit | None, errors: list[BaseException]) -> None:
        super().__init__(message)
        self.exit = exit
        self.errors = errors


class InstanceEnded(Error):
    """The instance ended, so the call did not run or did not return (``WT_ERROR_ENDED``).

    An instance ends at the first of: a trap or ``proc_exit`` in any of its guest threads
    (in a call, in a thread the guest spawned, in a host function that raised), its
    ``call_timeout``, ``Instance.cancel``, ``Instance.close``. Every call in flight then
    raises this, and so does every later call, at once, with the same ``exit``.

    Attributes:
        exit: the instance's first exit (as ``Run.wait`` gives a run's: ``kind``,
            ``code``, ``tid``, the trap ``message`` with its wasm backtrace). ``None`` when
            raised by ``Module.instantiate``, whose ``_initialize`` (or start function)
            ended the instance: the message says how.
    """

    exit: Exit | None

    def __init__(self, message: str, exit: Exit | None = None) -> None:
        super().__init__(message)
        self.exit = exit


class InstanceCallbackError(CallbackError, InstanceEnded):
    """The instance ended because a host function or callback of yours raised: both a
    ``CallbackError`` (``errors``, ``__cause__`` = the first exception) and an
    ``InstanceEnded`` (``exit``: a host function that raised traps its guest thread, so
    usually ``ExitKind.TRAP`` with the exception's text; a callback that raised cancels
    the instance). Raised, like ``InstanceEnded``, by every call after the end."""

    def __init__(self, message: str, exit: Exit | None, errors: list[BaseException]) -> None:
        CallbackError.__init__(self, message, exit, errors)


class ExitError(Error):
    """Raised by ``Exit.check()``: the run did not end with exit code 0 (another code, a
    trap, a timeout or a cancel). ``exit`` is how it ended."""

    exit: Exit

    def __init__(self, message: str, exit: Exit) -> None:
        super().__init__(message)
        self.exit = exit


# ``wt_error_kind_t``'s values (include/wasithreads.h) and their exception classes;
# ``WT_ERROR_OTHER`` (0), an internal error of the library, is ``Error`` itself.
WT_ERROR_OTHER = 0
WT_ERROR_BAD_MODULE = 1
WT_ERROR_LINK = 2
WT_ERROR_LIMIT = 3
WT_ERROR_MISUSE = 4
WT_ERROR_IO = 5
WT_ERROR_ENDED = 6
_KINDS: dict[int, type[Error]] = {
    WT_ERROR_BAD_MODULE: ModuleError,
    WT_ERROR_LINK: LinkError,
    WT_ERROR_LIMIT: LimitError,
    WT_ERROR_MISUSE: UsageError,
    WT_ERROR_IO: HostIOError,
    WT_ERROR_ENDED: InstanceEnded,
}


def classify(kind: int) -> type[Error]:
    """The exception class of a library error of kind ``kind`` (a ``wt_error_kind_t``)."""
    return _KINDS.get(kind, Error)


def make_error(message: str, kind: int = WT_ERROR_OTHER, os_errno: int = 0) -> Error:
    """The exception for a library error: its ``message``, ``kind`` and OS error."""
    error = classify(kind)(message)
    if isinstance(error, HostIOError) and os_errno:
        error.errno = os_errno
    return error


def take(err: int) -> Error:
    """The ``Error`` for a ``wt_error_t *`` a C call returned (freed here)."""
    raw = lib.wt_error_message(err)
    message = raw.decode("utf-8", "replace") if raw is not None else "unknown error"
    kind = lib.wt_error_kind(err)
    os_errno = lib.wt_error_os_errno(err)
    lib.wt_error_free(err)
    return make_error(message, kind, os_errno)


def check(err: int | None) -> None:
    """Raises the ``Error`` a C call returned (a ``wt_error_t *``, freed here), if any."""
    if err:
        raise take(err)
