;; Thread N (spawn argument N, tid N+1) writes "line from thread N\n" to stdout; main
;; spawns four threads, joins them and calls proc_exit(3). With two arguments, main first
;; spawns a thread (tid 1) that traps in $crash and waits forever: the trap ends the run.
;; Read by the Go tests (bindings/go), the Python ctypes test (tests/python).
(module
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
