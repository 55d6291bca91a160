// Tests of the C++ wrapper's plugins (CTest cpp-plugin): host functions typed from
// lambdas, Instance with typed, checked and untyped calls, guest memory, and how an
// instance ends (a trap, proc_exit, cancel, close, a host function's exception), on the
// hand-written plugin.wat and on the real C plugin (tests/guests/plugin-c). Run with two
// arguments: the paths of plugin.wat and of the built C plugin.
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cpp_test.hpp"
#include "wasithreads.hpp"

namespace wt = wasithreads;

static bool contains(const std::string &s, const std::string &part) { return s.find(part) != std::string::npos; }

struct HostError : std::runtime_error {
    explicit HostError(int n) : std::runtime_error("host error " + std::to_string(n)), n(n) {}
    int n;
};

/// Blocks until the caller's instance ends, as a host function waiting on a queue or a
/// socket would (polling the end descriptor beside its own), then throws.
static void block_until_ending(wt::Caller &c) {
    pollfd p{c.end_fd(), POLLIN, 0};
    CHECK(p.fd >= 0);
    while (poll(&p, 1, 10000) == 0) {
    }
    CHECK(c.is_ending());
    throw std::runtime_error("the instance is ending");
}

/// Waits (without a time limit on the result) until `cond` holds, polling.
static void wait_for(const std::function<bool()> &cond) {
    while (!cond()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

/// Makes `n` calls at once, `call(i)` on thread i; once `ready()`, cancels the instance.
/// Returns how many calls threw InstanceEnded with Exit::Kind::Cancelled.
static int cancelled_calls(const wt::Instance &inst, int n, const std::function<void(int)> &call,
                           const std::function<bool()> &ready) {
    std::atomic<int> cancelled{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < n; i++)
        threads.emplace_back([&, i] {
            try {
                call(i);
            } catch (const wt::InstanceEnded &e) {
                if (e.exit().kind == wt::Exit::Kind::Cancelled) cancelled++;
            } catch (const std::exception &e) {
                std::cerr << "call " << i << ": " << e.what() << "\n";
            }
        });
    wait_for(ready);
    inst.cancel();
    for (auto &t : threads) t.join();
    return cancelled;
}

/// The WAT plugin's host functions: env.twice (recording each caller's tid; throws
/// HostError for 13) and env.block.
struct WatHost {
    std::mutex lock;
    std::multiset<int32_t> twice_tids;
    std::atomic<int> blocked{0};

    wt::RunConfig config() {
        wt::Imports imports;
        imports.define("env", "twice", [this](wt::Caller &c, int32_t x) {
            if (x == 13) throw HostError(13);
            std::lock_guard<std::mutex> g(lock);
            twice_tids.insert(c.tid());
            return x * 2;
        });
        imports.define("env", "block", [this](wt::Caller &c) {
            blocked++;
            block_until_ending(c);
        });
        wt::RunConfig config;
        config.imports(imports);
        return config;
    }
};

/// The C plugin's host functions: env.host_log (text by tid), env.host_add (throws
/// HostError for a == -666), env.host_block.
struct CHost {
    std::mutex lock;
    std::map<std::string, int32_t> logged;  // text -> tid
    std::atomic<long> adds{0};
    std::atomic<int> blocked{0};

    wt::RunConfig config() {
        wt::RunConfig config;
        config.define("env", "host_log", [this](wt::Caller &c, int32_t ptr, int32_t len) {
            std::string text(c.memory().string(static_cast<uint32_t>(ptr), static_cast<uint32_t>(len)));
            std::lock_guard<std::mutex> g(lock);
            logged[text] = c.tid();
        });
        config.define("env", "host_add", [this](int64_t a, int64_t b) -> int64_t {
            if (a == -666) throw HostError(666);
            adds++;
            return a + b;
        });
        config.define("env", "host_block", [this](wt::Caller &c) {
            blocked++;
            block_until_ending(c);
        });
        return config;
    }
    int32_t tid_of(const std::string &text) {
        std::lock_guard<std::mutex> g(lock);
        auto it = logged.find(text);
        CHECK(it != logged.end());
        return it->second;
    }
};

static int32_t stack_sum(int32_t n) {
    uint32_t s = 0;
    for (uint32_t i = 0; i < 256; i++) s += static_cast<uint32_t>(n) * i;
    return static_cast<int32_t>(s);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        std::cerr << "usage: cpp-plugin PLUGIN.wat PLUGIN-C.wasm\n";
        return 2;
    }
    wt::Engine engine;
    auto wat = wt::Module::from_file(engine, argv[1]);
    auto cplugin = wt::Module::from_file(engine, argv[2]);

    test("typed, checked and untyped calls; _initialize ran", [&] {
        WatHost host;
        wt::Instance inst(engine, wat, host.config());
        CHECK(inst.call_mode() == wt::CallMode::Parallel);
        CHECK((inst.call<int32_t()>("inited") == 7));
        CHECK((inst.call<int32_t(int32_t, int32_t)>("add", 1, 2) == 3));
        CHECK((inst.call<int32_t(int32_t, int32_t)>(std::string("add"), -5, 2) == -3));
        auto add = inst.func<int32_t(int32_t, int32_t)>("add");
        CHECK(add(40, 2) == 42 && add.name() == "add");
        std::vector<wt::Val> r = inst.call_untyped("sum", {wt::Val(int32_t{0}), wt::Val(int32_t{0})});
        CHECK(r.size() == 1 && r[0].kind() == wt::ValKind::I64 && r[0].i64() == 0);
        CHECK(expect_throw<wt::Error>([&] { r[0].i32(); }).kind() == wt::ErrorKind::Misuse);
        std::vector<std::string> names;
        for (const auto &e : inst.exports()) names.push_back(e.first);
        CHECK(std::count(names.begin(), names.end(), "add") == 1 && std::count(names.begin(), names.end(), "spin") == 1);
        CHECK(inst.export_type("sum").str() == "(i32, i32) -> i64");
        CHECK(inst.export_type("boom").str() == "() -> ()");
    });

    test("a call of another type or of no export is a clear error; the instance goes on", [&] {
        WatHost host;
        wt::Instance inst(engine, wat, host.config());
        auto e = expect_throw<wt::Error>([&] { inst.call<int64_t(int64_t)>("add", 1); });
        CHECK(e.kind() == wt::ErrorKind::Misuse);
        CHECK(contains(e.what(), "export `add` is (i32, i32) -> i32, called as (i64) -> i64"));
        e = expect_throw<wt::Error>([&] { inst.call<void()>("whoami"); });
        CHECK(contains(e.what(), "is () -> i32, called as () -> ()"));
        e = expect_throw<wt::Error>([&] { inst.func<int32_t(int32_t)>("add"); });
        CHECK(contains(e.what(), "export `add` is (i32, i32) -> i32, not (i32) -> i32"));
        e = expect_throw<wt::Error>([&] { inst.call<int32_t()>("nope"); });
        CHECK(e.kind() == wt::ErrorKind::Misuse);
        CHECK(contains(e.what(), "no export `nope` to call") && contains(e.what(), "add (i32, i32) -> i32"));
        e = expect_throw<wt::Error>([&] { inst.call_untyped("add", {wt::Val(1.5), wt::Val(int32_t{1})}); });
        CHECK(contains(e.what(), "called as (f64, i32) -> i32"));
        CHECK((inst.call<int32_t(int32_t, int32_t)>("add", 2, 2) == 4));
    });

    test("host functions typed from lambdas, from the caller and from a guest thread", [&] {
        WatHost host;
        wt::Instance inst(engine, wat, host.config());
        CHECK((inst.call<int32_t(int32_t)>("twice_plus", 20) == 41));
        CHECK((inst.call<int32_t(int32_t)>("spawn_twice", 21) == 42));
        int32_t caller = inst.call<int32_t()>("whoami");
        std::lock_guard<std::mutex> g(host.lock);
        CHECK(host.twice_tids.size() == 2 && host.twice_tids.count(caller) == 1);
        CHECK(*host.twice_tids.rbegin() > caller);  // the thread the call spawned
    });

    test("an untyped host function", [&] {
        wt::Imports imports;
        imports.define_untyped("env", "twice", wt::FuncType{{wt::ValKind::I32}, {wt::ValKind::I32}},
                               [](wt::Caller &, const std::vector<wt::Val> &args) {
                                   if (args[0].i32() == 5) return std::vector<wt::Val>{wt::Val(int64_t{1})};
                                   return std::vector<wt::Val>{wt::Val(args[0].i32() * 3)};
                               });
        imports.define("env", "block", [] {});
        wt::RunConfig config;
        config.imports(imports);
        wt::Instance inst(engine, wat, config);
        CHECK((inst.call<int32_t(int32_t)>("twice_plus", 2) == 7));
        auto e = expect_throw<wt::Error>([&] { inst.call<int32_t(int32_t)>("twice_plus", 5); });
        CHECK(contains(e.what(), "host function returned i64, not i32"));
    });

    test("guest memory: write, a call reads it, read back; bounds checked", [&] {
        WatHost host;
        wt::Instance inst(engine, wat, host.config());
        std::vector<uint8_t> data(3000);
        int64_t want = 0;
        for (size_t i = 0; i < data.size(); i++) want += data[i] = static_cast<uint8_t>(i * 7);
        inst.write(100000, data);
        CHECK((inst.call<int64_t(int32_t, int32_t)>("sum", 100000, 3000) == want));
        CHECK(inst.read(100000, data.size()) == data);
        wt::MemoryView m = inst.memory();
        CHECK(m.size == 2 * 65536 && m.data != nullptr && m.bytes(100000, 1)[0] == data[0]);
        CHECK(expect_throw<wt::Error>([&] { inst.write(m.size - 1, std::string("ab")); }).kind() ==
              wt::ErrorKind::Misuse);
        CHECK(expect_throw<wt::Error>([&] { inst.read(m.size, 1); }).kind() == wt::ErrorKind::Misuse);
        CHECK(expect_throw<wt::Error>([&] { m.bytes(m.size - 1, 2); }).kind() == wt::ErrorKind::Misuse);
    });

    test("a module import no host function defines is a link error naming it", [&] {
        auto e = expect_throw<wt::Error>([&] { wt::Instance inst(engine, wat); });
        CHECK(e.kind() == wt::ErrorKind::Link && contains(e.what(), "env") && contains(e.what(), "twice"));
        wt::RunConfig config;
        config.define("env", "twice", [](int64_t x) { return x; });  // of another type
        config.define("env", "block", [] {});
        e = expect_throw<wt::Error>([&] { wt::Instance inst(engine, wat, config); });
        CHECK(e.kind() == wt::ErrorKind::Link);
        e = expect_throw<wt::Error>([&] { config.define("env", "block", [] {}); });
        CHECK(e.kind() == wt::ErrorKind::Misuse && contains(e.what(), "already defined"));
    });

    test("a trap ends the instance: that call and every later one throw InstanceEnded", [&] {
        WatHost host;
        wt::Instance inst(engine, wat, host.config());
        auto e = expect_throw<wt::InstanceEnded>([&] { inst.call<void()>("boom"); });
        CHECK(e.kind() == wt::ErrorKind::Ended && e.exit().kind == wt::Exit::Kind::Trap);
        CHECK(contains(e.exit().message, "unreachable") && contains(e.what(), "unreachable"));
        auto again = expect_throw<wt::InstanceEnded>([&] { inst.call<int32_t(int32_t, int32_t)>("add", 1, 2); });
        CHECK(again.exit().kind == wt::Exit::Kind::Trap && again.exit().tid == e.exit().tid);
        CHECK(inst.close().kind == wt::Exit::Kind::Trap);
        auto quit = wt::Instance(engine, wat, host.config());
        auto q = expect_throw<wt::InstanceEnded>([&] { quit.call<void(int32_t)>("quit", 3); });
        CHECK(q.exit().kind == wt::Exit::Kind::Code && q.exit().code == 3);
    });

    test("a host function's exception traps its thread and is rethrown by every call and close", [&] {
        WatHost host;
        wt::Instance inst(engine, wat, host.config());
        CHECK(expect_throw<HostError>([&] { inst.call<int32_t(int32_t)>("twice_plus", 13); }).n == 13);
        CHECK(expect_throw<HostError>([&] { inst.call<int32_t(int32_t, int32_t)>("add", 1, 2); }).n == 13);
        CHECK(expect_throw<HostError>([&] { inst.close(); }).n == 13);
        // From a thread the guest spawned inside the call.
        wt::Instance other(engine, wat, host.config());
        CHECK(expect_throw<HostError>([&] { other.call<int32_t(int32_t)>("spawn_twice", 13); }).n == 13);
    });

    test("a host function's exception in a run is rethrown by wait()", [&] {
        auto command = wt::Module::from_bytes(engine, std::string(R"((module
  (import "env" "twice" (func $twice (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory 1)
  (func (export "_start") (call $exit (call $twice (i32.load (i32.const 0)))))
  (data (i32.const 0) "\05"))
)"));
        wt::RunConfig config;
        std::atomic<int> calls{0};
        config.define("env", "twice", [&](int32_t x) {
            if (calls++ == 1) throw HostError(2);
            return x * 2;
        });
        wt::Exit exit = wt::run(engine, command, config);
        CHECK(exit.kind == wt::Exit::Kind::Code && exit.code == 10);
        CHECK(expect_throw<HostError>([&] { wt::run(engine, command, config); }).n == 2);
    });

    test("an exception from a host function in _initialize comes out of the constructor", [&] {
        auto init_calls = wt::Module::from_bytes(engine, std::string(R"((module
  (import "env" "twice" (func $twice (param i32) (result i32)))
  (memory 1)
  (func (export "_initialize") (drop (call $twice (i32.const 4))))
  (func (export "one") (result i32) (i32.const 1)))
)"));
        wt::RunConfig config;
        config.define("env", "twice", [](int32_t x) -> int32_t { throw HostError(x); });
        CHECK(expect_throw<HostError>([&] { wt::Instance inst(engine, init_calls, config); }).n == 4);
    });

    test("a call past the call timeout ends the instance", [&] {
        WatHost host;
        wt::RunConfig config = host.config();
        config.call_timeout(std::chrono::milliseconds(50));
        wt::Instance inst(engine, wat, config);
        inst.call<int32_t(int32_t)>("spin", 1000);  // within the timeout: the instance goes on
        auto e = expect_throw<wt::InstanceEnded>([&] { inst.call<int32_t(int32_t)>("spin", 2000000000); });
        CHECK(e.exit().kind == wt::Exit::Kind::Timeout && contains(e.what(), "timeout"));
    });

    test("cancel ends calls in flight, blocked in host functions or busy", [&] {
        WatHost host;
        wt::Instance inst(engine, wat, host.config());
        int cancelled = cancelled_calls(
            inst, 4,
            [&](int i) {
                if (i % 2) inst.call<void()>("block");
                else inst.call<int32_t(int32_t)>("spin", 2000000000);
            },
            [&] { return host.blocked == 2; });
        CHECK(cancelled == 4);
        CHECK(inst.close().kind == wt::Exit::Kind::Cancelled);
    });

    test("C plugin: host functions from pthreads the call starts, memory round trip", [&] {
        CHost host;
        wt::Instance inst(engine, cplugin, host.config());
        CHECK(inst.call_mode() == wt::CallMode::Parallel);
        CHECK((inst.call<int32_t(int32_t)>("call_host_from_threads", 8) == 8));
        std::set<int32_t> tids;
        for (int i = 0; i < 8; i++) tids.insert(host.tid_of("thread " + std::to_string(i)));
        CHECK(tids.size() == 8 && *tids.begin() > 0);
        CHECK((inst.call<int64_t(int64_t, int64_t)>("call_host_add", int64_t{1} << 40, 5) == (int64_t{1} << 40) + 5));
        CHECK((inst.call<int64_t(int32_t)>("host_add_loop", 1000) == 1000 * 1001 / 2));
        // malloc in the guest, the host writes, pthreads in the guest sum it.
        const int32_t n = 100000;
        int32_t ptr = inst.call<int32_t(int32_t)>("malloc", n * 4);
        CHECK(ptr > 0);
        std::vector<uint32_t> data(n);
        int64_t want = 0;
        for (int32_t i = 0; i < n; i++) want += data[i] = static_cast<uint32_t>(i) * 2654435761u;
        inst.write(static_cast<uint32_t>(ptr), wt::ByteView(data.data(), data.size() * 4));
        CHECK((inst.call<int64_t(int32_t, int32_t, int32_t)>("parallel_sum", ptr, n, 4) == want));
        std::vector<uint32_t> back(n);
        inst.read(static_cast<uint32_t>(ptr), back.data(), back.size() * 4);
        CHECK(back == data);
        inst.call<void(int32_t)>("free", ptr);
        CHECK(inst.close().kind == wt::Exit::Kind::Cancelled);
    });

    test("C plugin: 8 threads calling at once, every result checked", [&] {
        CHost host;
        wt::Instance inst(engine, cplugin, host.config());
        auto add = inst.func<int32_t(int32_t, int32_t)>("add");
        auto bump = inst.func<int32_t()>("tls_counter_bump");
        auto self_id = inst.func<int32_t()>("self_id");
        const int threads = 8, rounds = 500;
        std::atomic<int> bad{0};
        std::vector<int32_t> ids(threads);
        std::vector<std::thread> pool;
        for (int k = 0; k < threads; k++)
            pool.emplace_back([&, k] {
                try {
                    int32_t me = self_id();
                    for (int32_t i = 0; i < rounds; i++) {
                        int32_t n = k * 1000 + i;
                        if (add(i, k) != i + k) bad++;
                        if (inst.call<int32_t(int32_t)>("stack_sum", n) != stack_sum(n)) bad++;
                        if (bump() != i + 1) bad++;
                        if (self_id() != me) bad++;
                        if (inst.call<int32_t(int32_t)>("alloc_check", 1 + n % 3000) != 1 + n % 3000) bad++;
                        if (inst.call<int32_t(int32_t, int32_t)>("mutex_add", i % 3, 5) != 0) bad++;
                        if (inst.call<int64_t(int64_t, int64_t)>("call_host_add", n, i) != n + i) bad++;
                    }
                    ids[k] = me;
                } catch (const std::exception &e) {
                    std::cerr << "thread " << k << ": " << e.what() << "\n";
                    bad++;
                }
            });
        for (auto &t : pool) t.join();
        CHECK(bad == 0);
        int32_t total = 0;
        for (int kind = 0; kind < 3; kind++) total += inst.call<int32_t(int32_t)>("mutex_counter", kind);
        CHECK(total == threads * rounds * 5);
        CHECK(host.adds == threads * rounds);
    });

    test("C plugin: background threads go on between calls; close stops them", [&] {
        CHost host;
        wt::Instance inst(engine, cplugin, host.config());
        CHECK((inst.call<int32_t(int32_t)>("start_workers", 3) == 0));
        int64_t first = inst.call<int64_t()>("worker_count");
        wait_for([&] { return inst.call<int64_t()>("worker_count") > first + 3; });
        wt::Exit exit = inst.close();
        CHECK(exit.kind == wt::Exit::Kind::Cancelled);
        auto e = expect_throw<wt::InstanceEnded>([&] { inst.call<int64_t()>("worker_count"); });
        CHECK(e.exit().kind == wt::Exit::Kind::Cancelled);
    });

    test("C plugin: a trap in a pthread the call started ends the instance", [&] {
        CHost host;
        wt::Instance inst(engine, cplugin, host.config());
        auto e = expect_throw<wt::InstanceEnded>([&] { inst.call<int32_t(int32_t)>("crash", 2); });
        CHECK(e.exit().kind == wt::Exit::Kind::Trap && e.exit().tid > 0);
        CHECK(expect_throw<wt::InstanceEnded>([&] { inst.call<int32_t(int32_t)>("crash", 0); }).exit().tid ==
              e.exit().tid);
    });

    test("C plugin: cancel with 8 calls blocked in a host function", [&] {
        CHost host;
        wt::Instance inst(engine, cplugin, host.config());
        int cancelled = cancelled_calls(
            inst, 8, [&](int) { inst.call<int32_t()>("block"); }, [&] { return host.blocked == 8; });
        CHECK(cancelled == 8);
    });

    test("C plugin: a throwing host function", [&] {
        CHost host;
        wt::Instance inst(engine, cplugin, host.config());
        CHECK(expect_throw<HostError>([&] { inst.call<int64_t(int64_t, int64_t)>("call_host_add", -666, 1); }).n ==
              666);
        CHECK(expect_throw<HostError>([&] { inst.close(); }).n == 666);
    });

    return summary();
}
