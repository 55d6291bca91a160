;; Main spawns three threads that wait forever (argument 0), spin (1) and sleep an hour
;; in poll_oneoff (2), then spins itself: the run ends only by timeout or cancel.
;; Read by tests/c/host_control.c and the Go tests.
(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "env" "memory" (memory 1 1 shared))
  (func $block (param $mode i32)
    (if (i32.eq (local.get $mode) (i32.const 1)) (then (loop $l (br $l))))
    (if (i32.eq (local.get $mode) (i32.const 2)) (then
      (i32.store8 (i32.const 408) (i32.const 0)) (i32.store (i32.const 416) (i32.const 1))
      (i64.store (i32.const 424) (i64.const 3600000000000))
      (drop (call $poll (i32.const 400) (i32.const 500) (i32.const 1) (i32.const 600)))))
    (drop (memory.atomic.wait32 (i32.const 8) (i32.const 0) (i64.const -1))))
  (func (export "wasi_thread_start") (param i32 i32) (call $block (local.get 1)))
  (func (export "_start")
    (drop (call $spawn (i32.const 0))) (drop (call $spawn (i32.const 1)))
    (drop (call $spawn (i32.const 2))) (call $block (i32.const 1))))
