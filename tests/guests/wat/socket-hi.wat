;; Shared by the Python and Go tests of preopened sockets: accepts one connection on the
;; listener at fd 3, sends "hi" on it, shuts its side down and exits with 0 (or the
;; failing call's errno: accept's, 100 + send's).
(module
  (import "wasi_snapshot_preview1" "sock_accept" (func $accept (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_send" (func $send (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_shutdown" (func $shutdown (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "hi")
  (func (export "_start") (local $e i32)
    (local.set $e (call $accept (i32.const 3) (i32.const 0) (i32.const 0)))
    (if (local.get $e) (then (call $exit (local.get $e))))
    (i32.store (i32.const 16) (i32.const 64))
    (i32.store (i32.const 20) (i32.const 2))
    (local.set $e (call $send (i32.load (i32.const 0)) (i32.const 16) (i32.const 1) (i32.const 0) (i32.const 24)))
    (if (local.get $e) (then (call $exit (i32.add (i32.const 100) (local.get $e)))))
    (drop (call $shutdown (i32.load (i32.const 0)) (i32.const 2)))
    (call $exit (i32.const 0))))
