"""Views of guest memory that cannot outlive it.

A view is a ``memoryview`` over a ctypes array at the memory's base address. The array
object holds the ``Pin`` of the run or instance that owns the memory, and that owner's
``Handle`` frees the C object (which unmaps the memory) only once its ``Pin`` is
unreachable: closing a run or an instance while a view of its memory is alive ends it
and joins its threads as usual, and defers only the release of the memory to when the
last view (or anything made from it: slices, ``numpy.frombuffer``) is gone.
"""

from __future__ import annotations

import ctypes
import weakref
from typing import Callable


class Pin:
    """Kept alive by every view of one memory; its owner frees the memory after it died."""

    __slots__ = ("__weakref__",)


class Pinned:
    """What the C object's owner keeps: the strong reference to its ``Pin`` (until the
    free) and a weak one for the views made meanwhile."""

    __slots__ = ("pin", "ref")

    def __init__(self) -> None:
        self.pin: Pin | None = Pin()
        self.ref = weakref.ref(self.pin)

    def free_when_unpinned(self, free: Callable[[int], None], ptr: int) -> None:
        """Calls ``free(ptr)`` now, or when the last view of the memory is gone."""
        pin, self.pin = self.pin, None
        if pin is None:  # pragma: no cover - freed once by the Handle
            return
        weakref.finalize(pin, free, ptr)
        del pin  # no view: the finalizer runs here


# ctypes array types by length (a memory has few distinct sizes).
_types: dict[int, type[ctypes.Array[ctypes.c_ubyte]]] = {}


def view(base: int | None, size: int, pin: Pin | None) -> memoryview:
    """A writable byte view of ``size`` bytes at ``base`` that keeps ``pin`` alive."""
    if not base or not size:
        return memoryview(bytearray(0))
    array_type = _types.get(size)
    if array_type is None:
        if len(_types) > 64:
            _types.clear()
        array_type = _types[size] = ctypes.c_ubyte * size
    exporter = array_type.from_address(base)
    exporter._pin = pin  # type: ignore[attr-defined]
    return memoryview(exporter).cast("B")
