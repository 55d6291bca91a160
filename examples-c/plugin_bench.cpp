// plugin-bench: the cost of plugin calls from C and C++, on the real C plugin
// (tests/guests/plugin-c; the CMake project builds it as plugin-c.wasm):
//
//   plugin-bench PLUGIN-C.wasm [ROUNDS]
//
// - the warm call overhead of its trivial export add(i32, i32) -> i32 from one host
//   thread: wt_instance_call (C), Instance::call<int32_t(int32_t, int32_t)>("add", ...)
//   and an Instance::func handle (C++), in ns per call;
// - the two-thread speed-up of the CPU-bound export spin(n): the throughput of two host
//   threads calling it at once over that of one, from C and from C++ (2 = perfect).
//
// Each figure is the best of ROUNDS (default 5) measurements, in the same run. Built by
// the CMake project, not run as a test: timings belong to benchmarks, not to tests.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "wasithreads.hpp"

namespace wt = wasithreads;
using Clock = std::chrono::steady_clock;

static double seconds(const std::function<void()> &body) {
    auto t0 = Clock::now();
    body();
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

static double best(int rounds, const std::function<double()> &measure) {
    double b = measure();
    for (int i = 1; i < rounds; i++) b = std::min(b, measure());
    return b;
}

static int32_t c_call1(const wt_instance_t *inst, const char *name, int32_t a, int32_t b, size_t nargs) {
    wt_val_t args[2], result;
    args[0].kind = args[1].kind = WT_I32;
    args[0].of.i32 = a;
    args[1].of.i32 = b;
    wt_error_t *err = wt_instance_call(inst, name, args, nargs, &result, 1, nullptr);
    if (err) {
        std::string msg = wt_error_message(err);
        wt_error_free(err);
        throw std::runtime_error(msg);
    }
    return result.of.i32;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: plugin-bench PLUGIN-C.wasm [ROUNDS]\n");
        return 2;
    }
    int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
    if (rounds < 1) rounds = 1;
    wt::Engine engine;
    auto module = wt::Module::from_file(engine, argv[1]);
    wt::RunConfig config;
    config.define("env", "host_log", [](int32_t, int32_t) {});
    config.define("env", "host_add", [](int64_t a, int64_t b) { return a + b; });
    config.define("env", "host_block", [] {});
    wt::Instance inst(engine, module, config);
    const wt_instance_t *raw = inst.get();
    std::printf("call mode: %s\n", inst.call_mode() == wt::CallMode::Parallel ? "parallel" : "serial");

    // Warm call overhead of add.
    const int calls = 200000;
    volatile int32_t sink = 0;
    c_call1(raw, "add", 1, 2, 2);  // the first call makes this thread's guest thread
    auto add = inst.func<int32_t(int32_t, int32_t)>("add");
    const std::function<void()> variants[3] = {
        [&] {
            for (int i = 0; i < calls; i++) sink = c_call1(raw, "add", i, 1, 2);
        },
        [&] {
            for (int i = 0; i < calls; i++) sink = inst.call<int32_t(int32_t, int32_t)>("add", i, 1);
        },
        [&] {
            for (int i = 0; i < calls; i++) sink = add(i, 1);
        },
    };
    // Round-robin, so that a slower moment of the machine hits each alike.
    double ns[3] = {1e30, 1e30, 1e30};
    for (int r = 0; r < rounds; r++)
        for (int v = 0; v < 3; v++) ns[v] = std::min(ns[v], seconds(variants[v]) / calls * 1e9);
    double c_ns = ns[0], cpp_ns = ns[1], func_ns = ns[2];
    std::printf("add, warm call from one host thread (best of %d x %d calls):\n", rounds, calls);
    std::printf("  C   wt_instance_call                       %7.1f ns\n", c_ns);
    std::printf("  C++ Instance::call<int32_t(int32_t, int32_t)> %7.1f ns\n", cpp_ns);
    std::printf("  C++ Instance::func handle                  %7.1f ns\n", func_ns);

    // Two-thread speed-up of spin: the same number of calls per thread.
    const int32_t n = 2000000;
    const int per_thread = 20;
    auto spin_c = [&] {
        for (int i = 0; i < per_thread; i++) sink = c_call1(raw, "spin", n + i, 0, 1);
    };
    auto spin_cpp = [&] {
        for (int i = 0; i < per_thread; i++) sink = inst.call<int32_t(int32_t)>("spin", n + i);
    };
    auto speedup = [&](const std::function<void()> &body) {
        double one = best(rounds, [&] { return seconds(body); });
        double two = best(rounds, [&] {
            return seconds([&] {
                std::thread other(body);
                body();
                other.join();
            });
        });
        return std::make_pair(one, 2 * one / two);
    };
    std::thread warm(spin_c);  // a second host thread's guest thread, made before timing
    warm.join();
    auto c = speedup(spin_c);
    auto cpp = speedup(spin_cpp);
    std::printf("spin(%d), %d calls per thread, two host threads at once vs one (best of %d):\n", n, per_thread,
                rounds);
    std::printf("  C   one thread %.3f s, speed-up with two: %.2fx\n", c.first, c.second);
    std::printf("  C++ one thread %.3f s, speed-up with two: %.2fx\n", cpp.first, cpp.second);
    (void)sink;
    return 0;
}
