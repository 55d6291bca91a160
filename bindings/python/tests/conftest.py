import os
import subprocess
import sys
from pathlib import Path

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


REPO = Path(__file__).resolve().parents[3]
PLUGIN_C = REPO / "tests" / "guests" / "plugin-c"


@pytest.fixture(scope="session")
def c_plugin_path(tmp_path_factory):
    """The real C plugin (tests/guests/plugin-c/plugin.c): the copy `cargo test` caches
    in <repo>/target/guests/plugin-c/plugin.wasm if it is newer than its sources, else
    built here with its build.sh (PyPI ziglang + Rust's wasm32-wasip1-threads wasi-libc,
    which scripts/setup.sh installs). A missing toolchain fails the tests, never skips."""
    cached = REPO / "target" / "guests" / "plugin-c" / "plugin.wasm"
    sources = [PLUGIN_C / "plugin.c", PLUGIN_C / "build.sh"]
    if not all(p.is_file() for p in sources):
        pytest.fail(f"{PLUGIN_C} is missing: run the tests from a checkout of the repository")
    newest = max(p.stat().st_mtime for p in sources)
    if cached.is_file() and cached.stat().st_mtime >= newest:
        return cached
    out = tmp_path_factory.mktemp("plugin-c") / "plugin.wasm"
    build = subprocess.run(["bash", str(PLUGIN_C / "build.sh"), str(out)], capture_output=True, text=True)
    if build.returncode != 0:
        pytest.fail(
            f"building the C plugin failed (scripts/setup.sh installs ziglang and the wasi target):\n"
            f"{build.stdout}{build.stderr}"
        )
    return out


@pytest.fixture(scope="session")
def c_plugin(engine, c_plugin_path):
    """The C plugin, compiled once per session."""
    with engine.load(c_plugin_path) as module:
        yield module


@pytest.fixture(scope="session")
def wat_plugin(engine):
    """tests/guests/wat/plugin.wat, the hand-written plugin every front end shares."""
    with engine.load(REPO / "tests" / "guests" / "wat" / "plugin.wat") as module:
        yield module
