;; Creates the file "f" in preopen fd 3 and writes 5 bytes to it: exits with
;; 100 * (path_open's errno) + (fd_write's errno). Shared by the Go and Python tests of
;; the write and file-creation caps.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "f")
  (data (i32.const 200) "hello")
  (func (export "_start") (local $errno i32)
    ;; oflags CREAT, rights FD_WRITE; the fd goes to 8
    (local.set $errno (call $path_open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 1)
                                       (i32.const 1) (i64.const 0x40) (i64.const 0) (i32.const 0) (i32.const 8)))
    (i32.store (i32.const 16) (i32.const 200))
    (i32.store (i32.const 20) (i32.const 5))
    (call $proc_exit (i32.add (i32.mul (local.get $errno) (i32.const 100))
      (call $fd_write (i32.load (i32.const 8)) (i32.const 16) (i32.const 1) (i32.const 24))))))
