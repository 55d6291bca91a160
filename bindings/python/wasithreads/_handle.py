"""Owned C pointers: freed exactly once, never while another thread is inside a call
that uses them."""

from __future__ import annotations

import threading
from typing import Callable, TypeVar

from ._errors import UsageError
from ._memory import Pinned

T = TypeVar("T")


class Handle:
    """An owned C pointer. ``use`` brackets every C call that uses it; ``close`` waits
    for calls in flight, then frees exactly once."""

    __slots__ = ("_closing", "_free", "_idle", "_lock", "_pinned", "_users", "_wake", "_what", "end", "ptr")

    def __init__(
        self,
        ptr: int,
        free: Callable[[int], None],
        what: str,
        wake: Callable[[int], None] | None = None,
        end: Callable[[int], None] | None = None,
        pinned: Pinned | None = None,
    ) -> None:
        self.ptr: int | None = ptr
        self._free = free
        # Ends the object and joins its threads (at interpreter exit, see _run).
        self.end = end
        # Views of the object's memory (see _memory): the free waits until they are gone.
        self._pinned = pinned
        self._wake = wake
        self._what = what
        self._lock = threading.Lock()
        self._idle: threading.Condition | None = None  # made when close() must wait
        self._users = 0
        self._closing = False

    @property
    def closed(self) -> bool:
        return self.ptr is None or self._closing

    def use(self, fn: Callable[[int], T]) -> T:
        """``fn(ptr)``, with the pointer kept valid (``close`` waits) until it returns.

        Raises:
            UsageError: the handle is closed.
        """
        return self.call(fn)

    def call(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(ptr, *args)``, with the pointer kept valid (``close`` waits) until it
        returns (``args``: no closure to make on hot paths).

        Raises:
            UsageError: the handle is closed.

        The count of uses is raised and the flag saying so set with no Python-level call
        in between, so a KeyboardInterrupt can never leave a use counted that nobody
        releases (which would make ``close`` wait forever)."""
        counted = False
        try:
            with self._lock:
                if self.ptr is None or self._closing:
                    raise UsageError(f"the {self._what} is closed")
                ptr = self.ptr
                self._users += 1
                counted = True
            return fn(ptr, *args)
        finally:
            if counted:
                with self._lock:
                    self._users -= 1
                    if self._users == 0 and self._idle is not None:
                        self._idle.notify_all()

    def close(self, before_free: Callable[[int], None] | None = None) -> bool:
        """Frees the pointer; returns False if it was already closed (or being closed).

        Written so that a KeyboardInterrupt (raised by the SIGINT handler at a Python-level
        call or loop) at any point after the handle is marked closing still frees it: the
        body is one try/finally, whose finally block calls no Python function on the
        usual path, and re-raises a Ctrl-C that came while it waited for other threads."""
        ptr = 0
        try:
            with self._lock:
                if self.ptr is None or self._closing:
                    return False
                ptr = self.ptr
                self._closing = True
            if before_free is not None:
                before_free(ptr)
        finally:
            if ptr:
                interrupted: BaseException | None = None
                if self._users:  # a new use needs the handle open: 0 stays 0
                    while True:
                        try:
                            if self._wake is not None:
                                self._wake(ptr)  # e.g. wt_run_cancel: the users' calls return
                            self._wait_idle()
                            break
                        except BaseException as e:  # noqa: BLE001 - re-raised below
                            interrupted = e
                self.ptr = None
                if self._pinned is None:
                    self._free(ptr)
                else:
                    self._pinned.free_when_unpinned(self._free, ptr)
                live_runs.discard(self)
                if interrupted is not None:
                    raise interrupted
        return True

    def _wait_idle(self) -> None:
        with self._lock:
            if self._idle is None:
                self._idle = threading.Condition(self._lock)
            while self._users:
                self._idle.wait()


# Handles of runs not freed yet, freed at interpreter exit so that no guest thread calls
# into a finalizing interpreter (see _run.close_runs_at_exit).
live_runs: set[Handle] = set()


Self = TypeVar("Self", bound="Owned")


class Owned:
    """Lifetime of an object that owns one ``Handle`` as ``self._h``: ``close()``
    (idempotent), ``with`` blocks, ``__del__`` as a backstop."""

    _h: Handle

    @property
    def closed(self) -> bool:
        return self._h.closed

    def close(self) -> None:
        h = getattr(self, "_h", None)
        if h is not None:
            h.close()

    def __enter__(self: Self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - e.g. at interpreter shutdown
            pass

    def __repr__(self) -> str:
        return f"<wasithreads.{type(self).__name__}{' closed' if self.closed else ''}>"
