"""How a run ended (``Exit``, ``ExitKind``) and how one guest thread did
(``ThreadExitKind``)."""

from __future__ import annotations

import ctypes
import enum
from collections.abc import Mapping
from ctypes import byref
from dataclasses import dataclass, field
from types import MappingProxyType

from . import _ffi
from ._convert import StrEnum
from ._errors import ExitError
from ._ffi import lib


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


class ThreadExitKind(StrEnum):
    """How one guest thread ended (``wt_thread_exit_kind``), as ``on_thread_exit`` gets
    it. A ``str`` enum: each member equals, prints and formats as its value
    (``ThreadExitKind.RETURNED == "returned"``, ``f"{kind}"`` is ``"returned"``)."""

    RETURNED = "returned"
    """``_start`` or ``wasi_thread_start`` returned."""
    EXITED = "exited"
    """The thread called ``proc_exit(code)``, which ended the run."""
    TRAPPED = "trapped"
    """The thread trapped, which ended the run."""
    TERMINATED = "terminated"
    """The run's end (another thread, a timeout, the host) stopped the thread."""


_EXIT_KINDS = {k.value: k for k in ExitKind}
_NO_BACKTRACES: Mapping[int, str] = MappingProxyType({})

#: ``wt_thread_exit_kind`` values to ``ThreadExitKind``.
THREAD_KINDS = {
    _ffi.WT_THREAD_RETURNED: ThreadExitKind.RETURNED,
    _ffi.WT_THREAD_EXITED: ThreadExitKind.EXITED,
    _ffi.WT_THREAD_TRAPPED: ThreadExitKind.TRAPPED,
    _ffi.WT_THREAD_TERMINATED: ThreadExitKind.TERMINATED,
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
        stdout, stderr: what the guest wrote to the stream, for a run with
            ``stdout=PIPE`` / ``stderr=PIPE``; ``None`` otherwise. Each ``fd_write`` is
            in one piece; writes of different threads are in the order they happened.
        diagnostics: ``(tid, message)`` for each thing the library told the host about
            during the run, in order: a ``thread-spawn`` that failed and why (e.g. the
            thread limit), threads that had not stopped when the teardown grace ran
            out, a core dump that could not be written. At most 64.

    ``stdout``, ``stderr`` and ``diagnostics`` are not part of ``==`` / ``hash`` either.
    """

    kind: ExitKind
    code: int
    tid: int
    message: str | None = None
    stopped_at: Mapping[int, str] = field(default_factory=lambda: _NO_BACKTRACES, compare=False)
    stdout: bytes | None = field(default=None, compare=False)
    stderr: bytes | None = field(default=None, compare=False)
    diagnostics: tuple[tuple[int, str], ...] = field(default=(), compare=False)

    @property
    def ok(self) -> bool:
        """True when the run ended with exit code 0."""
        return self.kind is ExitKind.CODE and self.code == 0

    def check(self) -> Exit:
        """Returns this ``Exit`` if the run ended with exit code 0, else raises
        ``ExitError`` (with this ``Exit`` as its ``exit``)."""
        if self.ok:
            return self
        if self.kind is ExitKind.CODE:
            why = f"exited with code {self.code} (thread {self.tid})"
        elif self.kind is ExitKind.TRAP:
            why = f"trapped in thread {self.tid}: {self.message}"
        elif self.kind is ExitKind.TIMEOUT:
            why = "timed out"
        else:
            why = "was cancelled"
        raise ExitError(f"the run {why}", self)


def take_exit(
    raw: _ffi.wt_exit_t,
    stopped: dict[int, str] | None = None,
    output: tuple[bytes | None, bytes | None] = (None, None),
    diagnostics: tuple[tuple[int, str], ...] = (),
) -> Exit:
    """Converts a filled ``wt_exit_t`` and releases its message. ``stopped`` is what the
    run's thread-exit trampoline recorded (every call of it has returned by now),
    ``output`` what the run's pipes collected, ``diagnostics`` what the library said."""
    message = None
    if raw.message:
        message = ctypes.string_at(raw.message).decode("utf-8", "replace")
    lib.wt_exit_clear(byref(raw))
    stopped_at = MappingProxyType(dict(sorted(stopped.items()))) if stopped else _NO_BACKTRACES
    return Exit(_EXIT_KINDS[raw.kind], raw.code, raw.tid, message, stopped_at, *output, diagnostics)
