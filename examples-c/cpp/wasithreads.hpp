// wasithreads.hpp: a header-only C++17 RAII wrapper over the wasithreads C API.
//
//   wasithreads::Engine engine;
//   auto module = wasithreads::Module::from_file(engine, "guest.wasm");
//   wasithreads::RunConfig config;
//   config.arg("guest").env("KEY", "value")
//         .on_output(wasithreads::Stdout, [](int32_t tid, std::string_view text) { /* ... */ });
//   wasithreads::Exit exit = wasithreads::run(engine, module, config);
//
// Every failing C call throws wasithreads::Error, with the library's kind of the error
// (Error::kind(), an ErrorKind) and OS error (Error::os_errno()). Objects own their C handles, free them
// on destruction, and are movable but not copyable.
//
// Callbacks are std::function objects. Each Run takes its own copy of its config's
// callbacks when it starts, as the C library copies the rest of the config, so changing
// or destroying the RunConfig never affects a run already going. A RunConfig is
// thread-safe: its setters and the runs started from it may be called from any threads.
// An exception thrown by a callback cannot unwind through the C library: the wrapper
// catches it, cancels the run, and rethrows the first one from Run::wait, Run::try_wait
// and wasithreads::run.
//
// Every function of wasithreads.h is used here except those in this table (the CTest
// test cpp-api-coverage compares the header with this file and this table):
//
// | C function | why the wrapper does not call it                                          |
// |------------|----------------------------------------------------------------------------|
// | `wt_run`   | wasithreads::run is Run(...).wait() (wt_run_start + wt_run_wait): a run    |
// |            | must be started with the config locked, and wt_run would hold that lock   |
// |            | for the whole run, blocking every other start from the same config.       |
// | `wt_run_config_define_func` | plugins: C++ wrappers for host functions and instances come with issue 22 |
// | `wt_run_config_set_call_timeout_ms` | plugins: C++ wrappers for host functions and instances come with issue 22 |
// | `wt_caller_tid` | plugins: C++ wrappers for host functions and instances come with issue 22 |
// | `wt_caller_memory_data` | plugins: C++ wrappers for host functions and instances come with issue 22 |
// | `wt_caller_memory_size` | plugins: C++ wrappers for host functions and instances come with issue 22 |
// | `wt_caller_is_ending` | plugins: C++ wrappers for host functions and instances come with issue 22 |
// | `wt_caller_end_fd` | plugins: C++ wrappers for host functions and instances come with issue 22 |
// | `wt_error_new` | plugins: C++ wrappers for host functions and instances come with issue 22 |
// | `wt_instance_new` | plugins: C++ wrappers for host functions and instances come with issue 22 |
// | `wt_instance_call` | plugins: C++ wrappers for host functions and instances come with issue 22 |
// | `wt_instance_call_mode` | plugins: C++ wrappers for host functions and instances come with issue 22 |
// | `wt_instance_export_count` | plugins: C++ wrappers for host functions and instances come with issue 22 |
// | `wt_instance_export_name` | plugins: C++ wrappers for host functions and instances come with issue 22 |
// | `wt_instance_export_type` | plugins: C++ wrappers for host functions and instances come with issue 22 |
// | `wt_instance_memory_data` | plugins: C++ wrappers for host functions and instances come with issue 22 |
// | `wt_instance_memory_size` | plugins: C++ wrappers for host functions and instances come with issue 22 |
// | `wt_instance_memory_read` | plugins: C++ wrappers for host functions and instances come with issue 22 |
// | `wt_instance_memory_write` | plugins: C++ wrappers for host functions and instances come with issue 22 |
// | `wt_instance_cancel` | plugins: C++ wrappers for host functions and instances come with issue 22 |
// | `wt_instance_close` | plugins: C++ wrappers for host functions and instances come with issue 22 |
// | `wt_instance_free` | plugins: C++ wrappers for host functions and instances come with issue 22 |
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "wasithreads.h"

#if defined(__SANITIZE_THREAD__)
#define WASITHREADS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WASITHREADS_TSAN 1
#endif
#endif
#ifdef WASITHREADS_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace wasithreads {

/// What sort of failure an Error is: the C library's `wt_error_kind_t`, with the same
/// values. `Other` is an internal error of the library (or a failure the wrapper found
/// itself that fits no other kind).
enum class ErrorKind : int {
    Other = WT_ERROR_OTHER,
    BadModule = WT_ERROR_BAD_MODULE,  ///< not a module wasithreads can compile
    Link = WT_ERROR_LINK,             ///< a valid module it cannot run as it is (an unknown import, no `_start`)
    Limit = WT_ERROR_LIMIT,           ///< a limit too low for the module or stdio, or the OS refused a thread or memory
    Misuse = WT_ERROR_MISUSE,         ///< a bad argument or setting
    Io = WT_ERROR_IO,                 ///< a host file, directory or descriptor failed; see os_errno()
    Ended = WT_ERROR_ENDED,           ///< an instance ended (a trap, proc_exit, timeout, cancel or close)
};

/// A failed call, with the library's message, kind and OS error.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
    Error(const std::string &message, ErrorKind kind, int os_errno)
        : std::runtime_error(message), kind_(kind), os_errno_(os_errno) {}

    /// What sort of failure this is (`wt_error_kind`).
    ErrorKind kind() const noexcept { return kind_; }
    /// The OS error number behind it (`wt_error_os_errno`, e.g. ENOENT), 0 if none.
    int os_errno() const noexcept { return os_errno_; }

private:
    ErrorKind kind_ = ErrorKind::Other;
    int os_errno_ = 0;
};

/// The guest's output streams, as the `stream` argument of the RunConfig output setters.
enum Stream : int32_t { Stdout = 1, Stderr = 2 };

namespace detail {
/// Throws if `err` is an error (and frees it).
inline void check(wt_error_t *err) {
    if (err) {
        std::string msg = wt_error_message(err);
        auto kind = static_cast<ErrorKind>(wt_error_kind(err));
        int os_errno = wt_error_os_errno(err);
        wt_error_free(err);
        throw Error(msg, kind, os_errno);
    }
}
// The library orders a run's start before its callbacks, and their returns before
// wt_run_free returns, with synchronisation ThreadSanitizer cannot see (the library is not
// instrumented). Under ThreadSanitizer these state that order: released when a run's
// state is made and after each callback, acquired before each callback and when the state
// goes. Elsewhere they are nothing.
#ifdef WASITHREADS_TSAN
inline void tsan_release(void *addr) noexcept { __tsan_release(addr); }
inline void tsan_acquire(void *addr) noexcept { __tsan_acquire(addr); }
#else
inline void tsan_release(void *) noexcept {}
inline void tsan_acquire(void *) noexcept {}
#endif

template <typename T, void (*Free)(T *)>
struct Deleter {
    void operator()(T *p) const noexcept { Free(p); }
};
template <typename T, void (*Free)(T *)>
using Handle = std::unique_ptr<T, Deleter<T, Free>>;

template <typename T, void (*Free)(T *)>
Handle<T, Free> make_handle(T *p) {
    if (!p) throw Error("out of memory");
    return Handle<T, Free>(p);
}
}  // namespace detail

/// Borrowed bytes: a module, a serialized module or stdin contents. Converts from
/// std::string_view, std::string, std::vector<uint8_t> and (pointer, length).
struct ByteView {
    const uint8_t *data = nullptr;
    size_t size = 0;

    ByteView(const void *p, size_t n) noexcept : data(static_cast<const uint8_t *>(p)), size(n) {}
    ByteView(std::string_view s) noexcept : ByteView(s.data(), s.size()) {}
    ByteView(const std::string &s) noexcept : ByteView(s.data(), s.size()) {}
    ByteView(const char *s) noexcept : ByteView(s, std::strlen(s)) {}
    ByteView(const std::vector<uint8_t> &v) noexcept : ByteView(v.data(), v.size()) {}
};

/// How a run ended.
struct Exit {
    enum class Kind {
        Code = WT_EXIT_CODE,
        Trap = WT_EXIT_TRAP,
        Timeout = WT_EXIT_TIMEOUT,
        Cancelled = WT_EXIT_CANCELLED,
    };
    Kind kind;
    int32_t code;         ///< the exit code, for Kind::Code
    int32_t tid;          ///< the thread that ended the run; -1 for timeout and cancel
    std::string message;  ///< for Kind::Trap: the trap and the wasm backtrace

    /// Takes over a C exit record, releasing its message.
    static Exit take(wt_exit_t &raw) {
        Exit e{static_cast<Kind>(raw.kind), raw.code, raw.tid, raw.message ? raw.message : ""};
        wt_exit_clear(&raw);
        return e;
    }
};

/// How one guest thread ended, as passed to RunConfig::on_thread_exit. The strings are
/// valid only during the callback.
struct ThreadExit {
    enum class Kind {
        Returned = WT_THREAD_RETURNED,
        Exited = WT_THREAD_EXITED,
        Trapped = WT_THREAD_TRAPPED,
        Terminated = WT_THREAD_TERMINATED,
    };
    Kind kind;
    int32_t code;                ///< the proc_exit code, for Kind::Exited
    std::string_view message;    ///< for Kind::Trapped: the trap and its backtrace
    std::string_view backtrace;  ///< for Kind::Terminated: where the thread was stopped (may be empty)

    static ThreadExit from(const wt_thread_exit_t &how) noexcept {
        return {static_cast<Kind>(how.kind), how.code, how.message ? how.message : "",
                how.backtrace ? how.backtrace : ""};
    }
};

/// Settings for an Engine. Setters return *this for chaining.
class EngineConfig {
public:
    EngineConfig() : handle_(detail::make_handle<wt_engine_config_t, wt_engine_config_free>(wt_engine_config_new())) {}

    /// Cranelift's optimisation level: 0 none, 1 speed (default), 2 speed and size.
    EngineConfig &opt_level(uint8_t level) { wt_engine_config_set_opt_level(get(), level); return *this; }
    /// Wasmtime's own on-disk compilation cache (default off).
    EngineConfig &cache(bool enabled = true) { wt_engine_config_set_cache(get(), enabled); return *this; }
    /// The largest wasm stack of one guest thread (default 1 MiB, at most 256 MiB).
    EngineConfig &max_wasm_stack(size_t bytes) { wt_engine_config_set_max_wasm_stack(get(), bytes); return *this; }
    /// How often an ending run wakes its threads that have not stopped yet.
    EngineConfig &interrupt_tick(std::chrono::microseconds tick) {
        wt_engine_config_set_interrupt_tick_us(get(), static_cast<uint64_t>(tick.count()));
        return *this;
    }
    /// Stops busy guest code with epoch checks instead of the interrupt page (for valgrind).
    EngineConfig &epoch_interruption(bool enabled = true) {
        wt_engine_config_set_epoch_interruption(get(), enabled);
        return *this;
    }
    /// The largest module (binary bytes) the engine loads, or WT_NO_LOAD_LIMIT (default).
    EngineConfig &max_module_bytes(uint64_t bytes) { wt_engine_config_set_max_module_bytes(get(), bytes); return *this; }
    /// The most functions (imported and defined) of a module it loads, or WT_NO_LOAD_LIMIT.
    EngineConfig &max_functions(uint64_t functions) {
        wt_engine_config_set_max_functions(get(), functions);
        return *this;
    }

    wt_engine_config_t *get() const noexcept { return handle_.get(); }

private:
    detail::Handle<wt_engine_config_t, wt_engine_config_free> handle_;
};

/// A compilation and execution environment; thread-safe.
class Engine {
public:
    /// An engine with the default settings.
    Engine() { init(nullptr); }
    /// An engine with `config`'s settings (the config may be changed or dropped afterwards).
    explicit Engine(const EngineConfig &config) { init(config.get()); }
    /// An engine with Cranelift optimisation level 0, 1 or 2.
    explicit Engine(uint8_t opt_level) { init(EngineConfig().opt_level(opt_level).get()); }

    wt_engine_t *get() const noexcept { return handle_.get(); }

private:
    void init(const wt_engine_config_t *config) {
        wt_engine_t *e = nullptr;
        detail::check(wt_engine_new(config, &e));
        handle_.reset(e);
    }
    detail::Handle<wt_engine_t, wt_engine_free> handle_;
};

/// A compiled module; thread-safe.
class Module {
public:
    /// Compiles `.wasm` bytes or WAT text.
    static Module from_bytes(const Engine &engine, ByteView bytes) {
        wt_module_t *m = nullptr;
        detail::check(wt_module_load(engine.get(), bytes.data, bytes.size, &m));
        return Module(m);
    }
    /// Loads a `.wasm` or `.wat` file.
    static Module from_file(const Engine &engine, const std::string &path) {
        wt_module_t *m = nullptr;
        detail::check(wt_module_load_file(engine.get(), path.c_str(), &m));
        return Module(m);
    }
    /// Loads bytes made by serialize() with the same library version and engine settings,
    /// without compiling. The bytes are machine code that is not checked for integrity:
    /// pass only bytes this library made and nobody else could change.
    static Module deserialize(const Engine &engine, ByteView serialized) {
        wt_module_t *m = nullptr;
        detail::check(wt_module_deserialize(engine.get(), serialized.data, serialized.size, &m));
        return Module(m);
    }
    /// Throws Error saying why `bytes` would not load (it compiles them to be sure).
    static void validate(const Engine &engine, ByteView bytes) {
        detail::check(wt_module_validate(engine.get(), bytes.data, bytes.size));
    }

    /// Compiles `.wasm` bytes or WAT text; never reads a file, whatever the string says.
    [[deprecated("parses its argument as module bytes or WAT, never as a path: use Module::from_bytes or "
                 "Module::from_file")]] Module(const Engine &engine, std::string_view bytes)
        : Module(from_bytes(engine, bytes)) {}

    /// The compiled module (machine code included), for deserialize() later.
    std::vector<uint8_t> serialize() const {
        wt_bytes_t raw{nullptr, 0};
        detail::check(wt_module_serialize(get(), &raw));
        std::vector<uint8_t> out(raw.data, raw.data + raw.len);
        wt_bytes_free(&raw);
        return out;
    }

    const wt_module_t *get() const noexcept { return handle_.get(); }

private:
    explicit Module(wt_module_t *m) : handle_(m) {}
    detail::Handle<wt_module_t, wt_module_free> handle_;
};

class RunConfig;
class Run;

namespace detail {
/// A config's callbacks: the RunConfig's current ones, or one run's copy of them.
struct Callbacks {
    std::function<void(int32_t tid, std::string_view data)> out, err;
    std::function<void(int32_t tid, const ThreadExit &how)> thread_exit;
    std::function<void(int32_t tid)> thread_start;
    std::function<void(int32_t tid, std::string_view message)> diagnostic;
};

/// What the C callbacks of one run get as user_data: the run's own copy of the callbacks,
/// and the first exception one of them threw.
class RunState {
public:
    explicit RunState(Callbacks callbacks) : callbacks_(std::move(callbacks)) { tsan_release(this); }
    ~RunState() { tsan_acquire(this); }
    RunState(const RunState &) = delete;
    RunState &operator=(const RunState &) = delete;

    /// Points the C config's callbacks at this state. `modes` says which output streams
    /// are in callback mode (the others are left alone).
    void install(wt_run_config_t *config, const Callbacks &modes) noexcept {
        // Cannot fail: the streams and the callbacks are valid.
        if (modes.out) wt_error_free(wt_run_config_set_output_callback(config, Stdout, &out_cb, this));
        if (modes.err) wt_error_free(wt_run_config_set_output_callback(config, Stderr, &err_cb, this));
        wt_run_config_set_thread_exit_callback(config, callbacks_.thread_exit ? &exit_cb : nullptr, this);
        wt_run_config_set_thread_start_callback(config, callbacks_.thread_start ? &start_cb : nullptr, this);
        wt_run_config_set_diagnostic_callback(config, callbacks_.diagnostic ? &diagnostic_cb : nullptr, this);
    }
    /// The C callback for output stream 1 or 2.
    static wt_output_callback_t output_callback(int32_t stream) noexcept {
        return stream == Stdout ? &out_cb : &err_cb;
    }
    /// The run has started: an exception that came before this cancels it now.
    void started(const wt_run_t *run) noexcept {
        std::lock_guard<std::mutex> g(lock_);
        run_ = run;
        if (error_) wt_run_cancel(run_);
    }
    /// Rethrows the first exception a callback threw, if any.
    void rethrow() const {
        std::exception_ptr e;
        {
            std::lock_guard<std::mutex> g(lock_);
            e = error_;
        }
        if (e) std::rethrow_exception(e);
    }

private:
    // Exceptions must not unwind into the C library: the first is kept and ends the run.
    template <typename F>
    static void guard(void *self, F &&call) noexcept {
        auto *state = static_cast<RunState *>(self);
        tsan_acquire(state);
        try {
            call(state->callbacks_);
        } catch (...) {
            std::lock_guard<std::mutex> g(state->lock_);
            if (!state->error_) state->error_ = std::current_exception();
            if (state->run_) wt_run_cancel(state->run_);
        }
        tsan_release(state);
    }
    // The output callbacks of the idle state (RunConfig::State::idle) have nothing to call.
    static void out_cb(void *self, int32_t tid, const uint8_t *d, size_t n) noexcept {
        guard(self, [&](const Callbacks &c) {
            if (c.out) c.out(tid, std::string_view(reinterpret_cast<const char *>(d), n));
        });
    }
    static void err_cb(void *self, int32_t tid, const uint8_t *d, size_t n) noexcept {
        guard(self, [&](const Callbacks &c) {
            if (c.err) c.err(tid, std::string_view(reinterpret_cast<const char *>(d), n));
        });
    }
    static void exit_cb(void *self, int32_t tid, const wt_thread_exit_t *how) noexcept {
        guard(self, [&](const Callbacks &c) { c.thread_exit(tid, ThreadExit::from(*how)); });
    }
    static void start_cb(void *self, int32_t tid) noexcept {
        guard(self, [&](const Callbacks &c) { c.thread_start(tid); });
    }
    static void diagnostic_cb(void *self, int32_t tid, const char *message) noexcept {
        guard(self, [&](const Callbacks &c) { c.diagnostic(tid, message); });
    }

    const Callbacks callbacks_;
    mutable std::mutex lock_;
    std::exception_ptr error_;
    const wt_run_t *run_ = nullptr;
};
}  // namespace detail

/// Settings for runs. Setters return *this for chaining. Thread-safe.
class RunConfig {
public:
    using OutputFn = std::function<void(int32_t tid, std::string_view data)>;
    using ThreadExitFn = std::function<void(int32_t tid, const ThreadExit &how)>;
    using ThreadStartFn = std::function<void(int32_t tid)>;
    using DiagnosticFn = std::function<void(int32_t tid, std::string_view message)>;

    RunConfig() : state_(std::make_unique<State>()) {}

    // Guest argv, environment, directories.
    /// Appends one argument to the guest's argv (argv[0] first; the default argv is {"wasm"}).
    RunConfig &arg(const std::string &a) {
        return with([&](auto *c) { detail::check(wt_run_config_push_arg(c, a.c_str())); });
    }
    /// Sets an environment variable for the guest.
    RunConfig &env(const std::string &key, const std::string &value) {
        return with([&](auto *c) { detail::check(wt_run_config_push_env(c, key.c_str(), value.c_str())); });
    }
    /// Passes the host process's environment to the guest (before the env() variables).
    RunConfig &inherit_env(bool inherit = true) {
        return with([&](auto *c) { wt_run_config_inherit_env(c, inherit); });
    }
    /// Gives the guest the host directory `host` as `guest`, read-write or read-only.
    RunConfig &dir(const std::string &host, const std::string &guest, bool read_only = false) {
        return with([&](auto *c) {
            detail::check(read_only ? wt_run_config_preopen_dir_readonly(c, host.c_str(), guest.c_str())
                                    : wt_run_config_preopen_dir(c, host.c_str(), guest.c_str()));
        });
    }

    /// Gives the guest the listening socket `fd` (a bound, listening TCP or Unix stream
    /// socket, duplicated; made non-blocking). Sockets are the guest's fds 3, 4, ... in
    /// the order given, before the directories.
    RunConfig &socket(int fd) { return with([&](auto *c) { detail::check(wt_run_config_preopen_socket(c, fd)); }); }
    /// Listens on the TCP `address` ("127.0.0.1:8080"; port 0 picks one) for the guest,
    /// as socket() does; returns the port bound.
    uint16_t tcp_listener(const std::string &address) {
        uint16_t port = 0;
        with([&](auto *c) { detail::check(wt_run_config_preopen_tcp_listener(c, address.c_str(), &port)); });
        return port;
    }

    // Limits.
    /// Most spawned threads alive at once (default 1024).
    RunConfig &max_threads(uint32_t n) { return with([&](auto *c) { wt_run_config_set_max_threads(c, n); }); }
    /// Ends runs with Exit::Kind::Timeout after this long; 0 = no timeout (the default).
    RunConfig &timeout(std::chrono::milliseconds t) { return timeout_ms(static_cast<uint64_t>(t.count())); }
    RunConfig &timeout_ms(uint64_t ms) { return with([&](auto *c) { wt_run_config_set_timeout_ms(c, ms); }); }
    /// Caps the guest's linear memory; 0 = only the module's own maximum (the default).
    RunConfig &max_memory(uint64_t bytes) { return with([&](auto *c) { wt_run_config_set_max_memory(c, bytes); }); }
    /// Most descriptors open at once, stdio and preopens included (default 256).
    RunConfig &max_fds(uint32_t n) { return with([&](auto *c) { wt_run_config_set_max_fds(c, n); }); }
    /// Most table elements all threads' tables hold together (default 10 000 000).
    RunConfig &max_table_elements(uint64_t n) {
        return with([&](auto *c) { wt_run_config_set_max_table_elements(c, n); });
    }
    /// Most private memories all threads' instances define together (default 1024).
    RunConfig &max_memories(uint32_t n) { return with([&](auto *c) { wt_run_config_set_max_memories(c, n); }); }
    /// Most host memory all threads' instances take for themselves (default 256 MiB).
    RunConfig &max_instance_bytes(uint64_t bytes) {
        return with([&](auto *c) { wt_run_config_set_max_instance_bytes(c, bytes); });
    }
    /// Most bytes the guest writes to files under its directories; WT_NO_WRITE_LIMIT
    /// (the default) = no cap. Past it writes fail with the WASI errno `dquot`.
    RunConfig &max_write_bytes(uint64_t bytes) {
        return with([&](auto *c) { wt_run_config_set_max_write_bytes(c, bytes); });
    }
    /// Most files, directories and links the guest creates under its directories;
    /// WT_NO_WRITE_LIMIT (the default) = no cap.
    RunConfig &max_files_created(uint64_t files) {
        return with([&](auto *c) { wt_run_config_set_max_files_created(c, files); });
    }
    /// How long the end of a run waits for its threads to stop (default 5 s).
    RunConfig &teardown_grace(std::chrono::milliseconds t) {
        return with([&](auto *c) { wt_run_config_set_teardown_grace_ms(c, static_cast<uint64_t>(t.count())); });
    }
    /// Writes a wasm core dump to `path` when a run ends by a trap.
    RunConfig &coredump(const std::string &path) {
        return with([&](auto *c) { detail::check(wt_run_config_set_coredump_path(c, path.c_str())); });
    }
    /// No core dump (the default).
    RunConfig &no_coredump() {
        return with([&](auto *c) { detail::check(wt_run_config_set_coredump_path(c, nullptr)); });
    }

    // Output: `stream` is Stdout or Stderr (1 or 2).
    /// The stream goes to the host process's own stdout / stderr (the default).
    RunConfig &output_inherit(int32_t stream) {
        return output(stream, [&](auto *c) { return wt_run_config_set_output_inherit(c, stream); });
    }
    /// The stream is discarded.
    RunConfig &output_null(int32_t stream) {
        return output(stream, [&](auto *c) { return wt_run_config_set_output_null(c, stream); });
    }
    /// The stream goes to the file at `path`, created or truncated now.
    RunConfig &output_file(int32_t stream, const std::string &path) {
        return output(stream, [&](auto *c) { return wt_run_config_set_output_file(c, stream, path.c_str()); });
    }
    /// The stream goes to the host descriptor `fd`, duplicated now (the caller keeps `fd`).
    RunConfig &output_fd(int32_t stream, int fd) {
        return output(stream, [&](auto *c) { return wt_run_config_set_output_fd(c, stream, fd); });
    }
    /// The stream is handed to `fn`, on the writing guest thread; calls for one stream
    /// never overlap.
    RunConfig &on_output(int32_t stream, OutputFn fn) {
        if (!fn) throw Error("on_output needs a callback", ErrorKind::Misuse, 0);
        detail::RunState *idle = &state_->idle;
        wt_output_callback_t cb = detail::RunState::output_callback(stream);
        return output(
            stream, [&](auto *c) { return wt_run_config_set_output_callback(c, stream, cb, idle); }, std::move(fn));
    }

    // Input.
    /// The guest's stdin is the host process's stdin (the default).
    RunConfig &stdin_inherit() { return with([&](auto *c) { wt_run_config_set_stdin_inherit(c); }); }
    /// The guest's stdin is empty.
    RunConfig &stdin_null() { return with([&](auto *c) { wt_run_config_set_stdin_null(c); }); }
    /// The guest's stdin is these bytes (copied now), then end-of-file; each run reads them.
    RunConfig &stdin_bytes(ByteView bytes) {
        return with([&](auto *c) { detail::check(wt_run_config_set_stdin_bytes(c, bytes.data, bytes.size)); });
    }
    /// The guest's stdin is the file at `path`, opened by each run when it starts.
    RunConfig &stdin_file(const std::string &path) {
        return with([&](auto *c) { detail::check(wt_run_config_set_stdin_file(c, path.c_str())); });
    }
    /// The guest's stdin is read from the host descriptor `fd`, duplicated now.
    RunConfig &stdin_fd(int fd) { return with([&](auto *c) { detail::check(wt_run_config_set_stdin_fd(c, fd)); }); }

    // Callbacks: may run on any guest thread, for different threads concurrently.
    /// Called once per guest thread, on that thread, when it ends. An empty fn clears it.
    RunConfig &on_thread_exit(ThreadExitFn fn) { return set(&detail::Callbacks::thread_exit, std::move(fn)); }
    /// Called on each new guest thread before it runs guest code. An empty fn clears it.
    RunConfig &on_thread_start(ThreadStartFn fn) { return set(&detail::Callbacks::thread_start, std::move(fn)); }
    /// Called with what the guest only sees as an error code (a refused thread-spawn and
    /// why), or threads that outlived the teardown grace. An empty fn clears it.
    RunConfig &on_diagnostic(DiagnosticFn fn) { return set(&detail::Callbacks::diagnostic, std::move(fn)); }

    /// The C handle, for reading; start runs with Run or wasithreads::run, which give each
    /// run its own callbacks (a run started from this handle with the C API gets none).
    wt_run_config_t *get() const noexcept { return state_->handle.get(); }

private:
    friend class Run;
    struct State {
        std::mutex lock;
        detail::Handle<wt_run_config_t, wt_run_config_free> handle =
            detail::make_handle<wt_run_config_t, wt_run_config_free>(wt_run_config_new());
        detail::Callbacks callbacks;
        // What the C config's callbacks point at between run starts: a state with no
        // callbacks, so that the config never refers to a run's state.
        detail::RunState idle{detail::Callbacks{}};
    };

    template <typename F>
    RunConfig &with(F &&change) {
        std::lock_guard<std::mutex> g(state_->lock);
        change(state_->handle.get());
        return *this;
    }
    template <typename F>
    RunConfig &output(int32_t stream, F &&set_mode, OutputFn fn = nullptr) {
        if (stream != Stdout && stream != Stderr)
            throw Error("stream must be 1 (stdout) or 2 (stderr)", ErrorKind::Misuse, 0);
        return with([&](wt_run_config_t *c) {
            detail::check(set_mode(c));
            // The stream is in callback mode exactly when its callback is set.
            (stream == Stdout ? state_->callbacks.out : state_->callbacks.err) = std::move(fn);
        });
    }
    template <typename Fn>
    RunConfig &set(Fn detail::Callbacks::*slot, Fn fn) {
        return with([&](wt_run_config_t *) { state_->callbacks.*slot = std::move(fn); });
    }

    /// Starts a run with its own copy of the callbacks, made into `run_state`.
    wt_run_t *start(const Engine &engine, const Module &module, std::unique_ptr<detail::RunState> &run_state) const {
        std::lock_guard<std::mutex> g(state_->lock);
        wt_run_config_t *c = state_->handle.get();
        run_state = std::make_unique<detail::RunState>(state_->callbacks);
        run_state->install(c, state_->callbacks);
        wt_run_t *r = nullptr;
        wt_error_t *err = wt_run_start(engine.get(), module.get(), c, &r);
        state_->idle.install(c, state_->callbacks);
        detail::check(err);
        return r;
    }

    std::unique_ptr<State> state_;
};

/// A run in the background. Destroying a run that is still going cancels and joins it.
class Run {
public:
    Run(const Engine &engine, const Module &module, const RunConfig &config) {
        handle_.reset(config.start(engine, module, state_));
        state_->started(handle_.get());
    }
    Run(Run &&) noexcept = default;
    Run &operator=(Run &&other) noexcept {
        if (this != &other) {
            handle_.reset();  // joins this run's threads before its callbacks go
            handle_ = std::move(other.handle_);
            state_ = std::move(other.state_);
        }
        return *this;
    }

    /// Ends the run with Exit::Kind::Cancelled unless it already ended. Any thread.
    void cancel() const noexcept { wt_run_cancel(handle_.get()); }
    /// Blocks until every guest thread has been joined. Rethrows the first exception a
    /// callback of this run threw (which cancelled the run).
    Exit wait() const {
        wt_exit_t raw;
        detail::check(wt_run_wait(handle_.get(), &raw));
        return finish(raw);
    }
    /// The outcome if the run is over, without blocking; rethrows as wait() does.
    std::optional<Exit> try_wait() const {
        wt_exit_t raw;
        if (!wt_run_try_wait(handle_.get(), &raw)) return std::nullopt;
        return finish(raw);
    }

    wt_run_t *get() const noexcept { return handle_.get(); }

private:
    Exit finish(wt_exit_t &raw) const {
        Exit exit = Exit::take(raw);
        state_->rethrow();
        return exit;
    }
    // Declared first, destroyed last: the C run calls into it until wt_run_free returns.
    std::unique_ptr<detail::RunState> state_;
    detail::Handle<wt_run_t, wt_run_free> handle_;
};

/// Runs to the end, blocking the calling thread; rethrows as Run::wait() does.
inline Exit run(const Engine &engine, const Module &module, const RunConfig &config) {
    return Run(engine, module, config).wait();
}

/// The library version, e.g. "0.1.0".
inline std::string version() { return wt_version(); }

}  // namespace wasithreads
