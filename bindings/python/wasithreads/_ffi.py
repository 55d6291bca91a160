"""ctypes declarations of the C API in ``include/wasithreads.h`` (ABI mode, no C code).

Finding the library, in this order:

1. ``WASITHREADS_LIB``: the path of a ``libwasithreads.so`` to use instead of the packaged
   one (e.g. ``target/release/libwasithreads.so`` from a fresh ``cargo build``).
2. The copy shipped inside this package (``wasithreads/libwasithreads.so``, put there by
   ``pip install``).

Every function gets ``argtypes``/``restype`` so that ctypes converts and checks arguments
and never truncates pointers. Functions are called through ``ctypes.CDLL``, which releases
the GIL for the duration of each call: a blocking ``wt_run_wait`` or ``wt_run_free`` lets
guest threads take the GIL to run Python callbacks.
"""

from __future__ import annotations

import ctypes
import os
from _ctypes import CFuncPtr as CFuncPtr  # base class of every ctypes callback object
from ctypes import (
    POINTER,
    c_bool,
    c_char,
    c_char_p,
    c_int,
    c_int32,
    c_size_t,
    c_uint8,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path

#: Environment variable naming a libwasithreads.so to load instead of the packaged one.
LIB_ENV = "WASITHREADS_LIB"

# The ABI this binding was written against (include/wasithreads.h of 0.1.x).
ABI_MAJOR, ABI_MINOR = 0, 1

WT_EXIT_CODE, WT_EXIT_TRAP, WT_EXIT_TIMEOUT, WT_EXIT_CANCELLED = 0, 1, 2, 3
WT_THREAD_RETURNED, WT_THREAD_EXITED, WT_THREAD_TRAPPED, WT_THREAD_TERMINATED = 0, 1, 2, 3
WT_I32, WT_I64, WT_F32, WT_F64 = 0, 1, 2, 3
WT_CALLS_PARALLEL, WT_CALLS_SERIAL = 0, 1


# The annotations say what ctypes returns for each field (for type checkers; ctypes reads
# only _fields_).


class wt_exit_t(ctypes.Structure):
    _fields_ = [("kind", c_int), ("code", c_int32), ("tid", c_int32), ("message", c_void_p)]
    kind: int
    code: int
    tid: int
    message: int | None


class wt_thread_exit_t(ctypes.Structure):
    # message: WT_THREAD_TRAPPED's trap text; backtrace: where a WT_THREAD_TERMINATED
    # thread was stopped. Both borrowed (valid only during the callback), NULL otherwise.
    _fields_ = [("kind", c_int), ("code", c_int32), ("message", c_char_p), ("backtrace", c_char_p)]
    kind: int
    code: int
    message: bytes | None
    backtrace: bytes | None


class wt_bytes_t(ctypes.Structure):
    _fields_ = [("data", POINTER(c_char)), ("len", c_size_t)]
    data: ctypes._Pointer[c_char]
    len: int


# Opaque handles are plain void pointers.
P = c_void_p
PP = POINTER(c_void_p)

# void (*)(void *user_data, int32_t tid, const uint8_t *data, size_t len)
OUTPUT_CB = ctypes.CFUNCTYPE(None, c_void_p, c_int32, POINTER(c_char), c_size_t)
# void (*)(void *user_data, int32_t tid, const wt_thread_exit_t *how)
THREAD_EXIT_CB = ctypes.CFUNCTYPE(None, c_void_p, c_int32, POINTER(wt_thread_exit_t))
# void (*)(void *user_data, int32_t tid)
THREAD_START_CB = ctypes.CFUNCTYPE(None, c_void_p, c_int32)
# void (*)(void *user_data, int32_t tid, const char *message)
DIAGNOSTIC_CB = ctypes.CFUNCTYPE(None, c_void_p, c_int32, c_char_p)

# wt_error_t *(*)(void *env, wt_caller_t *caller, const wt_val_t *args, size_t nargs,
#                 wt_val_t *results, size_t nresults)
# (the wt_val_t arrays as plain addresses: the binding reads and writes them with struct)
FUNC_CB = ctypes.CFUNCTYPE(c_void_p, c_void_p, c_void_p, c_void_p, c_size_t, c_void_p, c_size_t)
# void (*)(void *env)
FINALIZER = ctypes.CFUNCTYPE(None, c_void_p)
#: A NULL wt_finalizer_t (the binding keeps its host functions alive itself).
NO_FINALIZER = FINALIZER()

# name: (restype, argtypes). Every function of the header is here except the ones the
# README's "C API coverage" table lists as left out (tests/test_surface.py checks both).
PROTOTYPES = {
    "wt_version": (c_char_p, []),
    "wt_error_message": (c_char_p, [P]),
    "wt_error_kind": (c_int, [P]),
    "wt_error_os_errno": (c_int32, [P]),
    "wt_error_free": (None, [P]),
    # engine
    "wt_engine_config_new": (P, []),
    "wt_engine_config_free": (None, [P]),
    "wt_engine_config_set_opt_level": (None, [P, c_uint8]),
    "wt_engine_config_set_cache": (None, [P, c_bool]),
    "wt_engine_config_set_max_wasm_stack": (None, [P, c_size_t]),
    "wt_engine_config_set_interrupt_tick_us": (None, [P, c_uint64]),
    "wt_engine_config_set_epoch_interruption": (None, [P, c_bool]),
    "wt_engine_config_set_max_module_bytes": (None, [P, c_uint64]),
    "wt_engine_config_set_max_functions": (None, [P, c_uint64]),
    "wt_engine_new": (P, [P, PP]),
    "wt_engine_free": (None, [P]),
    # modules
    "wt_module_load": (P, [P, c_char_p, c_size_t, PP]),
    "wt_module_load_file": (P, [P, c_char_p, PP]),
    "wt_module_validate": (P, [P, c_char_p, c_size_t]),
    "wt_module_serialize": (P, [P, POINTER(wt_bytes_t)]),
    "wt_module_deserialize": (P, [P, c_char_p, c_size_t, PP]),
    "wt_bytes_free": (None, [POINTER(wt_bytes_t)]),
    "wt_module_free": (None, [P]),
    # run configs
    "wt_run_config_new": (P, []),
    "wt_run_config_free": (None, [P]),
    "wt_run_config_push_arg": (P, [P, c_char_p]),
    "wt_run_config_push_env": (P, [P, c_char_p, c_char_p]),
    "wt_run_config_inherit_env": (None, [P, c_bool]),
    "wt_run_config_preopen_dir": (P, [P, c_char_p, c_char_p]),
    "wt_run_config_preopen_dir_readonly": (P, [P, c_char_p, c_char_p]),
    "wt_run_config_preopen_socket": (P, [P, c_int32]),
    "wt_run_config_preopen_tcp_listener": (P, [P, c_char_p, POINTER(c_uint16)]),
    "wt_run_config_set_max_threads": (None, [P, c_uint32]),
    "wt_run_config_set_timeout_ms": (None, [P, c_uint64]),
    "wt_run_config_set_call_timeout_ms": (None, [P, c_uint64]),
    "wt_run_config_set_max_memory": (None, [P, c_uint64]),
    "wt_run_config_set_max_fds": (None, [P, c_uint32]),
    "wt_run_config_set_max_table_elements": (None, [P, c_uint64]),
    "wt_run_config_set_max_memories": (None, [P, c_uint32]),
    "wt_run_config_set_max_instance_bytes": (None, [P, c_uint64]),
    "wt_run_config_set_max_write_bytes": (None, [P, c_uint64]),
    "wt_run_config_set_max_files_created": (None, [P, c_uint64]),
    "wt_run_config_set_teardown_grace_ms": (None, [P, c_uint64]),
    "wt_run_config_set_coredump_path": (P, [P, c_char_p]),
    "wt_run_config_set_thread_exit_callback": (None, [P, THREAD_EXIT_CB, P]),
    "wt_run_config_set_thread_start_callback": (None, [P, THREAD_START_CB, P]),
    "wt_run_config_set_diagnostic_callback": (None, [P, DIAGNOSTIC_CB, P]),
    "wt_run_config_set_output_null": (P, [P, c_int32]),
    "wt_run_config_set_output_file": (P, [P, c_int32, c_char_p]),
    "wt_run_config_set_output_fd": (P, [P, c_int32, c_int32]),
    "wt_run_config_set_output_callback": (P, [P, c_int32, OUTPUT_CB, P]),
    "wt_run_config_set_stdin_null": (None, [P]),
    "wt_run_config_set_stdin_bytes": (P, [P, c_char_p, c_size_t]),
    "wt_run_config_set_stdin_file": (P, [P, c_char_p]),
    "wt_run_config_set_stdin_fd": (P, [P, c_int32]),
    # runs
    "wt_run": (P, [P, P, P, POINTER(wt_exit_t)]),
    "wt_exit_clear": (None, [POINTER(wt_exit_t)]),
    "wt_run_start": (P, [P, P, P, PP]),
    "wt_run_cancel": (None, [P]),
    "wt_run_wait": (P, [P, POINTER(wt_exit_t)]),
    "wt_run_try_wait": (c_bool, [P, POINTER(wt_exit_t)]),
    "wt_run_free": (None, [P]),
    # host functions
    "wt_run_config_define_func": (
        P,
        [P, c_char_p, c_char_p, POINTER(c_int), c_size_t, POINTER(c_int), c_size_t, FUNC_CB, P, FINALIZER],
    ),
    "wt_caller_tid": (c_int32, [P]),
    "wt_caller_memory_data": (P, [P]),
    "wt_caller_memory_size": (c_size_t, [P]),
    "wt_caller_is_ending": (c_bool, [P]),
    "wt_caller_end_fd": (c_int32, [P]),
    "wt_error_new": (P, [c_char_p]),
    # instances
    "wt_instance_new": (P, [P, P, P, PP]),
    # The wt_val_t arrays are passed as plain pointers: the binding packs them with struct.
    "wt_instance_call": (P, [P, c_char_p, c_void_p, c_size_t, c_void_p, c_size_t, POINTER(wt_exit_t)]),
    "wt_instance_export_count": (c_size_t, [P]),
    "wt_instance_export_name": (c_char_p, [P, c_size_t]),
    "wt_instance_export_type": (
        P,
        [P, c_char_p, POINTER(c_int), c_size_t, POINTER(c_size_t), POINTER(c_int), c_size_t, POINTER(c_size_t)],
    ),
    "wt_instance_call_mode": (c_int, [P]),
    "wt_instance_memory_data": (P, [P]),
    "wt_instance_memory_size": (c_size_t, [P]),
    "wt_instance_memory_read": (P, [P, c_uint64, c_void_p, c_size_t]),
    "wt_instance_memory_write": (P, [P, c_uint64, c_void_p, c_size_t]),
    "wt_instance_cancel": (None, [P]),
    "wt_instance_close": (P, [P, POINTER(wt_exit_t)]),
    "wt_instance_free": (None, [P]),
}


def packaged_library() -> Path | None:
    """The libwasithreads shipped inside the package, if there is one."""
    here = Path(__file__).resolve().parent
    exact = here / "libwasithreads.so"
    if exact.is_file():
        return exact
    # Tolerate a build backend that added a platform suffix to the file name.
    found = sorted(here.glob("libwasithreads*.so"))
    return found[0] if found else None


def find_library() -> Path:
    """The path of the library to load (see the module docstring)."""
    override = os.environ.get(LIB_ENV)
    if override:
        path = Path(override)
        if not path.is_file():
            raise ImportError(f"{LIB_ENV}={override!r}: no such file")
        return path.resolve()
    packaged = packaged_library()
    if packaged is None:
        raise ImportError(
            "wasithreads: libwasithreads.so is not in the package; install it with "
            f"`pip install ./bindings/python` or set {LIB_ENV}=/path/to/libwasithreads.so"
        )
    return packaged


def _load() -> ctypes.CDLL:
    path = find_library()
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as e:
        raise ImportError(f"wasithreads: cannot load {path}: {e}") from e
    for name, (restype, argtypes) in PROTOTYPES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            raise ImportError(f"wasithreads: {path} has no function {name}") from None
        fn.restype = restype
        fn.argtypes = argtypes
    version = lib.wt_version().decode()
    major, minor = (int(x) for x in version.split(".")[:2])
    if (major, minor) != (ABI_MAJOR, ABI_MINOR):
        raise ImportError(
            f"wasithreads: {path} is version {version}; this binding needs {ABI_MAJOR}.{ABI_MINOR}.x"
        )
    global LIB_PATH
    LIB_PATH = str(path)
    return lib


#: The path of the loaded library.
LIB_PATH = ""
lib = _load()


def version() -> str:
    """The version of the loaded libwasithreads, e.g. ``"0.1.0"``."""
    raw: bytes = lib.wt_version()
    return raw.decode()


def library_path() -> str:
    """The path of the libwasithreads.so this package loaded."""
    return LIB_PATH
