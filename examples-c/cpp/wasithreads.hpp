// wasithreads.hpp: a header-only C++17 RAII wrapper over the wasithreads C API.
//
//   wasithreads::Engine engine;
//   wasithreads::Module module(engine, bytes);            // .wasm bytes or WAT text
//   wasithreads::RunConfig config;
//   config.arg("guest").env("KEY", "value")
//         .on_output(1, [](int32_t tid, std::string_view text) { /* ... */ });
//   wasithreads::Exit exit = wasithreads::run(engine, module, config);
//
// Every failing C call throws wasithreads::Error. Objects own their C handles, free them
// on destruction, and are movable but not copyable. Callbacks are std::function objects
// kept alive by the RunConfig and by every Run started from it; an exception thrown by a
// callback is dropped (it cannot unwind through the C library).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "wasithreads.h"

namespace wasithreads {

/// A failed call, with the library's message.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

namespace detail {
/// Throws if `err` is an error (and frees it).
inline void check(wt_error_t *err) {
    if (err) {
        std::string msg = wt_error_message(err);
        wt_error_free(err);
        throw Error(msg);
    }
}
template <typename T, void (*Free)(T *)>
struct Deleter {
    void operator()(T *p) const noexcept { Free(p); }
};
template <typename T, void (*Free)(T *)>
using Handle = std::unique_ptr<T, Deleter<T, Free>>;
}  // namespace detail

/// How a run ended.
struct Exit {
    enum class Kind { Code = WT_EXIT_CODE, Trap = WT_EXIT_TRAP, Timeout = WT_EXIT_TIMEOUT, Cancelled = WT_EXIT_CANCELLED };
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

/// A compilation and execution environment; thread-safe.
class Engine {
public:
    /// An engine with the default settings.
    Engine() {
        wt_engine_t *e = nullptr;
        detail::check(wt_engine_new(nullptr, &e));
        handle_.reset(e);
    }
    /// An engine with Cranelift optimisation level 0, 1 or 2.
    explicit Engine(uint8_t opt_level) {
        detail::Handle<wt_engine_config_t, wt_engine_config_free> config(wt_engine_config_new());
        wt_engine_config_set_opt_level(config.get(), opt_level);
        wt_engine_t *e = nullptr;
        detail::check(wt_engine_new(config.get(), &e));
        handle_.reset(e);
    }
    wt_engine_t *get() const noexcept { return handle_.get(); }

private:
    detail::Handle<wt_engine_t, wt_engine_free> handle_;
};

/// A compiled module; thread-safe.
class Module {
public:
    /// Compiles `.wasm` bytes or WAT text.
    Module(const Engine &engine, std::string_view bytes) {
        wt_module_t *m = nullptr;
        detail::check(wt_module_load(engine.get(), reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size(), &m));
        handle_.reset(m);
    }
    /// Loads a `.wasm` or `.wat` file.
    static Module from_file(const Engine &engine, const std::string &path) {
        wt_module_t *m = nullptr;
        detail::check(wt_module_load_file(engine.get(), path.c_str(), &m));
        return Module(m);
    }
    const wt_module_t *get() const noexcept { return handle_.get(); }

private:
    explicit Module(wt_module_t *m) : handle_(m) {}
    detail::Handle<wt_module_t, wt_module_free> handle_;
};

/// Settings for runs. Setters return *this for chaining.
class RunConfig {
public:
    using OutputFn = std::function<void(int32_t tid, std::string_view data)>;
    using ThreadExitFn = std::function<void(int32_t tid, const wt_thread_exit_t &how)>;

    RunConfig() : handle_(wt_run_config_new()), callbacks_(std::make_shared<Callbacks>()) {
        if (!handle_) throw Error("out of memory");
    }

    RunConfig &arg(const std::string &a) { detail::check(wt_run_config_push_arg(get(), a.c_str())); return *this; }
    RunConfig &env(const std::string &k, const std::string &v) {
        detail::check(wt_run_config_push_env(get(), k.c_str(), v.c_str()));
        return *this;
    }
    RunConfig &dir(const std::string &host, const std::string &guest, bool read_only = false) {
        detail::check(read_only ? wt_run_config_preopen_dir_readonly(get(), host.c_str(), guest.c_str())
                                : wt_run_config_preopen_dir(get(), host.c_str(), guest.c_str()));
        return *this;
    }
    RunConfig &max_threads(uint32_t n) { wt_run_config_set_max_threads(get(), n); return *this; }
    RunConfig &timeout_ms(uint64_t ms) { wt_run_config_set_timeout_ms(get(), ms); return *this; }
    RunConfig &stdin_bytes(std::string_view bytes) {
        detail::check(wt_run_config_set_stdin_bytes(get(), reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size()));
        return *this;
    }
    /// Captures stream 1 (stdout) or 2 (stderr); calls for one stream never overlap.
    RunConfig &on_output(int stream, OutputFn fn) {
        if (stream != 1 && stream != 2) throw Error("stream must be 1 (stdout) or 2 (stderr)");
        OutputFn &slot = stream == 1 ? callbacks_->out : callbacks_->err;
        slot = std::move(fn);
        detail::check(wt_run_config_set_output_callback(get(), stream, stream == 1 ? &Callbacks::out_cb : &Callbacks::err_cb,
                                                        callbacks_.get()));
        return *this;
    }
    /// Called once per guest thread, on that thread, when it ends; may run concurrently.
    RunConfig &on_thread_exit(ThreadExitFn fn) {
        callbacks_->exit = std::move(fn);
        wt_run_config_set_thread_exit_callback(get(), &Callbacks::exit_cb, callbacks_.get());
        return *this;
    }

    wt_run_config_t *get() const noexcept { return handle_.get(); }

private:
    friend class Run;
    struct Callbacks {
        OutputFn out, err;
        ThreadExitFn exit;
        // Exceptions must not unwind into the C library: a throwing callback's exception
        // is dropped.
        static void out_cb(void *self, int32_t tid, const uint8_t *d, size_t n) noexcept {
            try {
                static_cast<Callbacks *>(self)->out(tid, std::string_view(reinterpret_cast<const char *>(d), n));
            } catch (...) {
            }
        }
        static void err_cb(void *self, int32_t tid, const uint8_t *d, size_t n) noexcept {
            try {
                static_cast<Callbacks *>(self)->err(tid, std::string_view(reinterpret_cast<const char *>(d), n));
            } catch (...) {
            }
        }
        static void exit_cb(void *self, int32_t tid, const wt_thread_exit_t *how) noexcept {
            try {
                static_cast<Callbacks *>(self)->exit(tid, *how);
            } catch (...) {
            }
        }
    };
    detail::Handle<wt_run_config_t, wt_run_config_free> handle_;
    std::shared_ptr<Callbacks> callbacks_;
};

/// A run in the background. Destroying a run that is still going cancels and joins it.
class Run {
public:
    Run(const Engine &engine, const Module &module, const RunConfig &config) : callbacks_(config.callbacks_) {
        wt_run_t *r = nullptr;
        detail::check(wt_run_start(engine.get(), module.get(), config.get(), &r));
        handle_.reset(r);
    }
    /// Ends the run with Exit::Kind::Cancelled unless it already ended. Any thread.
    void cancel() const noexcept { wt_run_cancel(handle_.get()); }
    /// Blocks until every guest thread has been joined.
    Exit wait() const {
        wt_exit_t raw;
        detail::check(wt_run_wait(handle_.get(), &raw));
        return Exit::take(raw);
    }
    /// The outcome if the run is over, without blocking.
    std::optional<Exit> try_wait() const {
        wt_exit_t raw;
        if (!wt_run_try_wait(handle_.get(), &raw)) return std::nullopt;
        return Exit::take(raw);
    }

private:
    std::shared_ptr<RunConfig::Callbacks> callbacks_;  // outlives the C run (declared first)
    detail::Handle<wt_run_t, wt_run_free> handle_;
};

/// Runs to the end on the calling thread.
inline Exit run(const Engine &engine, const Module &module, const RunConfig &config) {
    wt_exit_t raw;
    detail::check(wt_run(engine.get(), module.get(), config.get(), &raw));
    return Exit::take(raw);
}

/// The library version.
inline std::string version() { return wt_version(); }

}  // namespace wasithreads
