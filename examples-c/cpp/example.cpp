// The C++ wrapper in use: capture output per thread, count thread endings, read a trap,
// cancel a background run, and catch a load error as an exception.
#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include "wasithreads.hpp"

// Thread N (spawn argument N) writes "thread N\n"; main exits with code 3 once all four
// wrote, or traps when its argv has two entries.
static const char *GUEST = R"((module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $argc (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "env" "memory" (memory 1 1 shared))
  (data (i32.const 256) "thread 0\n")
  (func (export "wasi_thread_start") (param $tid i32) (param $n i32) (local $at i32)
    (local.set $at (i32.add (i32.const 512) (i32.mul (local.get $n) (i32.const 64))))
    (memory.copy (local.get $at) (i32.const 256) (i32.const 9))
    (i32.store8 offset=7 (local.get $at) (i32.add (i32.const 48) (local.get $n)))
    (i32.store offset=16 (local.get $at) (local.get $at))
    (i32.store offset=20 (local.get $at) (i32.const 9))
    (drop (call $write (i32.const 1) (i32.add (local.get $at) (i32.const 16)) (i32.const 1)
                       (i32.add (local.get $at) (i32.const 24))))
    (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))
    (drop (memory.atomic.notify (i32.const 0) (i32.const 1))))
  (func (export "_start") (local $n i32) (local $done i32)
    (drop (call $argc (i32.const 8) (i32.const 12)))
    (if (i32.eq (i32.load (i32.const 8)) (i32.const 2)) (then unreachable))
    (if (i32.eq (i32.load (i32.const 8)) (i32.const 3)) (then (loop $spin (br $spin))))
    (loop $s (drop (call $spawn (local.get $n)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $s (i32.lt_u (local.get $n) (i32.const 4))))
    (loop $join (local.set $done (i32.atomic.load (i32.const 0)))
      (if (i32.lt_u (local.get $done) (i32.const 4)) (then
        (drop (memory.atomic.wait32 (i32.const 0) (local.get $done) (i64.const -1))) (br $join))))
    (call $exit (i32.const 3))))
)";

int main() {
    try {
        wasithreads::Engine engine;
        auto module = wasithreads::Module::from_bytes(engine, GUEST);

        std::mutex lock;
        std::map<int32_t, std::string> by_tid;
        std::atomic<int> returned{0};
        wasithreads::RunConfig config;
        config.arg("guest")
            .on_output(wasithreads::Stdout, [&](int32_t tid, std::string_view text) {
                std::lock_guard<std::mutex> g(lock);
                by_tid[tid] += text;
            })
            .on_thread_exit([&](int32_t, const wasithreads::ThreadExit &how) {
                if (how.kind == wasithreads::ThreadExit::Kind::Returned) returned++;
            });
        wasithreads::Exit exit = wasithreads::run(engine, module, config);
        std::cout << "exit code " << exit.code << ", threads returned " << returned << "\n";
        for (auto &[tid, text] : by_tid) std::cout << "tid " << tid << " wrote " << text;

        wasithreads::RunConfig trapping;
        trapping.arg("guest").arg("trap");
        exit = wasithreads::run(engine, module, trapping);
        std::cout << "trap in thread " << exit.tid << ": "
                  << exit.message.substr(0, exit.message.find('\n')) << "\n";

        wasithreads::RunConfig spinning;
        spinning.arg("guest").arg("spin").arg("forever");
        wasithreads::Run background(engine, module, spinning);
        std::thread canceller([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            background.cancel();
        });
        exit = background.wait();
        canceller.join();
        std::cout << "background run "
                  << (exit.kind == wasithreads::Exit::Kind::Cancelled ? "cancelled" : "not cancelled") << "\n";

        try {
            wasithreads::Module::from_bytes(engine, "not wasm");
        } catch (const wasithreads::Error &e) {
            std::cout << "load error caught: " << std::string(e.what()).substr(0, 22) << "\n";
        }
        return 0;
    } catch (const std::exception &e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
}
