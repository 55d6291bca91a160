"""``RunOptions`` applied to a C run config (``wt_run_config_t``)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from ._callbacks import RunState, thread_exit_callback, thread_start_callback
from ._convert import cpath, cstr, uint
from ._errors import check
from ._ffi import CFuncPtr, lib
from ._options import RunOptions
from ._stdio import STDERR, STDOUT, set_output, set_stdin


class _LazyConfig:
    """A ``wt_run_config_t`` made on first use: a run whose options are all defaults
    (and without backtraces) passes NULL."""

    __slots__ = ("ptr",)

    def __init__(self) -> None:
        self.ptr: int | None = None

    def __call__(self) -> int:
        if self.ptr is None:
            ptr: int | None = lib.wt_run_config_new()
            if not ptr:
                raise MemoryError("wt_run_config_new")
            self.ptr = ptr
        return self.ptr


def build(options: RunOptions, state: RunState) -> tuple[int | None, list[CFuncPtr]]:
    """A ``wt_run_config_t`` for ``options`` (None when it would say nothing) and the
    ctypes callback objects it points to, which must outlive the run. Sets
    ``state.stopped`` and ``state.user_callbacks``."""
    o = options
    keep: list[CFuncPtr] = []
    if o.backtraces:
        state.stopped = {}
    state.user_callbacks = o.on_thread_exit is not None or o.on_thread_start is not None  # set_output adds its own
    config = _LazyConfig()
    try:
        if o.args is not None:
            if isinstance(o.args, (str, bytes)):
                raise TypeError("args must be a list of strings, not a single string")
            for a in o.args:
                check(lib.wt_run_config_push_arg(config(), cstr(a, "argument")))
        if o.inherit_env:
            lib.wt_run_config_inherit_env(config(), True)
        if o.env is not None:
            items = o.env.items() if isinstance(o.env, Mapping) else o.env
            for k, v in items:
                check(lib.wt_run_config_push_env(config(), cstr(k, "environment key"), cstr(v, "environment value")))
        for mapping, preopen in (
            (o.dirs, lib.wt_run_config_preopen_dir),
            (o.readonly_dirs, lib.wt_run_config_preopen_dir_readonly),
        ):
            if mapping is not None:
                for host, guest in mapping.items():
                    check(preopen(config(), cpath(host, "host directory"), cstr(guest, "guest path")))
        if o.timeout is not None:
            seconds = float(o.timeout)
            if not seconds >= 0 or math.isinf(seconds):
                raise ValueError(f"timeout must be a finite number of seconds >= 0, not {o.timeout!r}")
            # 0 means "no timeout" to the C API: the smallest real timeout is 1 ms.
            lib.wt_run_config_set_timeout_ms(config(), max(1, math.ceil(seconds * 1000)))
        if o.max_threads is not None:
            lib.wt_run_config_set_max_threads(config(), uint(o.max_threads, "max_threads", 32))
        if o.max_memory is not None:
            lib.wt_run_config_set_max_memory(config(), uint(o.max_memory, "max_memory", 64))
        if o.stdout is not None:
            set_output(config(), state, keep, STDOUT, o.stdout, "stdout")
        if o.stderr is not None:
            set_output(config(), state, keep, STDERR, o.stderr, "stderr")
        if o.stdin is not None:
            set_stdin(config(), o.stdin)
        if o.on_thread_exit is not None or o.backtraces:
            if o.on_thread_exit is not None and not callable(o.on_thread_exit):
                raise TypeError("on_thread_exit must be callable")
            cb = thread_exit_callback(state, o.on_thread_exit)
            keep.append(cb)
            lib.wt_run_config_set_thread_exit_callback(config(), cb, None)
        if o.on_thread_start is not None:
            if not callable(o.on_thread_start):
                raise TypeError("on_thread_start must be callable")
            cb = thread_start_callback(state, o.on_thread_start)
            keep.append(cb)
            lib.wt_run_config_set_thread_start_callback(config(), cb, None)
    except BaseException:
        lib.wt_run_config_free(config.ptr)
        raise
    return config.ptr, keep
