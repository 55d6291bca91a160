"""``stdout=PIPE`` / ``stderr=PIPE``: guest output collected into bytes.

The output goes to an anonymous in-memory file (``memfd_create``, else an unlinked
temporary file) that the library writes as it writes any file: each ``fd_write`` whole,
under the stream's lock, so writes of different guest threads never mix and are in the
order they happened; no Python code runs while the guest writes, and no pipe can fill
up. The file is read once, when the run's outcome is taken.
"""

from __future__ import annotations

import os
import tempfile
import threading
from typing import BinaryIO


def _anonymous_file(name: str) -> BinaryIO:
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None:
        try:
            return open(memfd_create(name, os.MFD_CLOEXEC), "w+b", buffering=0)
        except OSError:
            pass  # e.g. a seccomp filter without memfd_create
    return tempfile.TemporaryFile(prefix=name)


class Capture:
    """The files collecting a run's piped streams (1 = stdout, 2 = stderr)."""

    __slots__ = ("_files", "_lock", "_taken")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[int, BinaryIO] = {}
        self._taken: tuple[bytes | None, bytes | None] | None = None

    def add(self, stream: int) -> int:
        """A new file for ``stream``; returns its descriptor (the library duplicates it)."""
        f = _anonymous_file("wasithreads-stdout" if stream == 1 else "wasithreads-stderr")
        with self._lock:
            self._files[stream] = f
        return f.fileno()

    def take(self) -> tuple[bytes | None, bytes | None]:
        """``(stdout, stderr)`` as collected, ``None`` for a stream not piped; the same
        each time. Call once the run has ended."""
        with self._lock:
            if self._taken is None:
                if not self._files:
                    return (None, None)
                got: dict[int, bytes] = {}
                for stream, f in self._files.items():
                    f.seek(0)
                    got[stream] = f.read()
                self._taken = (got.get(1), got.get(2))
                self._close()
            return self._taken

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        files, self._files = self._files, {}
        for f in files.values():
            f.close()
