;; Eight threads each fd_write a 1000-byte block of their own letter ('A' for spawn
;; argument 0, tid 1, ...) 50 times to stdout; main joins them and returns. The readers
;; check that no write is lost or interleaved: 400 writes, 50 000 bytes of each letter.
;; Read by the Rust tests (tests/integration/stdio.rs), tests/c/host_control.c, the Go tests.
(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "env" "memory" (memory 2 2 shared))
  (func (export "wasi_thread_start") (param $tid i32) (param $n i32) (local $i i32) (local $base i32)
    (local.set $base (i32.add (i32.const 4096) (i32.mul (local.get $n) (i32.const 1024))))
    (memory.fill (local.get $base) (i32.add (i32.const 65) (local.get $n)) (i32.const 1000))
    (i32.store (i32.mul (local.get $n) (i32.const 16)) (local.get $base))
    (i32.store offset=4 (i32.mul (local.get $n) (i32.const 16)) (i32.const 1000))
    (loop $again
      (drop (call $write (i32.const 1) (i32.mul (local.get $n) (i32.const 16)) (i32.const 1)
                         (i32.add (i32.const 8) (i32.mul (local.get $n) (i32.const 16)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 50))))
    (drop (i32.atomic.rmw.add (i32.const 2048) (i32.const 1)))
    (drop (memory.atomic.notify (i32.const 2048) (i32.const 1))))
  (func (export "_start") (local $n i32) (local $done i32)
    (loop $s (drop (call $spawn (local.get $n)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $s (i32.lt_u (local.get $n) (i32.const 8))))
    (loop $join (local.set $done (i32.atomic.load (i32.const 2048)))
      (if (i32.lt_u (local.get $done) (i32.const 8)) (then
        (drop (memory.atomic.wait32 (i32.const 2048) (local.get $done) (i64.const -1)))
        (br $join))))))
