import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # for `import guests`

import wasithreads as wt


def pytest_report_header(config):
    return f"wasithreads {wt.version()} from {wt.library_path()}"


@pytest.fixture(scope="session")
def engine():
    with wt.Engine() as e:
        yield e


@pytest.fixture(scope="session")
def load(engine):
    """load(wat_bytes) -> Module, compiled once per session."""
    cache = {}

    def load(source: bytes) -> wt.Module:
        if source not in cache:
            cache[source] = engine.load(source)
        return cache[source]

    yield load
    for module in cache.values():
        module.close()


class Collect:
    """Thread-safe recorder for callbacks coming from guest threads."""

    def __init__(self):
        import threading

        self.lock = threading.Lock()
        self.output = {}
        self.events = []

    def out(self, tid, data):
        with self.lock:
            self.output[tid] = self.output.get(tid, b"") + data

    def thread_exit(self, tid, kind, code):
        with self.lock:
            self.events.append((tid, kind, code))


@pytest.fixture
def collect():
    return Collect()
