"""WebAssembly values: their types (``ValKind``, the annotation markers ``i32`` ... ``f64``)
and Python values checked and converted to and from ``wt_val_t``."""

from __future__ import annotations

import math
import operator
import struct
from collections.abc import Sequence
from typing import Annotated, Any, Callable

from . import _ffi
from ._convert import StrEnum


class ValKind(StrEnum):
    """The type of a WebAssembly value (``wt_valkind``). A ``str`` enum: ``ValKind.I32 ==
    "i32"``, and ``ValKind("i64")`` is ``ValKind.I64``."""

    I32 = "i32"
    I64 = "i64"
    F32 = "f32"
    F64 = "f64"


_CODES = {ValKind.I32: _ffi.WT_I32, ValKind.I64: _ffi.WT_I64, ValKind.F32: _ffi.WT_F32, ValKind.F64: _ffi.WT_F64}
_KINDS = {code: kind for kind, code in _CODES.items()}


def code(kind: ValKind) -> int:
    """The ``wt_valkind`` number of ``kind``."""
    return _CODES[kind]


def from_code(value: int) -> ValKind:
    return _KINDS[value]


class _Marker:
    # The metadata of the annotation markers below: which ValKind an annotation means.
    __slots__ = ("kind",)

    def __init__(self, kind: ValKind) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"wasithreads.{self.kind.value}"


#: Annotation markers for host function parameters and results: ``wt.i64`` is ``int`` to a
#: type checker and a 64-bit integer to the binding (plain ``int`` is i32, plain ``float``
#: is f64).
i32 = Annotated[int, _Marker(ValKind.I32)]
i64 = Annotated[int, _Marker(ValKind.I64)]
f32 = Annotated[float, _Marker(ValKind.F32)]
f64 = Annotated[float, _Marker(ValKind.F64)]

#: What names a value type: a ``ValKind`` or its string, ``int`` (i32), ``float`` (f64),
#: or one of the markers ``i32``, ``i64``, ``f32``, ``f64``.
KindLike = Any


def kind_of(t: KindLike, what: str) -> ValKind:
    """The ``ValKind`` an annotation or type name ``t`` means; ``what`` names it in errors."""
    if isinstance(t, ValKind):
        return t
    if isinstance(t, str):
        try:
            return ValKind(t)
        except ValueError:
            pass
    if t is int:
        return ValKind.I32
    if t is float:
        return ValKind.F64
    for meta in getattr(t, "__metadata__", ()):
        if isinstance(meta, _Marker):
            return meta.kind
    raise TypeError(
        f"{what}: {t!r} is not a WebAssembly value type "
        "(use int, float, wasithreads.i32/i64/f32/f64, a ValKind or its name)"
    )


# -- Python values <-> wt_val_t


def _int_range(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), 1 << bits


_I32_LO, _I32_HI = _int_range(32)
_I64_LO, _I64_HI = _int_range(64)
_F32 = struct.Struct("f")


def check_int(value: object, bits: int, what: str) -> int:
    """``value`` as a signed integer of ``bits`` bits. Accepts -2**(bits-1) .. 2**bits - 1
    (unsigned values, e.g. guest addresses past 2 GiB, wrap to the signed value)."""
    if isinstance(value, (float, complex, str, bytes)) or not hasattr(type(value), "__index__"):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    n = operator.index(value)  # type: ignore[arg-type]
    lo, hi = (_I32_LO, _I32_HI) if bits == 32 else (_I64_LO, _I64_HI)
    if not lo <= n < hi:
        raise OverflowError(f"{what} must be in {lo}..{hi - 1} for an i{bits}, not {n}")
    return n - (1 << bits) if n >= (hi >> 1) else n


def check_float(value: object, kind: ValKind, what: str) -> float:
    """``value`` (an int or float) as a float; f32 values are rounded to single precision
    (too large ones become infinite, as a C cast does)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{what} must be a float or int, not {type(value).__name__}")
    x = float(value)
    if kind is ValKind.F32 and math.isfinite(x):
        try:
            x = _F32.unpack(_F32.pack(x))[0]
        except OverflowError:
            x = math.copysign(math.inf, x)
    return x


def checked(value: object, kind: ValKind, what: str) -> int | float:
    """``value`` checked and converted for a value of type ``kind``."""
    if kind is ValKind.I32:
        return check_int(value, 32, what)
    if kind is ValKind.I64:
        return check_int(value, 64, what)
    return check_float(value, kind, what)


# struct formats of one wt_val_t (kind, padding, value, padding: 16 bytes) per kind.
_FORMATS = {ValKind.I32: "i4xi4x", ValKind.I64: "i4xq", ValKind.F32: "i4xf4x", ValKind.F64: "i4xd"}


class Layout:
    """An array of ``wt_val_t`` of the given kinds, packed and read with one
    ``struct.Struct``: (kind, value) pairs. ``struct`` checks int ranges and types
    itself; what it refuses goes through ``checked``, which converts what is allowed
    (unsigned ints past the signed range wrap; f32 overflows to infinity, as a C cast)
    and says what is wrong with the rest."""

    __slots__ = ("_pack", "_template", "_unpack", "kinds", "size")

    def __init__(self, kinds: Sequence[ValKind]) -> None:
        layout = struct.Struct("<" + "".join(_FORMATS[k] for k in kinds))
        self.kinds = tuple(kinds)
        self.size = layout.size
        self._pack = layout.pack
        self._unpack = layout.unpack_from
        self._template: list[object] = [x for k in kinds for x in (_CODES[k], None)]

    def pack(self, values: Sequence[object], what: Callable[[int], str]) -> bytes:
        """``values`` (as many as kinds) as ``wt_val_t``s; ``what(i)`` names value i in
        an error."""
        pairs = self._template.copy()
        pairs[1::2] = values
        try:
            return self._pack(*pairs)
        except (struct.error, OverflowError, TypeError):
            pass
        for i, (kind, value) in enumerate(zip(self.kinds, values)):
            pairs[2 * i + 1] = checked(value, kind, what(i))
        return self._pack(*pairs)

    def values(self, buffer: Any) -> tuple[Any, ...]:
        """The values of the ``wt_val_t``s in ``buffer`` (any bytes-like object)."""
        return self._unpack(buffer)[1::2]


def results_of(value: object, kinds: Sequence[ValKind], what: str) -> Sequence[object]:
    """What a function returned, as one value per result: ``None`` for none, the value
    for one, a tuple (any sequence) for several."""
    n = len(kinds)
    if n == 0:
        if value is not None:
            raise TypeError(f"{what} has no results but returned {type(value).__name__}")
        return ()
    if n == 1:
        return (value,)
    if not isinstance(value, (tuple, list)) or len(value) != n:
        raise TypeError(f"{what} has {n} results: it must return a tuple of {n} values, not {value!r}")
    return value
