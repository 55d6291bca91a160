;; A test guest: `_start` runs the body spliced in by tests/common/mod.rs; every spawned
;; thread counts itself in "started" (address 200), then behaves as its spawn argument says.
(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "env" "memory" (memory 2 2 shared))
  (export "memory" (memory 0))

  ;; Addresses: 100 tid seen by a thread, 104 arg seen, 200 started counter, 204 counter of
  ;; threads that finished printing (mode 6),
  ;; 300/312 wait words (never notified), 700 iovec, 800 read buffer, 1000.. output text,
  ;; 0x1EFFC and 0x1F000.. the sleeps' subscriptions (see $sleep).
  (data (i32.const 1000) "hello from thread\n")

  (func $print (param $ptr i32) (param $len i32)
    (i32.store (i32.const 700) (local.get $ptr))
    (i32.store (i32.const 704) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 700) (i32.const 1) (i32.const 720))))

  ;; Sleep for $ns nanoseconds with poll_oneoff on the monotonic clock. Each call takes a
  ;; subscription, event and count of its own (128 bytes from a ring of 32 at 0x1F000,
  ;; picked with the counter at 0x1EFFC): with one shared subscription, main's 5 ms sleep
  ;; could read the hour a mode-2 thread was writing at the same time, and sleep an hour.
  (func $sleep (param $ns i64)
    (local $sub i32)
    (local.set $sub (i32.add (i32.const 0x1F000)
      (i32.mul (i32.and (i32.atomic.rmw.add (i32.const 0x1EFFC) (i32.const 1)) (i32.const 31)) (i32.const 128))))
    (i64.store (local.get $sub) (i64.const 0))
    (i32.store8 offset=8 (local.get $sub) (i32.const 0))
    (i32.store offset=16 (local.get $sub) (i32.const 1))
    (i64.store offset=24 (local.get $sub) (local.get $ns))
    (i64.store offset=32 (local.get $sub) (i64.const 0))
    (i32.store16 offset=40 (local.get $sub) (i32.const 0))
    (drop (call $poll_oneoff (local.get $sub) (i32.add (local.get $sub) (i32.const 48)) (i32.const 1)
      (i32.add (local.get $sub) (i32.const 80)))))

  ;; Wait until the counter at $addr reaches at least $n.
  (func $wait_count (param $addr i32) (param $n i32)
    (local $seen i32)
    (block $done
      (loop $again
        (local.set $seen (i32.atomic.load (local.get $addr)))
        (br_if $done (i32.ge_u (local.get $seen) (local.get $n)))
        (drop (memory.atomic.wait32 (local.get $addr) (local.get $seen) (i64.const 1000000)))
        (br $again))))

  ;; Wait until at least $n threads have counted themselves in.
  (func $wait_started (param $n i32)
    (call $wait_count (i32.const 200) (local.get $n)))

  ;; Wait until at least $n mode-6 threads have printed. Their last act is a host call that
  ;; never checks for the run ending, with no loop or call after it, so a thread counted
  ;; here always ends as "returned", even if main ends the run at once.
  (func $wait_printed (param $n i32)
    (call $wait_count (i32.const 204) (local.get $n)))

  ;; What a spawned thread does after starting.
  (func $behave (param $mode i32)
    (block $b7 (block $b6 (block $b5 (block $b4 (block $b3 (block $b2 (block $b1 (block $b0
      (br_table $b0 $b1 $b2 $b3 $b4 $b5 $b6 $b7 (local.get $mode)))
      ;; 0: spin forever
      (loop $spin (br $spin)))
      ;; 1: wait forever on a word nobody notifies
      (drop (memory.atomic.wait32 (i32.const 300) (i32.const 0) (i64.const -1)))
      (return))
      ;; 2: sleep an hour
      (call $sleep (i64.const 3600000000000))
      (return))
      ;; 3: read stdin
      (i32.store (i32.const 700) (i32.const 800))
      (i32.store (i32.const 704) (i32.const 16))
      (drop (call $fd_read (i32.const 0) (i32.const 700) (i32.const 1) (i32.const 720)))
      (return))
      ;; 4: trap
      unreachable)
      ;; 5: proc_exit(33)
      (call $proc_exit (i32.const 33))
      (return))
      ;; 6: print, count in as done, return
      (call $print (i32.const 1000) (i32.const 18))
      (drop (i32.atomic.rmw.add (i32.const 204) (i32.const 1)))
      (drop (memory.atomic.notify (i32.const 204) (i32.const -1)))
      (return))
    ;; 7: a 64-bit wait forever, through a memarg offset
    (drop (memory.atomic.wait64 offset=8 (i32.const 304) (i64.const 0) (i64.const -1))))

  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (i32.store (i32.const 100) (local.get $tid))
    (i32.store (i32.const 104) (local.get $arg))
    (drop (i32.atomic.rmw.add (i32.const 200) (i32.const 1)))
    (drop (memory.atomic.notify (i32.const 200) (i32.const -1)))
    (call $behave (local.get $arg)))

  (func (export "_start")
    (local $i i32) (local $r i32)
    MAIN_BODY))
