// Tests of the C++ wrapper (CTest cpp-api): each run keeps its own callbacks, exceptions
// from callbacks cancel the run and come back from wait(), the module constructors, and
// the settings the wrapper adds over the C API, each by what a guest then sees or does.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "cpp_guests.hpp"
#include "cpp_test.hpp"
#include "wasithreads.hpp"

namespace wt = wasithreads;
using Clock = std::chrono::steady_clock;

static std::string temp_path(const char *name) { return std::string(TEST_TMP_DIR) + "/" + name; }

static std::string read_file(const std::string &path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

static void write_file(const std::string &path, const std::string &text) {
    std::ofstream(path, std::ios::binary) << text;
}

/// Output of one stream, collected.
struct Captured {
    std::mutex lock;
    std::string text;
    wt::RunConfig::OutputFn fn() {
        return [this](int32_t, std::string_view d) {
            std::lock_guard<std::mutex> g(lock);
            text += d;
        };
    }
    std::string get() {
        std::lock_guard<std::mutex> g(lock);
        return text;
    }
};

struct CallbackError {
    int n;
};

int main() {
    wt::Engine engine;
    auto ticks = wt::Module::from_bytes(engine, guests::ticks(50));
    auto spin = wt::Module::from_bytes(engine, guests::spin());
    auto write_then_spin = wt::Module::from_bytes(engine, guests::write_then_spin());
    auto spawn_one = wt::Module::from_bytes(engine, guests::spawn_one());
    auto cat = wt::Module::from_bytes(engine, guests::cat());

    test("each run keeps the callbacks its config had when it started", [&] {
        std::atomic<int> a{0}, b{0};
        wt::RunConfig config;
        config.on_output(wt::Stdout, [&](int32_t, std::string_view) { a++; });
        wt::Run first(engine, ticks, config);
        config.on_output(wt::Stdout, [&](int32_t, std::string_view) { b++; });
        wt::Run second(engine, ticks, config);
        first.wait();
        second.wait();
        CHECK(a == 50 && b == 50);
    });

    test("a run goes on calling its callbacks after its config is gone", [&] {
        std::atomic<int> n{0};
        std::optional<wt::Run> run;
        {
            wt::RunConfig config;
            config.on_output(wt::Stdout, [&](int32_t, std::string_view) { n++; });
            run.emplace(engine, ticks, config);
        }
        run->wait();
        CHECK(n == 50);
    });

    test("an exception from an output callback cancels the run and comes out of wait()", [&] {
        wt::RunConfig config;
        config.timeout(std::chrono::seconds(30)).output_null(wt::Stderr);
        config.on_output(wt::Stdout, [](int32_t, std::string_view) { throw CallbackError{7}; });
        auto t0 = Clock::now();
        wt::Run run(engine, write_then_spin, config);
        CHECK(expect_throw<CallbackError>([&] { run.wait(); }).n == 7);
        CHECK(Clock::now() - t0 < std::chrono::seconds(10));  // cancelled, not timed out
        CHECK(expect_throw<CallbackError>([&] { run.try_wait(); }).n == 7);  // every time
    });

    test("wasithreads::run rethrows too", [&] {
        wt::RunConfig config;
        config.timeout(std::chrono::seconds(30)).on_output(wt::Stderr, [](int32_t, std::string_view) {
            throw std::invalid_argument("from stderr");
        });
        config.output_null(wt::Stdout);
        auto e = expect_throw<std::invalid_argument>([&] { wt::run(engine, write_then_spin, config); });
        CHECK(std::string(e.what()) == "from stderr");
    });

    test("an exception from the main thread's start callback cancels the run", [&] {
        wt::RunConfig config;
        config.timeout(std::chrono::seconds(30)).on_thread_start([](int32_t tid) {
            if (tid == 0) throw CallbackError{1};
        });
        CHECK(expect_throw<CallbackError>([&] { wt::run(engine, spin, config); }).n == 1);
    });

    test("an exception from a thread-exit callback of a run that returned", [&] {
        wt::RunConfig config;
        config.output_null(wt::Stdout).on_thread_exit([](int32_t, const wt::ThreadExit &how) {
            if (how.kind == wt::ThreadExit::Kind::Returned) throw CallbackError{2};
        });
        CHECK(expect_throw<CallbackError>([&] { wt::run(engine, ticks, config); }).n == 2);
    });

    test("thread start and exit callbacks, once per thread", [&] {
        std::mutex lock;
        std::multiset<int32_t> started, ended;
        wt::RunConfig config;
        config.output_null(wt::Stdout)
            .on_thread_start([&](int32_t tid) {
                std::lock_guard<std::mutex> g(lock);
                started.insert(tid);
            })
            .on_thread_exit([&](int32_t tid, const wt::ThreadExit &how) {
                std::lock_guard<std::mutex> g(lock);
                if (how.kind == wt::ThreadExit::Kind::Returned) ended.insert(tid);
            });
        wt::Exit exit = wt::run(engine, spawn_one, config);
        CHECK(exit.kind == wt::Exit::Kind::Code && exit.code == 0);
        CHECK((started == std::multiset<int32_t>{0, 1}) && (ended == std::multiset<int32_t>{0, 1}));
    });

    test("a refused thread-spawn is reported to on_diagnostic", [&] {
        std::mutex lock;
        std::string said;
        wt::RunConfig config;
        config.max_threads(0).on_diagnostic([&](int32_t tid, std::string_view message) {
            std::lock_guard<std::mutex> g(lock);
            said += std::to_string(tid) + ": " + std::string(message) + "\n";
        });
        wt::Exit exit = wt::run(engine, spawn_one, config);
        CHECK(exit.kind == wt::Exit::Kind::Code && exit.code == 5);
        std::lock_guard<std::mutex> g(lock);
        CHECK(said.rfind("0: ", 0) == 0 && said.find("thread") != std::string::npos);
    });

    test("cancel and try_wait", [&] {
        wt::RunConfig config;
        wt::Run run(engine, spin, config);
        CHECK(!run.try_wait());
        run.cancel();
        std::optional<wt::Exit> exit;
        for (int i = 0; i < 5000 && !exit; i++) {
            exit = run.try_wait();
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        CHECK(exit && exit->kind == wt::Exit::Kind::Cancelled && exit->tid == -1);
    });

    test("assigning to a Run cancels and joins the run it had", [&] {
        auto many = wt::Module::from_bytes(engine, guests::ticks(10000000));
        std::atomic<int> n{0};
        wt::RunConfig config;
        config.on_output(wt::Stdout, [&](int32_t, std::string_view) { n++; });
        wt::Run run(engine, many, config);
        while (n == 0) std::this_thread::yield();
        run = wt::Run(engine, spin, config);
        int after = n;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        CHECK(after < 10000000 && n == after);  // cancelled, and no call after its Run went
        run.cancel();
        CHECK(run.wait().kind == wt::Exit::Kind::Cancelled);
    });

    test("Module::from_file reads a file; from_bytes never does", [&] {
        std::string path = temp_path("cpp-api-ticks.wat");
        write_file(path, guests::ticks(3));
        auto module = wt::Module::from_file(engine, path);
        Captured out;
        wt::RunConfig config;
        config.on_output(wt::Stdout, out.fn());
        wt::run(engine, module, config);
        CHECK(out.get() == "tick\ntick\ntick\n");
        auto bad = expect_throw<wt::Error>([&] { wt::Module::from_bytes(engine, path); });
        CHECK(bad.kind() == wt::ErrorKind::BadModule);
        auto e = expect_throw<wt::Error>([&] { wt::Module::from_file(engine, temp_path("missing.wasm")); });
        CHECK(std::string(e.what()).find("missing.wasm") != std::string::npos);
        CHECK(e.kind() == wt::ErrorKind::Io && e.os_errno() == ENOENT);
    });

    test("validate says why a module would not load", [&] {
        wt::Module::validate(engine, guests::ticks(1));
        auto e = expect_throw<wt::Error>([&] {
            wt::Module::validate(engine, R"((module (import "wasi" "thread-spawn" (func (param i32) (result i32)))
                (func (export "_start"))))");
        });
        CHECK(std::string(e.what()).find("shared memory") != std::string::npos);
        CHECK(e.kind() == wt::ErrorKind::Link && e.os_errno() == 0);
    });

    test("serialize and deserialize", [&] {
        std::vector<uint8_t> bytes = ticks.serialize();
        CHECK(bytes.size() > 100);
        auto again = wt::Module::deserialize(engine, bytes);
        std::atomic<int> n{0};
        wt::RunConfig config;
        config.on_output(wt::Stdout, [&](int32_t, std::string_view) { n++; });
        wt::run(engine, again, config);
        CHECK(n == 50);
        auto e = expect_throw<wt::Error>([&] { wt::Module::deserialize(engine, std::string("not serialized")); });
        CHECK(e.kind() == wt::ErrorKind::BadModule);
    });

    test("engine settings", [&] {
        auto e = expect_throw<wt::Error>([] { wt::Engine(wt::EngineConfig().max_wasm_stack(0)); });
        CHECK(std::string(e.what()).find("stack") != std::string::npos);
        CHECK(e.kind() == wt::ErrorKind::Misuse);
        expect_throw<wt::Error>([] { wt::Engine(wt::EngineConfig().opt_level(9)); });
        wt::Engine custom(wt::EngineConfig()
                              .opt_level(0)
                              .cache(false)
                              .max_wasm_stack(512 * 1024)
                              .interrupt_tick(std::chrono::microseconds(200))
                              .epoch_interruption());
        auto module = wt::Module::from_bytes(custom, guests::spin());
        wt::RunConfig config;
        config.timeout(std::chrono::milliseconds(50)).teardown_grace(std::chrono::milliseconds(2000));
        CHECK(wt::run(custom, module, config).kind == wt::Exit::Kind::Timeout);
        // A module belongs to the engine that loaded it.
        expect_throw<wt::Error>([&] { wt::run(engine, module, config); });
        // Load limits: over one, a Limit error before compiling; WT_NO_LOAD_LIMIT lifts it.
        wt::Engine small(wt::EngineConfig().max_module_bytes(8).max_functions(WT_NO_LOAD_LIMIT));
        auto limit = expect_throw<wt::Error>([&] { wt::Module::from_bytes(small, guests::spin()); });
        CHECK(limit.kind() == wt::ErrorKind::Limit);
        CHECK(std::string(limit.what()).find("more than the 8 bytes") != std::string::npos);
        wt::Engine few(wt::EngineConfig().max_module_bytes(WT_NO_LOAD_LIMIT).max_functions(0));
        limit = expect_throw<wt::Error>([&] { wt::Module::from_bytes(few, guests::spin()); });
        CHECK(std::string(limit.what()).find("functions, more than the 0") != std::string::npos);
    });

    test("stdin: bytes, file, descriptor, null", [&] {
        auto run_cat = [&](wt::RunConfig &config) {
            Captured out;
            config.on_output(wt::Stdout, out.fn());
            wt::run(engine, cat, config);
            return out.get();
        };
        wt::RunConfig config;
        config.stdin_bytes(std::string("from bytes"));
        CHECK(run_cat(config) == "from bytes");
        CHECK(run_cat(config) == "from bytes");  // each run reads them from the start
        std::string path = temp_path("cpp-api-stdin.txt");
        write_file(path, "from a file");
        config.stdin_file(path);
        CHECK(run_cat(config) == "from a file");
        int fds[2];
        CHECK(pipe(fds) == 0);
        CHECK(write(fds[1], "from a pipe", 11) == 11);
        close(fds[1]);
        config.stdin_fd(fds[0]);
        close(fds[0]);  // the config has its own copy
        CHECK(run_cat(config) == "from a pipe");
        config.stdin_null();
        CHECK(run_cat(config).empty());
        config.stdin_file(temp_path("missing.txt"));  // opened by each run: that one cannot start
        expect_throw<wt::Error>([&] { wt::run(engine, cat, config); });
        config.stdin_inherit();
    });

    test("sockets: a listener the host owns and one the config binds", [&] {
        auto fd3 = wt::Module::from_bytes(engine, std::string(R"((module
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $stat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (call $exit (if (result i32) (call $stat (i32.const 3) (i32.const 0))
                  (then (i32.const 255)) (else (i32.load8_u (i32.const 0))))))))"));
        wt::RunConfig config;
        CHECK(config.tcp_listener("127.0.0.1:0") != 0);
        wt::Exit exit = wt::run(engine, fd3, config);
        CHECK(exit.kind == wt::Exit::Kind::Code && exit.code == 6);  // socket_stream
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        CHECK(bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
        expect_throw<wt::Error>([&] { wt::RunConfig().socket(fd); });  // not listening yet
        CHECK(listen(fd, 4) == 0);
        wt::RunConfig own;
        own.socket(fd);
        close(fd);  // the config has its own copy
        exit = wt::run(engine, fd3, own);
        CHECK(exit.kind == wt::Exit::Kind::Code && exit.code == 6);
    });

    test("output: file, descriptor, null, inherit", [&] {
        std::string path = temp_path("cpp-api-out.txt");
        std::atomic<int> called{0};
        wt::RunConfig config;
        config.on_output(wt::Stdout, [&](int32_t, std::string_view) { called++; }).output_file(wt::Stdout, path);
        wt::run(engine, ticks, config);
        CHECK(called == 0);  // output_file replaced the callback
        CHECK(read_file(path).size() == 50 * 5);
        int fds[2];
        CHECK(pipe(fds) == 0);
        config.output_fd(wt::Stdout, fds[1]).timeout(std::chrono::seconds(30)).output_null(wt::Stderr);
        close(fds[1]);
        char buf[16] = {0};
        {
            wt::Run run(engine, write_then_spin, config);
            config.output_inherit(wt::Stdout).output_inherit(wt::Stderr);  // the run keeps its copy
            CHECK(read(fds[0], buf, sizeof buf) == 5 && std::string(buf) == "tick\n");
            run.cancel();
        }
        CHECK(read(fds[0], buf, sizeof buf) == 0);  // no copy of the descriptor is left
        close(fds[0]);
        CHECK(expect_throw<wt::Error>([&] { config.output_null(3); }).kind() == wt::ErrorKind::Misuse);
        CHECK(expect_throw<wt::Error>([&] { config.on_output(wt::Stdout, nullptr); }).kind() == wt::ErrorKind::Misuse);
    });

    test("core dump on a trap", [&] {
        auto trap = wt::Module::from_bytes(engine, guests::trap());
        std::string path = temp_path("cpp-api-core.wasm");
        std::remove(path.c_str());
        wt::RunConfig config;
        config.coredump(path);
        wt::Exit exit = wt::run(engine, trap, config);
        CHECK(exit.kind == wt::Exit::Kind::Trap && exit.message.find("unreachable") != std::string::npos);
        CHECK(read_file(path).compare(0, 4, std::string("\0asm", 4)) == 0);
        std::remove(path.c_str());
        config.no_coredump();
        wt::run(engine, trap, config);
        CHECK(read_file(path).empty());
    });

    test("limits, environment and directories reach the run", [&] {
        wt::RunConfig config;
        config.arg("guest").env("KEY", "value").inherit_env().dir(TEST_TMP_DIR, "/tmp").dir(TEST_TMP_DIR, "/ro", true);
        config.max_memory(64 * 1024).max_table_elements(1000).max_fds(64).output_null(wt::Stdout);
        config.max_memories(4).max_instance_bytes(1 << 20).max_write_bytes(1 << 20).max_files_created(10);
        CHECK(wt::run(engine, ticks, config).kind == wt::Exit::Kind::Code);
        config.max_fds(0);  // no room for stdio: the run cannot start
        CHECK(expect_throw<wt::Error>([&] { wt::run(engine, ticks, config); }).kind() == wt::ErrorKind::Limit);
        CHECK(expect_throw<wt::Error>([&] { config.env("A=B", "c"); }).kind() == wt::ErrorKind::Misuse);
        config.max_fds(64);
        auto e = expect_throw<wt::Error>([&] { config.dir("/nonexistent-dir", "/x"); wt::run(engine, ticks, config); });
        CHECK(e.kind() == wt::ErrorKind::Io && e.os_errno() == ENOENT);
    });

    test("version", [] { CHECK(wt::version() == wt_version() && !wt::version().empty()); });

    return summary();
}
