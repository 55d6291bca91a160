;; A plugin (library) module shaped like a threaded C reactor, written by hand so every
;; front end can test instances without a C toolchain: a shared memory, `wasi_thread_start`,
;; and, by name in the name section, `__stack_pointer` and a `__pthread_create` that, as
;; wasi-libc's does, hands a start routine and its argument to `wasi::thread-spawn` through
;; guest memory. So the library can adopt host threads as guest threads (parallel calls).
;; `$tid` is per instance, so per guest thread: each call worker has its own, as C code
;; has its own thread-locals.
;;
;; Exports: add(i32, i32) -> i32; whoami() -> i32 (the calling guest thread's id);
;; twice_plus(x) = env.twice(x) + 1; sum(ptr, len) -> i64 (bytes at ptr); spin(n) -> i32
;; (n rounds of an LCG); boom() traps; quit(code) calls proc_exit; block() calls
;; env.block (a host function that blocks); spawn_twice(x) -> i32 starts a guest thread
;; that calls env.twice(x) and stores the result, waits for it, returns it.
(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "env" "memory" (memory 2 16 shared))
  (import "env" "twice" (func $twice (param i32) (result i32)))
  (import "env" "block" (func $block))
  (type $routine (func (param i32) (result i32)))
  (table 2 2 funcref)
  (elem (i32.const 1) func $waiter)
  (global $__stack_pointer (mut i32) (i32.const 65536))
  (global $tid (mut i32) (i32.const 0))
  ;; Thread blocks at 1024 + 16 * n: start routine, argument; the next free one at 512.
  (func $__pthread_create (param $out i32) (param $attr i32) (param $fn i32) (param $arg i32) (result i32)
    (local $block i32) (local $t i32)
    (local.set $block (i32.add (i32.const 1024)
      (i32.mul (i32.atomic.rmw.add (i32.const 512) (i32.const 1)) (i32.const 16))))
    (i32.store (local.get $block) (local.get $fn))
    (i32.store offset=4 (local.get $block) (local.get $arg))
    (local.set $t (call $spawn (local.get $block)))
    (if (i32.lt_s (local.get $t) (i32.const 0)) (then (return (i32.const 6))))
    (i32.store (local.get $out) (local.get $t))
    (i32.const 0))
  (func (export "wasi_thread_start") (param $t i32) (param $block i32)
    (global.set $tid (local.get $t))
    (global.set $__stack_pointer (i32.add (i32.const 65536) (i32.mul (local.get $t) (i32.const 256))))
    (drop (call_indirect (type $routine)
      (i32.load offset=4 (local.get $block)) (i32.load (local.get $block)))))
  (func (export "_initialize") (i32.store (i32.const 600) (i32.const 7)))
  (func (export "inited") (result i32) (i32.load (i32.const 600)))
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "whoami") (result i32) (global.get $tid))
  (func (export "twice_plus") (param i32) (result i32) (i32.add (call $twice (local.get 0)) (i32.const 1)))
  (func (export "sum") (param $p i32) (param $n i32) (result i64) (local $s i64)
    (block $d (loop $l
      (br_if $d (i32.eqz (local.get $n)))
      (local.set $s (i64.add (local.get $s) (i64.load8_u (local.get $p))))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $l)))
    (local.get $s))
  (func (export "spin") (param $n i32) (result i32) (local $x i32)
    (local.set $x (local.get $n))
    (block $d (loop $l
      (br_if $d (i32.eqz (local.get $n)))
      (local.set $x (i32.add (i32.mul (local.get $x) (i32.const 1664525)) (i32.const 1013904223)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $l)))
    (local.get $x))
  (func (export "boom") (unreachable))
  (func (export "quit") (param i32) (call $exit (local.get 0)))
  (func (export "block") (call $block))
  ;; A guest thread started inside a call: stores env.twice(arg) at 700, then 1 at 704.
  (func $waiter (param $arg i32) (result i32)
    (i32.store (i32.const 700) (call $twice (local.get $arg)))
    (i32.atomic.store (i32.const 704) (i32.const 1))
    (drop (memory.atomic.notify (i32.const 704) (i32.const 1)))
    (i32.const 0))
  (func (export "spawn_twice") (param $x i32) (result i32)
    (i32.atomic.store (i32.const 704) (i32.const 0))
    (if (call $__pthread_create (i32.const 708) (i32.const 0) (i32.const 1) (local.get $x))
      (then (return (i32.const -1))))
    (block $done (loop $w
      (br_if $done (i32.atomic.load (i32.const 704)))
      (drop (memory.atomic.wait32 (i32.const 704) (i32.const 0) (i64.const -1)))
      (br $w)))
    (i32.load (i32.const 700))))
