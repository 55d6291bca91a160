;; Shared by the Python and Go tests of preopened sockets: exits with the WASI file
;; type of fd 3 (6: socket_stream), or 255 if it has none.
(module
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $stat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (call $exit (if (result i32) (call $stat (i32.const 3) (i32.const 0))
                  (then (i32.const 255)) (else (i32.load8_u (i32.const 0)))))))
