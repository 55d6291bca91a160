"""How a run ended (``Exit``, ``ExitKind``) and how one guest thread did."""

from __future__ import annotations

import ctypes
import enum
from collections.abc import Mapping
from ctypes import byref
from dataclasses import dataclass, field
from types import MappingProxyType

from . import _ffi
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


_EXIT_KINDS = {k.value: k for k in ExitKind}
_NO_BACKTRACES: Mapping[int, str] = MappingProxyType({})

#: How one guest thread ended (``wt_thread_exit_kind``), as ``on_thread_exit`` names it.
THREAD_KINDS = {
    _ffi.WT_THREAD_RETURNED: "returned",
    _ffi.WT_THREAD_EXITED: "exited",
    _ffi.WT_THREAD_TRAPPED: "trapped",
    _ffi.WT_THREAD_TERMINATED: "terminated",
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
    """

    kind: ExitKind
    code: int
    tid: int
    message: str | None = None
    stopped_at: Mapping[int, str] = field(default_factory=lambda: _NO_BACKTRACES, compare=False)

    @property
    def ok(self) -> bool:
        """True when the run ended with exit code 0."""
        return self.kind is ExitKind.CODE and self.code == 0


def take_exit(raw: _ffi.wt_exit_t, stopped: dict[int, str] | None = None) -> Exit:
    """Converts a filled ``wt_exit_t`` and releases its message. ``stopped`` is what the
    run's thread-exit trampoline recorded (every call of it has returned by now)."""
    message = None
    if raw.message:
        message = ctypes.string_at(raw.message).decode("utf-8", "replace")
    lib.wt_exit_clear(byref(raw))
    stopped_at = MappingProxyType(dict(sorted(stopped.items()))) if stopped else _NO_BACKTRACES
    return Exit(_EXIT_KINDS[raw.kind], raw.code, raw.tid, message, stopped_at)
