"""The exceptions of the API, and the conversion of a returned ``wt_error_t`` into one."""

from __future__ import annotations

from ._exit import Exit
from ._ffi import lib


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

    exit: Exit | None
    errors: list[BaseException]

    def __init__(self, message: str, exit: Exit | None, errors: list[BaseException]) -> None:
        super().__init__(message)
        self.exit = exit
        self.errors = errors


def check(err: int | None) -> None:
    """Raises the ``Error`` a C call returned (a ``wt_error_t *``, freed here), if any."""
    if err:
        raw = lib.wt_error_message(err)
        message = raw.decode("utf-8", "replace") if raw is not None else "unknown error"
        lib.wt_error_free(err)
        raise Error(message)
