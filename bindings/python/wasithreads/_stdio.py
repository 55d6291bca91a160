"""The guest's stdin, stdout and stderr: which Python values mean what, set on a C run
config."""

from __future__ import annotations

import io
import os
from typing import IO, Protocol, Union, cast

from ._callbacks import OutputCallback, RunState, output_callback
from ._convert import PathArg, cpath
from ._errors import check
from ._ffi import CFuncPtr, lib

#: Pass as ``stdin``, ``stdout`` or ``stderr`` to give the guest an empty input / discard
#: its output. Equal to ``subprocess.DEVNULL``, which works too.
DEVNULL = -3
#: Pass as ``stdout`` or ``stderr`` to collect the guest's output into ``Exit.stdout`` /
#: ``Exit.stderr``. Equal to ``subprocess.PIPE``, which works too.
PIPE = -1

#: What ``stdout`` / ``stderr`` take (see ``RunOptions``).
Output = Union[None, int, PathArg, OutputCallback, IO[bytes], IO[str]]
#: What ``stdin`` takes (see ``RunOptions``).
Input = Union[None, int, bytes, bytearray, memoryview, PathArg, IO[bytes]]

#: The guest's streams, as the C API numbers them.
OUT, ERR = 1, 2


class _Writer(Protocol):
    def write(self, data: bytes, /) -> object: ...


def set_output(config: int, state: RunState, keep: list[CFuncPtr], stream: int, target: Output, name: str) -> None:
    """Sends guest stream ``stream`` (1 or 2, called ``name``) to ``target``; a Python
    callable or writer gets a trampoline, appended to ``keep``."""
    if target is None:
        return
    if isinstance(target, bool):
        raise TypeError(f"{name} must be None, DEVNULL, a callable, a file or a path, not a bool")
    if isinstance(target, int):
        if target == DEVNULL:
            check(lib.wt_run_config_set_output_null(config, stream))
        elif target == PIPE:
            check(lib.wt_run_config_set_output_fd(config, stream, state.pipe(stream)))
        elif target < 0:
            raise ValueError(f"{name} must be DEVNULL, PIPE or a file descriptor >= 0, not {target}")
        else:
            check(lib.wt_run_config_set_output_fd(config, stream, target))
        return
    if isinstance(target, (str, bytes, os.PathLike)):
        check(lib.wt_run_config_set_output_file(config, stream, cpath(target, name)))
        return
    fd = _fileno(target)
    if fd is not None:
        flush = getattr(target, "flush", None)
        if flush is not None:
            flush()  # what Python buffered must come before the guest's output
        check(lib.wt_run_config_set_output_fd(config, stream, fd))
        return
    if callable(target):
        fn: OutputCallback = target
    elif isinstance(target, io.TextIOBase):
        fn = _text_writer(target)
    elif hasattr(target, "write"):
        # Not a TextIOBase, so it gets bytes (as documented), whatever its static type.
        fn = _bytes_writer(cast(_Writer, target))
    else:
        raise TypeError(f"{name} must be None, DEVNULL, a callable, a file or a path, not {type(target).__name__}")
    cb = output_callback(state, fn, name)
    state.user_callbacks = True
    keep.append(cb)
    check(lib.wt_run_config_set_output_callback(config, stream, cb, None))


def set_stdin(config: int, stdin: Input) -> None:
    """Gives the guest ``stdin``."""
    if stdin is None:
        return
    if isinstance(stdin, bool):
        raise TypeError("stdin must be None, DEVNULL, bytes, a file or a path, not a bool")
    if isinstance(stdin, int):
        if stdin == DEVNULL:
            lib.wt_run_config_set_stdin_null(config)
        elif stdin < 0:
            raise ValueError(f"stdin must be DEVNULL or a file descriptor >= 0, not {stdin} (for input, pass bytes)")
        else:
            check(lib.wt_run_config_set_stdin_fd(config, stdin))
        return
    if isinstance(stdin, (bytes, bytearray, memoryview)):
        data = bytes(stdin)
        check(lib.wt_run_config_set_stdin_bytes(config, data, len(data)))
        return
    if isinstance(stdin, (str, os.PathLike)):
        check(lib.wt_run_config_set_stdin_file(config, cpath(stdin, "stdin")))
        return
    fd = _fileno(stdin)
    if fd is not None:
        check(lib.wt_run_config_set_stdin_fd(config, fd))
        return
    if hasattr(stdin, "read"):
        data = stdin.read()
        if isinstance(data, str):
            data = data.encode("utf-8")
        check(lib.wt_run_config_set_stdin_bytes(config, data, len(data)))
        return
    raise TypeError(f"stdin must be None, DEVNULL, bytes, a file or a path, not {type(stdin).__name__}")


def _text_writer(target: io.TextIOBase) -> OutputCallback:
    def write_text(_tid: int, data: bytes) -> None:
        target.write(data.decode("utf-8", "replace"))

    return write_text


def _bytes_writer(target: _Writer) -> OutputCallback:
    def write_bytes(_tid: int, data: bytes) -> None:
        target.write(data)

    return write_bytes


def _fileno(obj: object) -> int | None:
    fileno = getattr(obj, "fileno", None)
    if fileno is None:
        return None
    try:
        return int(fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        return None
