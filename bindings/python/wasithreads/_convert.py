"""Python values checked and converted for the C API: strings, paths, unsigned integers,
returned pointers. Problems raise ``TypeError`` / ``ValueError`` before any C call."""

from __future__ import annotations

import enum
import math
import operator
import os
from ctypes import c_void_p
from typing import SupportsIndex, Union

#: A file system path, as ``os.fsencode`` takes it.
PathArg = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


class StrEnum(str, enum.Enum):
    """A ``str`` enum whose members print and format as their value (``enum.StrEnum``
    of Python 3.11, for 3.9 too)."""

    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(self, spec)


def cstr(value: str | bytes, what: str) -> bytes:
    """``value`` as a C string (UTF-8), checked for NUL bytes; ``what`` names it in errors."""
    if isinstance(value, str):
        data = value.encode("utf-8")
    elif isinstance(value, bytes):
        data = value
    else:
        raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")
    if b"\0" in data:
        raise ValueError(f"{what} contains a NUL byte: {value!r}")
    return data


def cpath(value: PathArg, what: str) -> bytes:
    """``value`` as a C path (``os.fsencode``), checked for NUL bytes."""
    try:
        data = os.fsencode(value)
    except TypeError:
        raise TypeError(f"{what} must be a path (str, bytes or os.PathLike), not {type(value).__name__}") from None
    if b"\0" in data:
        raise ValueError(f"{what} contains a NUL byte: {value!r}")
    return data


def uint(value: SupportsIndex, what: str, bits: int) -> int:
    """``value`` as an unsigned integer of ``bits`` bits."""
    try:
        n = operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an int, not {type(value).__name__}") from None
    if not 0 <= n < (1 << bits):
        raise ValueError(f"{what} must be in 0..{(1 << bits) - 1}, not {n}")
    return n


def millis(seconds: float, what: str) -> int:
    """``seconds`` (a finite number >= 0) as whole milliseconds, rounded up."""
    value = float(seconds)
    if not value >= 0 or math.isinf(value):
        raise ValueError(f"{what} must be a finite number of seconds >= 0, not {seconds!r}")
    return math.ceil(value * 1000)


def ptr(out: c_void_p) -> int:
    """The pointer a successful C call wrote to ``out``."""
    assert out.value, "the library returned NULL without an error"
    return out.value
