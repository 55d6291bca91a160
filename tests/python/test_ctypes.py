"""wasithreads from Python through ctypes (standard library only): proof that any
language that can dlopen a shared library can use it.

    python3 tests/python/test_ctypes.py path/to/libwasithreads.so
"""
import ctypes
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
# or traps in a spawned thread when it has two arguments.
GUEST = rb"""(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $argc (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "env" "memory" (memory 1 1 shared))
  (data (i32.const 256) "line from thread 0\n")
  (func $crash unreachable)
  (func (export "wasi_thread_start") (param $tid i32) (param $n i32) (local $at i32)
    (if (i32.eq (local.get $n) (i32.const 99)) (then (call $crash)))
    (local.set $at (i32.add (i32.const 512) (i32.mul (local.get $n) (i32.const 64))))
    (memory.copy (local.get $at) (i32.const 256) (i32.const 19))
    (i32.store8 offset=17 (local.get $at) (i32.add (i32.const 48) (local.get $n)))
    (i32.store offset=32 (local.get $at) (local.get $at))
    (i32.store offset=36 (local.get $at) (i32.const 19))
    (drop (call $write (i32.const 1) (i32.add (local.get $at) (i32.const 32)) (i32.const 1)
                       (i32.add (local.get $at) (i32.const 40))))
    (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))
    (drop (memory.atomic.notify (i32.const 0) (i32.const 1))))
  (func (export "_start") (local $n i32) (local $done i32)
    (drop (call $argc (i32.const 8) (i32.const 12)))
    (if (i32.eq (i32.load (i32.const 8)) (i32.const 2)) (then
      (drop (call $spawn (i32.const 99)))
      (drop (memory.atomic.wait32 (i32.const 4) (i32.const 0) (i64.const -1)))))
    (loop $s (drop (call $spawn (local.get $n)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $s (i32.lt_u (local.get $n) (i32.const 4))))
    (loop $join (local.set $done (i32.atomic.load (i32.const 0)))
      (if (i32.lt_u (local.get $done) (i32.const 4)) (then
        (drop (memory.atomic.wait32 (i32.const 0) (local.get $done) (i64.const -1))) (br $join))))
    (call $exit (i32.const 3))))
"""

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
