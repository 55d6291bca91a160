;; A guest for the wt-run tests; argv[1] picks what it does:
;;   N               exit with code N
;;   print-env       print "args: ARGV..." and the environment, one variable a line
;;   trap-in-thread  a spawned thread calls $boom, which traps; main waits forever
;;   spin            loop forever
;;   count-threads   spawn 3 threads that wait forever; exit 40 + number of successful spawns
;;   read-file       print "read: " and the contents of /data/hello.txt
(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "env" "memory" (memory 1 1 shared))

  ;; 0..63 scratch, 64 wait word, 1024 argv pointers, 2048 argv strings,
  ;; 8192 environ pointers, 9216 environ strings, 16384 read buffer, 20000.. constants
  (data (i32.const 20000) "print-env\00")
  (data (i32.const 20016) "trap-in-thread\00")
  (data (i32.const 20032) "spin\00")
  (data (i32.const 20048) "count-threads\00")
  (data (i32.const 20064) "read-file\00")
  (data (i32.const 20080) "args:\00")
  (data (i32.const 20096) "read: \00")
  (data (i32.const 20112) "hello.txt\00")
  (data (i32.const 20128) " \00")
  (data (i32.const 20144) "\n\00")

  (func $strlen (param $p i32) (result i32) (local $n i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $next)))
    (local.get $n))

  (func $streq (param $a i32) (param $b i32) (result i32) (local $ca i32)
    (loop $next
      (local.set $ca (i32.load8_u (local.get $a)))
      (if (i32.ne (local.get $ca) (i32.load8_u (local.get $b))) (then (return (i32.const 0))))
      (if (i32.eqz (local.get $ca)) (then (return (i32.const 1))))
      (local.set $a (i32.add (local.get $a) (i32.const 1)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $next))
    (i32.const 0))

  (func $write (param $p i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $p))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))

  (func $print (param $p i32) (call $write (local.get $p) (call $strlen (local.get $p))))

  (func $atoi (param $p i32) (result i32) (local $n i32) (local $c i32)
    (block $done (loop $next
      (local.set $c (i32.load8_u (local.get $p)))
      (br_if $done (i32.lt_u (i32.sub (local.get $c) (i32.const 48)) (i32.const 0)))
      (br_if $done (i32.gt_u (i32.sub (local.get $c) (i32.const 48)) (i32.const 9)))
      (local.set $n (i32.add (i32.mul (local.get $n) (i32.const 10)) (i32.sub (local.get $c) (i32.const 48))))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $next)))
    (local.get $n))

  (func $wait_forever (drop (memory.atomic.wait32 (i32.const 64) (i32.const 0) (i64.const -1))))

  (func $boom unreachable)

  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (if (local.get $arg) (then (call $boom)))
    (call $wait_forever))

  (func (export "_start") (local $argc i32) (local $arg1 i32) (local $i i32) (local $n i32)
    (drop (call $args_sizes_get (i32.const 16) (i32.const 20)))
    (local.set $argc (i32.load (i32.const 16)))
    (drop (call $args_get (i32.const 1024) (i32.const 2048)))
    (if (i32.lt_u (local.get $argc) (i32.const 2)) (then (call $proc_exit (i32.const 99))))
    (local.set $arg1 (i32.load (i32.const 1028)))

    (if (call $streq (local.get $arg1) (i32.const 20000)) (then
      (call $print (i32.const 20080))
      (loop $args
        (call $print (i32.const 20128))
        (call $print (i32.load (i32.add (i32.const 1024) (i32.mul (local.get $i) (i32.const 4)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $args (i32.lt_u (local.get $i) (local.get $argc))))
      (call $print (i32.const 20144))
      (drop (call $environ_sizes_get (i32.const 16) (i32.const 20)))
      (local.set $n (i32.load (i32.const 16)))
      (drop (call $environ_get (i32.const 8192) (i32.const 9216)))
      (local.set $i (i32.const 0))
      (block $done (loop $env
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $print (i32.load (i32.add (i32.const 8192) (i32.mul (local.get $i) (i32.const 4)))))
        (call $print (i32.const 20144))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $env)))
      (call $proc_exit (i32.const 0))))

    (if (call $streq (local.get $arg1) (i32.const 20016)) (then
      (drop (call $spawn (i32.const 1)))
      (call $wait_forever)))

    (if (call $streq (local.get $arg1) (i32.const 20032)) (then (loop $spin (br $spin))))

    (if (call $streq (local.get $arg1) (i32.const 20048)) (then
      (loop $more
        (if (i32.ge_s (call $spawn (i32.const 0)) (i32.const 0))
          (then (local.set $n (i32.add (local.get $n) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $more (i32.lt_u (local.get $i) (i32.const 3))))
      (call $proc_exit (i32.add (i32.const 40) (local.get $n)))))

    (if (call $streq (local.get $arg1) (i32.const 20064)) (then
      ;; path_open(fd 3 = the first preopen, "hello.txt", rights: read) -> fd at 24
      (if (call $path_open (i32.const 3) (i32.const 0) (i32.const 20112) (i32.const 9) (i32.const 0)
                           (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 24))
        (then (call $proc_exit (i32.const 98))))
      (i32.store (i32.const 32) (i32.const 16384))
      (i32.store (i32.const 36) (i32.const 1024))
      (drop (call $fd_read (i32.load (i32.const 24)) (i32.const 32) (i32.const 1) (i32.const 40)))
      (call $print (i32.const 20096))
      (call $write (i32.const 16384) (i32.load (i32.const 40)))
      (call $proc_exit (i32.const 0))))

    (call $proc_exit (call $atoi (local.get $arg1)))))
