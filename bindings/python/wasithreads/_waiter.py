"""Helper threads that wait for runs, so that the thread that wants the outcome can wait
on a lock instead.

The C API has a blocking ``wt_run_wait`` and a non-blocking ``wt_run_try_wait``, no wait
with a timeout. The main thread must stay responsive to Ctrl-C, and waits with a timeout
need a way out, so they hand the blocking ``wt_run_wait`` to a helper thread from this
pool and wait on a lock that the helper releases when the run has ended: acquiring a lock
is interrupted by Ctrl-C and costs no CPU (no polling, no spinning).
"""

from __future__ import annotations

import os
import threading
from typing import Protocol

_IDLE = 10.0  # seconds an idle helper thread stays for the next wait


class Waitable(Protocol):
    def _wait_in_helper(self) -> None:
        """Waits (blocking) until the run has ended and stores the outcome."""


class _Waiter:
    """One helper thread calling wt_run_wait for one run at a time. Plain locks are used
    as binary semaphores (cheaper than Condition/Event on this hot path)."""

    def __init__(self, pool: _WaiterPool) -> None:
        self._pool = pool
        self._go = threading.Lock()
        self._go.acquire()  # released by assign
        self._job: Waitable | None = None
        threading.Thread(target=self._loop, name="wasithreads-wait", daemon=True).start()

    def assign(self, run: Waitable) -> None:
        self._job = run
        self._go.release()

    def _loop(self) -> None:
        pool = self._pool
        while True:
            if not self._go.acquire(timeout=_IDLE):
                if pool.leave(self):
                    return
                # Someone took us off the idle list and is about to assign a job (unless an
                # exception stopped it there).
                if not self._go.acquire(timeout=_IDLE):
                    return
            run, self._job = self._job, None
            assert run is not None
            run._wait_in_helper()
            del run
            pool.park(self)


class _WaiterPool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[_Waiter] = []

    def wait_for(self, run: Waitable) -> None:
        with self._lock:
            waiter = self._idle.pop() if self._idle else None
        if waiter is None:
            waiter = _Waiter(self)
        waiter.assign(run)

    def park(self, waiter: _Waiter) -> None:
        with self._lock:
            self._idle.append(waiter)

    def leave(self, waiter: _Waiter) -> bool:
        with self._lock:
            if waiter in self._idle:
                self._idle.remove(waiter)
                return True
            return False

    def reset(self) -> None:  # in a forked child, the helper threads do not exist
        self._lock = threading.Lock()
        self._idle = []


_pool = _WaiterPool()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_pool.reset)


def wait_for(run: Waitable) -> None:
    """Has a helper thread call ``run._wait_in_helper()``."""
    _pool.wait_for(run)
