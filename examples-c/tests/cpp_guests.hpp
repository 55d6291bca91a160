// Small WAT guests for the C++ wrapper's tests (cpp_api.cpp, cpp_race.cpp).
#pragma once

#include <string>

namespace guests {

inline std::string module(const std::string &body) {
    return R"((module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "env" "memory" (memory 1 1 shared))
  ;; 0..15 iovec, 16 nwritten/nread, 32 wait word, 64 "tick\n", 80 "err\n", 1024.. buffer
  (data (i32.const 64) "tick\n")
  (data (i32.const 80) "err\n")
  (func $write (param $fd i32) (param $p i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $p))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 16))))
)" + body + ")";
}

/// Writes "tick\n" to stdout `n` times, then returns.
inline std::string ticks(int n) {
    return module(R"(
  (func (export "wasi_thread_start") (param i32 i32))
  (func (export "_start") (local $i i32)
    (loop $l
      (call $write (i32.const 1) (i32.const 64) (i32.const 5))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const )" + std::to_string(n) + R"()))))
)");
}

/// Writes "tick\n" to stdout and "err\n" to stderr, then spins forever.
inline std::string write_then_spin() {
    return module(R"(
  (func (export "wasi_thread_start") (param i32 i32))
  (func (export "_start")
    (call $write (i32.const 1) (i32.const 64) (i32.const 5))
    (call $write (i32.const 2) (i32.const 80) (i32.const 4))
    (loop $spin (br $spin)))
)");
}

/// Spins forever, writing nothing.
inline std::string spin() {
    return module(R"(
  (func (export "wasi_thread_start") (param i32 i32))
  (func (export "_start") (loop $spin (br $spin)))
)");
}

/// Spawns one thread, which writes "tick\n"; main waits for it and returns, or exits
/// with code 5 when the spawn fails.
inline std::string spawn_one() {
    return module(R"(
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (call $write (i32.const 1) (i32.const 64) (i32.const 5))
    (i32.atomic.store (i32.const 32) (i32.const 1))
    (drop (memory.atomic.notify (i32.const 32) (i32.const 1))))
  (func (export "_start")
    (if (i32.lt_s (call $spawn (i32.const 0)) (i32.const 0)) (then (call $proc_exit (i32.const 5))))
    (loop $wait
      (if (i32.eqz (i32.atomic.load (i32.const 32))) (then
        (drop (memory.atomic.wait32 (i32.const 32) (i32.const 0) (i64.const -1)))
        (br $wait)))))
)");
}

/// Copies stdin to stdout until end-of-file.
inline std::string cat() {
    return module(R"(
  (func (export "wasi_thread_start") (param i32 i32))
  (func (export "_start")
    (loop $more
      (i32.store (i32.const 0) (i32.const 1024))
      (i32.store (i32.const 4) (i32.const 4096))
      (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 16)))
      (if (i32.gt_u (i32.load (i32.const 16)) (i32.const 0)) (then
        (call $write (i32.const 1) (i32.const 1024) (i32.load (i32.const 16)))
        (br $more)))))
)");
}

/// Traps at once.
inline std::string trap() {
    return module(R"(
  (func (export "wasi_thread_start") (param i32 i32))
  (func (export "_start") unreachable)
)");
}

}  // namespace guests
