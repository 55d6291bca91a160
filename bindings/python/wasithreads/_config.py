"""``RunOptions`` applied to a C run config (``wt_run_config_t``)."""

from __future__ import annotations

import ctypes
from collections.abc import Mapping

from ._callbacks import (
    RunState,
    diagnostic_callback,
    host_function_callback,
    thread_exit_callback,
    thread_start_callback,
)
from ._convert import cpath, cstr, millis, uint
from ._errors import check
from ._ffi import NO_FINALIZER, CFuncPtr, lib
from ._funcs import Func
from ._options import Imports, RunOptions
from ._stdio import ERR, OUT, set_output, set_stdin
from ._values import code


def build(options: RunOptions, state: RunState) -> tuple[int, list[CFuncPtr]]:
    """A ``wt_run_config_t`` for ``options`` and the ctypes callback objects it points
    to, which must outlive the run. Sets ``state.stopped`` and ``state.user_callbacks``,
    and opens the files of ``PIPE`` outputs (``state.pipe``)."""
    o = options
    keep: list[CFuncPtr] = []
    if o.backtraces:
        state.stopped = {}
    # set_output adds output callables to these.
    state.user_callbacks = bool(o.imports) or any(
        cb is not None for cb in (o.on_thread_exit, o.on_thread_start, o.on_diagnostic)
    )
    config: int | None = lib.wt_run_config_new()
    if not config:
        raise MemoryError("wt_run_config_new")
    try:
        if o.imports is not None:
            define_imports(config, state, keep, o.imports)
        if o.args is not None:
            if isinstance(o.args, (str, bytes)):
                raise TypeError("args must be a list of strings, not a single string")
            for a in o.args:
                check(lib.wt_run_config_push_arg(config, cstr(a, "argument")))
        if o.inherit_env:
            lib.wt_run_config_inherit_env(config, True)
        if o.env is not None:
            items = o.env.items() if isinstance(o.env, Mapping) else o.env
            for k, v in items:
                check(lib.wt_run_config_push_env(config, cstr(k, "environment key"), cstr(v, "environment value")))
        for mapping, preopen in (
            (o.dirs, lib.wt_run_config_preopen_dir),
            (o.readonly_dirs, lib.wt_run_config_preopen_dir_readonly),
        ):
            if mapping is not None:
                for host, guest in mapping.items():
                    check(preopen(config, cpath(host, "host directory"), cstr(guest, "guest path")))
        if o.sockets is not None:
            if isinstance(o.sockets, (str, bytes)):
                raise TypeError("sockets must be a list of sockets, fds or addresses, not a single string")
            for sock in o.sockets:
                if isinstance(sock, str):
                    check(lib.wt_run_config_preopen_tcp_listener(config, cstr(sock, "socket address"), None))
                elif isinstance(sock, bool) or (not isinstance(sock, int) and not hasattr(sock, "fileno")):
                    raise TypeError(f"a socket must be an fd, an object with fileno() or an address, not {sock!r}")
                else:
                    fd = sock if isinstance(sock, int) else int(sock.fileno())
                    check(lib.wt_run_config_preopen_socket(config, fd))
        if o.timeout is not None:
            # 0 means "no timeout" to the C API: the smallest real timeout is 1 ms.
            lib.wt_run_config_set_timeout_ms(config, max(1, millis(o.timeout, "timeout")))
        if o.call_timeout is not None:
            lib.wt_run_config_set_call_timeout_ms(config, max(1, millis(o.call_timeout, "call_timeout")))
        if o.max_threads is not None:
            lib.wt_run_config_set_max_threads(config, uint(o.max_threads, "max_threads", 32))
        if o.max_memory is not None:
            lib.wt_run_config_set_max_memory(config, uint(o.max_memory, "max_memory", 64))
        if o.max_fds is not None:
            lib.wt_run_config_set_max_fds(config, uint(o.max_fds, "max_fds", 32))
        if o.max_table_elements is not None:
            lib.wt_run_config_set_max_table_elements(config, uint(o.max_table_elements, "max_table_elements", 64))
        if o.max_memories is not None:
            lib.wt_run_config_set_max_memories(config, uint(o.max_memories, "max_memories", 32))
        if o.max_instance_bytes is not None:
            lib.wt_run_config_set_max_instance_bytes(config, uint(o.max_instance_bytes, "max_instance_bytes", 64))
        # UINT64_MAX is "no cap" to the C API (None here): the largest real cap is one less.
        if o.max_write_bytes is not None:
            limit = uint(o.max_write_bytes, "max_write_bytes", 64)
            lib.wt_run_config_set_max_write_bytes(config, min(limit, 2**64 - 2))
        if o.max_files_created is not None:
            limit = uint(o.max_files_created, "max_files_created", 64)
            lib.wt_run_config_set_max_files_created(config, min(limit, 2**64 - 2))
        if o.teardown_grace is not None:
            lib.wt_run_config_set_teardown_grace_ms(config, millis(o.teardown_grace, "teardown_grace"))
        if o.coredump is not None:
            check(lib.wt_run_config_set_coredump_path(config, cpath(o.coredump, "coredump")))
        if o.stdout is not None:
            set_output(config, state, keep, OUT, o.stdout, "stdout")
        if o.stderr is not None:
            set_output(config, state, keep, ERR, o.stderr, "stderr")
        if o.stdin is not None:
            set_stdin(config, o.stdin)
        if o.on_thread_exit is not None or o.backtraces:
            if o.on_thread_exit is not None and not callable(o.on_thread_exit):
                raise TypeError("on_thread_exit must be callable")
            cb = thread_exit_callback(state, o.on_thread_exit)
            keep.append(cb)
            lib.wt_run_config_set_thread_exit_callback(config, cb, None)
        if o.on_thread_start is not None:
            if not callable(o.on_thread_start):
                raise TypeError("on_thread_start must be callable")
            cb = thread_start_callback(state, o.on_thread_start)
            keep.append(cb)
            lib.wt_run_config_set_thread_start_callback(config, cb, None)
        # Always: diagnostics are rare (a failed spawn, a slow teardown), and without a
        # callback the library drops them.
        if o.on_diagnostic is not None and not callable(o.on_diagnostic):
            raise TypeError("on_diagnostic must be callable")
        cb = diagnostic_callback(state, o.on_diagnostic)
        keep.append(cb)
        lib.wt_run_config_set_diagnostic_callback(config, cb, None)
    except BaseException:
        lib.wt_run_config_free(config)
        state.close_pipes()
        raise
    return config, keep


def define_imports(config: int, state: RunState, keep: list[CFuncPtr], imports: Imports) -> None:
    """Defines each host function of ``imports`` on ``config``; their trampolines go to
    ``keep`` (the library calls them until the run or instance is freed)."""
    if not isinstance(imports, Mapping):
        raise TypeError(f"imports must be a mapping {{module: {{name: function}}}}, not {type(imports).__name__}")
    for module, funcs in imports.items():
        if not isinstance(funcs, Mapping):
            raise TypeError(f"imports[{module!r}] must be a mapping {{name: function}}, not {type(funcs).__name__}")
        for name, f in funcs.items():
            func = f if isinstance(f, Func) else Func(f)
            cb = host_function_callback(state, func, f"`{module}::{name}`")
            keep.append(cb)
            params = (ctypes.c_int * max(1, len(func.params)))(*(code(k) for k in func.params))
            results = (ctypes.c_int * max(1, len(func.results)))(*(code(k) for k in func.results))
            check(
                lib.wt_run_config_define_func(
                    config,
                    cstr(module, "import module name"),
                    cstr(name, "import name"),
                    params,
                    len(func.params),
                    results,
                    len(func.results),
                    cb,
                    None,
                    NO_FINALIZER,
                )
            )
