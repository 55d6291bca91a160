"""wasithreads from Python through ctypes (standard library only): proof that any
language that can dlopen a shared library can use it.

    python3 tests/python/test_ctypes.py path/to/libwasithreads.so
"""
import ctypes
import pathlib
import sys
import threading

lib = ctypes.CDLL(sys.argv[1])


class Exit(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_int), ("code", ctypes.c_int32), ("tid", ctypes.c_int32),
                ("message", ctypes.c_void_p)]


class ThreadExit(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_int), ("code", ctypes.c_int32), ("message", ctypes.c_char_p)]


WT_EXIT_CODE, WT_EXIT_TRAP, WT_EXIT_TIMEOUT, WT_EXIT_CANCELLED = 0, 1, 2, 3
WT_THREAD_RETURNED, WT_THREAD_EXITED, WT_THREAD_TRAPPED, WT_THREAD_TERMINATED = 0, 1, 2, 3
OUTPUT_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int32, ctypes.POINTER(ctypes.c_uint8), ctypes.c_size_t)
EXIT_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int32, ctypes.POINTER(ThreadExit))

P = ctypes.c_void_p
lib.wt_version.restype = ctypes.c_char_p
lib.wt_error_message.restype = ctypes.c_char_p
lib.wt_error_message.argtypes = [P]
lib.wt_error_free.argtypes = [P]
lib.wt_engine_new.restype = P
lib.wt_engine_new.argtypes = [P, ctypes.POINTER(P)]
lib.wt_engine_free.argtypes = [P]
lib.wt_module_load.restype = P
lib.wt_module_load.argtypes = [P, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(P)]
lib.wt_module_free.argtypes = [P]
lib.wt_run_config_new.restype = P
lib.wt_run_config_free.argtypes = [P]
lib.wt_run_config_push_arg.restype = P
lib.wt_run_config_push_arg.argtypes = [P, ctypes.c_char_p]
lib.wt_run_config_set_output_callback.restype = P
lib.wt_run_config_set_output_callback.argtypes = [P, ctypes.c_int32, OUTPUT_CB, P]
lib.wt_run_config_set_thread_exit_callback.argtypes = [P, EXIT_CB, P]
lib.wt_run.restype = P
lib.wt_run.argtypes = [P, P, P, ctypes.POINTER(Exit)]
lib.wt_exit_clear.argtypes = [ctypes.POINTER(Exit)]


def check(err):
    if err:
        message = lib.wt_error_message(err).decode()
        lib.wt_error_free(err)
        raise RuntimeError(message)


# Thread N (spawn argument N) writes "line from thread N\n"; main joins them and exits 3,
# or traps in a spawned thread when it has two arguments. Shared with the Go tests.
GUEST = (pathlib.Path(__file__).resolve().parent.parent / "guests" / "wat" / "printers.wat").read_bytes()

passed = 0


def test(fn):
    global passed
    fn()
    passed += 1
    print(f"ok {fn.__name__}")


engine = P()
check(lib.wt_engine_new(None, ctypes.byref(engine)))
module = P()
check(lib.wt_module_load(engine, GUEST, len(GUEST), ctypes.byref(module)))


def run(args, on_output=None, on_exit=None):
    config = lib.wt_run_config_new()
    keep = []
    try:
        for a in args:
            check(lib.wt_run_config_push_arg(config, a.encode()))
        if on_output:
            cb = OUTPUT_CB(lambda _ud, tid, data, n: on_output(tid, ctypes.string_at(data, n)))
            keep.append(cb)
            check(lib.wt_run_config_set_output_callback(config, 1, cb, None))
        if on_exit:
            cb = EXIT_CB(lambda _ud, tid, how: on_exit(tid, how.contents.kind))
            keep.append(cb)
            lib.wt_run_config_set_thread_exit_callback(config, cb, None)
        exit = Exit()
        check(lib.wt_run(engine, module, config, ctypes.byref(exit)))
        message = ctypes.string_at(exit.message).decode() if exit.message else None
        result = (exit.kind, exit.code, exit.tid, message)
        lib.wt_exit_clear(ctypes.byref(exit))
        return result
    finally:
        lib.wt_run_config_free(config)


@test
def version():
    assert lib.wt_version().decode().count(".") == 2


@test
def threaded_guest_output_and_exit():
    lock = threading.Lock()
    out, endings = {}, []

    def on_output(tid, data):
        with lock:
            out[tid] = out.get(tid, b"") + data

    def on_exit(tid, kind):
        with lock:
            endings.append((tid, kind))

    kind, code, tid, message = run(["guest"], on_output, on_exit)
    assert (kind, code, tid, message) == (WT_EXIT_CODE, 3, 0, None), (kind, code, tid, message)
    assert out == {n + 1: f"line from thread {n}\n".encode() for n in range(4)}, out
    assert sorted(endings) == [(0, WT_THREAD_EXITED)] + [(t, WT_THREAD_RETURNED) for t in range(1, 5)], endings


@test
def trap_reports_thread_and_message():
    kind, code, tid, message = run(["guest", "trap"])
    assert kind == WT_EXIT_TRAP and tid == 1, (kind, tid)
    assert "unreachable" in message and "crash" in message, message


@test
def errors_are_values():
    bad = P()
    err = lib.wt_module_load(engine, b"\xde\xad\xbe\xef", 4, ctypes.byref(bad))
    assert err, "garbage must not load"
    assert b"not a WebAssembly module" in lib.wt_error_message(err)
    lib.wt_error_free(err)


lib.wt_module_free(module)
lib.wt_engine_free(engine)
print(f"python ctypes: {passed} passed, 0 failed")
