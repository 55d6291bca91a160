"""Host functions: ``Func`` (a callable and its WebAssembly signature, from its annotations
or given explicitly) and ``Caller`` (the guest thread that called one)."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Iterable
from typing import Any, Callable

from ._errors import UsageError
from ._ffi import lib
from ._memory import Pinned, view
from ._values import KindLike, ValKind, kind_of


class Caller:
    """The guest thread that called a host function: give a host function a first
    parameter annotated ``wasithreads.Caller`` to get it. Valid only during that call
    (afterwards its attributes raise ``UsageError``).

    Attributes:
        tid: the calling guest thread's id (0 = the main thread; > 0 a spawned thread or
            the guest thread of an instance call).
        memory: a writable ``memoryview`` of the guest memory, its current size (made on
            each access; a view made before the guest grows the memory does not see the
            growth). Other guest threads read and write it at the same time. The view
            keeps the memory mapped, also after its run or instance is closed.
        is_ending: True once the run or instance is ending: return soon.
        end_fd: a descriptor that becomes readable when the run or instance ends, for a
            host function that blocks (``select``/``poll`` it beside your own); owned by
            the library: do not read or close it. -1 if the OS refused one.
    """

    __slots__ = ("_pinned", "_ptr")

    def __init__(self, ptr: int, pinned: Pinned) -> None:
        self._ptr: int | None = ptr
        self._pinned = pinned

    def _get(self) -> int:
        ptr = self._ptr
        if ptr is None:
            raise UsageError("a wasithreads.Caller is valid only during its host function call")
        return ptr

    @property
    def tid(self) -> int:
        tid: int = lib.wt_caller_tid(self._get())
        return tid

    @property
    def memory(self) -> memoryview:
        ptr = self._get()
        return view(lib.wt_caller_memory_data(ptr), lib.wt_caller_memory_size(ptr), self._pinned.pin)

    @property
    def is_ending(self) -> bool:
        ending: bool = lib.wt_caller_is_ending(self._get())
        return ending

    @property
    def end_fd(self) -> int:
        fd: int = lib.wt_caller_end_fd(self._get())
        return fd

    def __repr__(self) -> str:
        if self._ptr is None:
            return "<wasithreads.Caller (call ended)>"
        return f"<wasithreads.Caller tid={self.tid}>"


class Func:
    """A host function with its WebAssembly signature, for ``imports=``.

    ``wasithreads.Func(fn, params=[...], results=[...])`` gives the types explicitly
    (each ``int`` (i32), ``float`` (f64), ``wasithreads.i32``/``i64``/``f32``/``f64``, a
    ``ValKind`` or its name such as ``"i64"``); without them the signature comes from
    ``fn``'s annotations, as for a plain callable in ``imports``. ``caller``: whether
    ``fn`` takes a ``wasithreads.Caller`` first (default: when its first parameter is
    annotated so).

    Attributes:
        fn: the callable.
        params, results: tuples of ``ValKind``.
        caller: whether ``fn`` gets a ``Caller`` first.
    """

    __slots__ = ("caller", "fn", "params", "results")

    def __init__(
        self,
        fn: Callable[..., Any],
        params: Iterable[KindLike] | None = None,
        results: Iterable[KindLike] | None = None,
        *,
        caller: bool | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"a host function must be callable, not {type(fn).__name__}")
        self.fn = fn
        name = _name(fn)
        if params is None and results is None:
            takes_caller, self.params, self.results = signature(fn)
            self.caller = takes_caller if caller is None else caller
            return
        if isinstance(params, (str, bytes)) or isinstance(results, (str, bytes)):
            raise TypeError(f"{name}: params and results are lists of types, not one string")
        self.params = tuple(kind_of(t, f"{name}: parameter {i}") for i, t in enumerate(params or ()))
        self.results = tuple(kind_of(t, f"{name}: result {i}") for i, t in enumerate(results or ()))
        self.caller = _takes_caller(fn) if caller is None else caller

    def __repr__(self) -> str:
        params = ", ".join(k.value for k in self.params)
        results = ", ".join(k.value for k in self.results)
        return f"wasithreads.Func({_name(self.fn)}: ({params}) -> ({results}))"


def _name(fn: object) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """``fn``'s annotations with string annotations resolved and markers kept."""
    target: Any = fn
    if not (inspect.isfunction(target) or inspect.ismethod(target)):
        target = type(fn).__call__  # a callable object: its method's annotations
    try:
        return typing.get_type_hints(target, include_extras=True)
    except Exception:  # noqa: BLE001 - an unresolvable annotation: the raw ones say what is wrong
        return dict(getattr(target, "__annotations__", None) or {})


def _is_caller(annotation: object) -> bool:
    return annotation is Caller or (isinstance(annotation, str) and annotation.split(".")[-1] == "Caller")


def _takes_caller(fn: Callable[..., Any]) -> bool:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    return bool(params) and _is_caller(_hints(fn).get(params[0].name, params[0].annotation))


def signature(fn: Callable[..., Any]) -> tuple[bool, tuple[ValKind, ...], tuple[ValKind, ...]]:
    """(takes a ``Caller`` first, parameter types, result types) from ``fn``'s annotations:
    ``int`` is i32, ``float`` f64, the markers ``wasithreads.i32``/``i64``/``f32``/``f64``
    what they say; a missing or ``None`` return annotation means no result, a
    ``tuple[...]`` several."""
    name = _name(fn)
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"{name}: no signature to read ({e}); use wasithreads.Func(fn, params=..., results=...)"
        ) from None
    hints = _hints(fn)
    params = list(sig.parameters.values())
    caller = bool(params) and _is_caller(hints.get(params[0].name, params[0].annotation))
    kinds = []
    for p in params[1:] if caller else params:
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            raise TypeError(f"{name}: parameter {p.name!r} is not positional; use wasithreads.Func(fn, params=...)")
        annotation = hints.get(p.name, p.annotation)
        if annotation is p.empty:
            raise TypeError(
                f"{name}: parameter {p.name!r} has no annotation: annotate it (int, float, wasithreads.i64, ...) "
                "or use wasithreads.Func(fn, params=..., results=...)"
            )
        kinds.append(kind_of(annotation, f"{name}: parameter {p.name!r}"))
    ret = hints.get("return", sig.return_annotation)
    results: tuple[ValKind, ...]
    if ret is sig.empty or ret is None or ret is type(None):
        results = ()
    elif typing.get_origin(ret) is tuple:
        results = tuple(kind_of(t, f"{name}: result {i}") for i, t in enumerate(typing.get_args(ret)))
    else:
        results = (kind_of(ret, f"{name}: result"),)
    return caller, tuple(kinds), results
