"""Python threads for the tests: start n of them, join them all."""

import threading

#: Seconds any wait in the plugin tests may take: only a guard against a hang, never a
#: measured duration.
WAIT = 60


def start(fn, n):
    """Threads running fn(0) ... fn(n - 1), started."""
    threads = [threading.Thread(target=fn, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    return threads


def join(threads):
    for t in threads:
        t.join(WAIT)
        assert not t.is_alive(), "a thread did not finish"


def run(fn, n):
    """fn(0) ... fn(n - 1) on n threads at once; returns when all have."""
    join(start(fn, n))
