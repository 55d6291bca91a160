// wasithreads.hpp: a header-only C++17 RAII wrapper over the wasithreads C API.
//
//   wasithreads::Engine engine;
//   auto module = wasithreads::Module::from_file(engine, "guest.wasm");
//   wasithreads::RunConfig config;
//   config.arg("guest").env("KEY", "value")
//         .on_output(wasithreads::Stdout, [](int32_t tid, std::string_view text) { /* ... */ });
//   wasithreads::Exit exit = wasithreads::run(engine, module, config);
//
// Plugins: host functions typed from lambdas (Imports, RunConfig::imports) and
// long-lived instances whose exports any thread calls (Instance):
//
//   wasithreads::Imports imports;
//   imports.define("env", "log", [](wasithreads::Caller &c, int32_t ptr, int32_t len) {
//       std::cout << c.memory().string(ptr, len) << "\n";
//   });
//   config.imports(imports);
//   wasithreads::Instance plugin(engine, plugin_module, config);
//   int32_t sum = plugin.call<int32_t(int32_t, int32_t)>("add", 1, 2);
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
// and wasithreads::run. One thrown by a host function traps its guest thread instead (so
// the run or instance ends with that trap) and is rethrown the same way, and by an
// Instance's calls and close().
//
// Every function of wasithreads.h is used here except those in this table (the CTest
// test cpp-api-coverage compares the header with this file and this table):
//
// | C function | why the wrapper does not call it                                          |
// |------------|----------------------------------------------------------------------------|
// | `wt_run`   | wasithreads::run is Run(...).wait() (wt_run_start + wt_run_wait): a run    |
// |            | must be started with the config locked, and wt_run would hold that lock   |
// |            | for the whole run, blocking every other start from the same config.       |
#pragma once

#include <algorithm>
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
#include <tuple>
#include <type_traits>
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

/// An instance's end, as a call sees it: thrown by Instance's calls once the instance
/// ended (a trap or `proc_exit` in any of its threads, its timeout, a cancel or close),
/// with how it ended. The instance's first exit, the same for every call.
class InstanceEnded : public Error {
public:
    explicit InstanceEnded(Exit exit)
        : Error(describe(exit), ErrorKind::Ended, 0), exit_(std::move(exit)) {}
    /// How the instance ended.
    const Exit &exit() const noexcept { return exit_; }

private:
    static std::string describe(const Exit &e) {
        switch (e.kind) {
        case Exit::Kind::Code: return "the instance ended: exit code " + std::to_string(e.code);
        case Exit::Kind::Trap: return "the instance ended: thread " + std::to_string(e.tid) + " trapped: " + e.message;
        case Exit::Kind::Timeout: return "the instance ended: timeout";
        case Exit::Kind::Cancelled: return "the instance ended: cancelled";
        }
        return "the instance ended";
    }
    Exit exit_;
};

/// The type of a WebAssembly value (`wt_valkind_t`).
enum class ValKind : int { I32 = WT_I32, I64 = WT_I64, F32 = WT_F32, F64 = WT_F64 };

/// "i32", "i64", "f32" or "f64".
inline const char *name(ValKind kind) noexcept {
    switch (kind) {
    case ValKind::I32: return "i32";
    case ValKind::I64: return "i64";
    case ValKind::F32: return "f32";
    case ValKind::F64: return "f64";
    }
    return "?";
}

/// A WebAssembly value of any kind, for untyped calls: Val(int32_t), Val(int64_t),
/// Val(float), Val(double); kind() says which, and i32() ... f64() read it (throwing
/// Error for another kind).
class Val {
public:
    Val() noexcept : Val(int32_t{0}) {}
    Val(int32_t v) noexcept { raw_.kind = WT_I32; raw_.of.i32 = v; }
    Val(int64_t v) noexcept { raw_.kind = WT_I64; raw_.of.i64 = v; }
    Val(float v) noexcept { raw_.kind = WT_F32; raw_.of.f32 = v; }
    Val(double v) noexcept { raw_.kind = WT_F64; raw_.of.f64 = v; }
    explicit Val(const wt_val_t &raw) noexcept : raw_(raw) {}

    ValKind kind() const noexcept { return static_cast<ValKind>(raw_.kind); }
    int32_t i32() const { return want(ValKind::I32).of.i32; }
    int64_t i64() const { return want(ValKind::I64).of.i64; }
    float f32() const { return want(ValKind::F32).of.f32; }
    double f64() const { return want(ValKind::F64).of.f64; }
    const wt_val_t &raw() const noexcept { return raw_; }

    bool operator==(const Val &o) const noexcept {
        if (raw_.kind != o.raw_.kind) return false;
        switch (kind()) {
        case ValKind::I32: return raw_.of.i32 == o.raw_.of.i32;
        case ValKind::I64: return raw_.of.i64 == o.raw_.of.i64;
        case ValKind::F32: return raw_.of.f32 == o.raw_.of.f32;
        case ValKind::F64: return raw_.of.f64 == o.raw_.of.f64;
        }
        return false;
    }
    bool operator!=(const Val &o) const noexcept { return !(*this == o); }

private:
    const wt_val_t &want(ValKind k) const {
        if (kind() != k)
            throw Error(std::string("the value is an ") + name(kind()) + ", not an " + name(k), ErrorKind::Misuse, 0);
        return raw_;
    }
    wt_val_t raw_;
};

/// A function's parameter and result types.
struct FuncType {
    std::vector<ValKind> params, results;

    bool operator==(const FuncType &o) const noexcept { return params == o.params && results == o.results; }
    bool operator!=(const FuncType &o) const noexcept { return !(*this == o); }
    /// As "(i32, i32) -> i32"; "()" for no parameters, "-> ()" for no results.
    std::string str() const {
        auto list = [](const std::vector<ValKind> &kinds) {
            std::string s = "(";
            for (size_t i = 0; i < kinds.size(); i++) s += (i ? ", " : "") + std::string(name(kinds[i]));
            return s + ")";
        };
        return list(params) + " -> " + (results.size() == 1 ? std::string(name(results[0])) : list(results));
    }
};

/// Borrowed guest memory: `size` bytes at `data` (NULL and 0 without a memory). For a
/// shared memory the base never moves while its instance or run lives; guest threads use
/// it concurrently (ordering is the host's and the guest's business). bytes() and
/// string() check the range against `size`.
struct MemoryView {
    uint8_t *data = nullptr;
    size_t size = 0;

    /// `len` bytes at `offset`; throws Error (ErrorKind::Misuse) past the end.
    uint8_t *bytes(uint64_t offset, size_t len) const {
        if (offset > size || len > size - offset)
            throw Error("guest memory range " + std::to_string(offset) + "+" + std::to_string(len) +
                            " is outside its " + std::to_string(size) + " bytes",
                        ErrorKind::Misuse, 0);
        return data + offset;
    }
    /// The same bytes as text.
    std::string_view string(uint64_t offset, size_t len) const {
        return std::string_view(reinterpret_cast<const char *>(bytes(offset, len)), len);
    }
};

/// The guest thread that called a host function: valid only during that call.
class Caller {
public:
    explicit Caller(wt_caller_t *raw) noexcept : raw_(raw) {}
    Caller(const Caller &) = delete;
    Caller &operator=(const Caller &) = delete;

    /// The calling guest thread's id (0 = the main thread).
    int32_t tid() const noexcept { return wt_caller_tid(raw_); }
    /// The guest memory at this moment (its size grows when the guest grows it).
    MemoryView memory() const noexcept { return {wt_caller_memory_data(raw_), wt_caller_memory_size(raw_)}; }
    /// True once the caller's run or instance is ending: return soon (throw anything).
    bool is_ending() const noexcept { return wt_caller_is_ending(raw_); }
    /// A descriptor that becomes readable when the run or instance ends, to poll beside
    /// one's own (owned by the library); -1 if the OS refused one.
    int end_fd() const noexcept { return wt_caller_end_fd(raw_); }
    wt_caller_t *get() const noexcept { return raw_; }

private:
    wt_caller_t *raw_;
};

namespace detail {
/// The C++ types of WebAssembly values: int32_t, int64_t, float, double.
template <typename T>
struct Kind;
/// One of them: its C kind, and the member of wt_valunion_t that holds it.
template <typename T, wt_valkind_t K, T wt_valunion_t::*Member>
struct KindOf {
    static constexpr wt_valkind_t value = K;
    static T get(const wt_val_t &v) noexcept { return v.of.*Member; }
    static void set(wt_val_t &v, T x) noexcept { v.of.*Member = x; }
};
template <>
struct Kind<int32_t> : KindOf<int32_t, WT_I32, &wt_valunion_t::i32> {};
template <>
struct Kind<int64_t> : KindOf<int64_t, WT_I64, &wt_valunion_t::i64> {};
template <>
struct Kind<float> : KindOf<float, WT_F32, &wt_valunion_t::f32> {};
template <>
struct Kind<double> : KindOf<double, WT_F64, &wt_valunion_t::f64> {};
template <typename T, typename = void>
struct IsValue : std::false_type {};
template <typename T>
struct IsValue<T, std::void_t<decltype(Kind<T>::value)>> : std::true_type {};

template <typename T>
inline wt_val_t make_val(T x) noexcept {
    wt_val_t v;
    v.kind = Kind<T>::value;
    Kind<T>::set(v, x);
    return v;
}

/// Results of type R: void (none), a value type (one) or std::tuple of value types.
template <typename R>
struct Results {
    static_assert(IsValue<R>::value,
                  "a result type must be void, int32_t, int64_t, float, double or a std::tuple of those");
    static constexpr size_t count = 1;
    static void kinds(wt_valkind_t *out) noexcept { out[0] = Kind<R>::value; }
    static R get(const wt_val_t *v) noexcept { return Kind<R>::get(v[0]); }
    static void set(wt_val_t *v, R x) noexcept { Kind<R>::set(v[0], x); }
};
template <>
struct Results<void> {
    static constexpr size_t count = 0;
    static void kinds(wt_valkind_t *) noexcept {}
};
template <typename... T>
struct Results<std::tuple<T...>> {
    static_assert((IsValue<T>::value && ...), "a tuple of results may hold int32_t, int64_t, float and double only");
    static constexpr size_t count = sizeof...(T);
    static void kinds(wt_valkind_t *out) noexcept {
        size_t i = 0;
        ((out[i++] = Kind<T>::value), ...);
    }
    static std::tuple<T...> get(const wt_val_t *v) noexcept { return get(v, std::index_sequence_for<T...>{}); }
    static void set(wt_val_t *v, const std::tuple<T...> &x) noexcept { set(v, x, std::index_sequence_for<T...>{}); }

private:
    template <size_t... I>
    static std::tuple<T...> get(const wt_val_t *v, std::index_sequence<I...>) noexcept {
        return std::tuple<T...>(Kind<T>::get(v[I])...);
    }
    template <size_t... I>
    static void set(wt_val_t *v, const std::tuple<T...> &x, std::index_sequence<I...>) noexcept {
        (Kind<T>::set(v[I], std::get<I>(x)), ...);
    }
};

/// The parameter and result types of a function type R(A...).
template <typename Sig>
struct Signature;
template <typename R, typename... A>
struct Signature<R(A...)> {
    static_assert((IsValue<A>::value && ...), "a parameter type must be int32_t, int64_t, float or double");
    using Result = R;
    static constexpr size_t nparams = sizeof...(A);
    static constexpr size_t nresults = Results<R>::count;
    /// The C kinds of the parameters and of the results.
    static FuncType type() {
        wt_valkind_t r[nresults + 1];
        Results<R>::kinds(r);
        FuncType t{{static_cast<ValKind>(Kind<A>::value)...}, {}};
        for (size_t i = 0; i < nresults; i++) t.results.push_back(static_cast<ValKind>(r[i]));
        return t;
    }
};

/// What a callable's operator() (or a function) takes and returns.
template <typename F>
struct Callable : Callable<decltype(&F::operator())> {};
template <typename R, typename... A>
struct Callable<R (*)(A...)> {
    using Result = R;
    using Args = std::tuple<A...>;
};
template <typename R, typename... A>
struct Callable<R (*)(A...) noexcept> : Callable<R (*)(A...)> {};
template <typename C, typename R, typename... A>
struct Callable<R (C::*)(A...)> : Callable<R (*)(A...)> {};
template <typename C, typename R, typename... A>
struct Callable<R (C::*)(A...) const> : Callable<R (*)(A...)> {};
template <typename C, typename R, typename... A>
struct Callable<R (C::*)(A...) noexcept> : Callable<R (*)(A...)> {};
template <typename C, typename R, typename... A>
struct Callable<R (C::*)(A...) const noexcept> : Callable<R (*)(A...)> {};

template <typename T>
using Plain = std::remove_cv_t<std::remove_reference_t<T>>;

class RunState;

/// A host function F's C callback and type: parameters `[Caller &,] A...`, result R.
template <typename F, typename R, bool WithCaller, typename... A>
struct Trampoline {
    static_assert((IsValue<Plain<A>>::value && ...),
                  "a host function's parameters must be int32_t, int64_t, float or double (after an optional Caller &)");
    static FuncType type() { return Signature<R(Plain<A>...)>::type(); }

    /// Calls the F at `env` (a std::shared_ptr<void> *). An exception traps the guest
    /// thread with its what() and is kept for the run or instance to rethrow.
    static wt_error_t *callback(void *env, wt_caller_t *raw, const wt_val_t *args, size_t nargs, wt_val_t *results,
                                size_t nresults) noexcept;

private:
    template <size_t... I>
    static void invoke(F &f, Caller &caller, const wt_val_t *args, wt_val_t *results, std::index_sequence<I...>) {
        if constexpr (std::is_void_v<R>) {
            call(f, caller, Kind<Plain<A>>::get(args[I])...);
        } else {
            Results<R>::set(results, call(f, caller, Kind<Plain<A>>::get(args[I])...));
        }
        (void)args;
        (void)results;
    }
    static R call(F &f, Caller &caller, Plain<A>... a) {
        if constexpr (WithCaller) {
            return f(caller, a...);
        } else {
            (void)caller;
            return f(a...);
        }
    }
};

template <typename F, typename Args = typename Callable<F>::Args>
struct HostFuncOf;
template <typename F, typename... A>
struct HostFuncOf<F, std::tuple<A...>> {
    using type = Trampoline<F, typename Callable<F>::Result, false, A...>;
};
template <typename F, typename... A>
struct HostFuncOf<F, std::tuple<Caller &, A...>> {
    using type = Trampoline<F, typename Callable<F>::Result, true, A...>;
};
template <typename F, typename... A>
struct HostFuncOf<F, std::tuple<const Caller &, A...>> {
    using type = Trampoline<F, typename Callable<F>::Result, true, A...>;
};
}  // namespace detail

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

class RunState;
/// The run or instance whose guest code the calling thread runs (RunState::current).
inline thread_local RunState *current_state = nullptr;

/// What the C callbacks of one run or instance get as user_data: its own copy of the
/// callbacks, and the first exception one of them (or a host function) threw.
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
        // Always: it tells the host functions on each guest thread whose state is theirs.
        wt_run_config_set_thread_start_callback(config, &start_cb, this);
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
    /// The instance has been made: an exception that came before this cancels it now.
    void started(const wt_instance_t *instance) noexcept {
        std::lock_guard<std::mutex> g(lock_);
        instance_ = instance;
        if (error_) wt_instance_cancel(instance_);
    }
    /// Keeps the exception a host function threw (the first one only); the host function
    /// then traps its guest thread, which ends the run or instance.
    void keep(std::exception_ptr e) noexcept {
        std::lock_guard<std::mutex> g(lock_);
        if (!error_) error_ = std::move(e);
    }
    /// The error that traps a host function's caller for the exception being handled,
    /// kept for `state` (if any) to rethrow unless the run or instance was already ending
    /// (then the exception is the host function's way to return, not why it ended).
    static wt_error_t *trap(RunState *state, wt_caller_t *caller) noexcept {
        std::exception_ptr e = std::current_exception();
        if (state && !wt_caller_is_ending(caller)) state->keep(e);
        try {
            std::rethrow_exception(e);
        } catch (const std::exception &x) {
            return wt_error_new(x.what());
        } catch (...) {
            return wt_error_new("a C++ exception that is not a std::exception");
        }
    }
    /// Whether a callback or host function threw.
    bool threw() const noexcept {
        std::lock_guard<std::mutex> g(lock_);
        return error_ != nullptr;
    }
    /// The state of the run or instance whose guest code this thread runs: set on each
    /// guest thread when it starts, and around the calls that run guest code on the
    /// host's thread (Instance's constructor and calls). NULL elsewhere.
    static RunState *current() noexcept { return current_state; }

    /// Makes `state` the current one on this thread until destroyed.
    class Scope {
    public:
        explicit Scope(RunState *state) noexcept : saved_(current_state) { current_state = state; }
        ~Scope() { current_state = saved_; }
        Scope(const Scope &) = delete;
        Scope &operator=(const Scope &) = delete;

    private:
        RunState *saved_;
    };

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
            if (state->instance_) wt_instance_cancel(state->instance_);
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
        current_state = static_cast<RunState *>(self);
        guard(self, [&](const Callbacks &c) {
            if (c.thread_start) c.thread_start(tid);
        });
    }
    static void diagnostic_cb(void *self, int32_t tid, const char *message) noexcept {
        guard(self, [&](const Callbacks &c) { c.diagnostic(tid, message); });
    }

    const Callbacks callbacks_;
    mutable std::mutex lock_;
    std::exception_ptr error_;
    const wt_run_t *run_ = nullptr;
    const wt_instance_t *instance_ = nullptr;
};
}  // namespace detail

namespace detail {
template <typename F, typename R, bool WithCaller, typename... A>
wt_error_t *Trampoline<F, R, WithCaller, A...>::callback(void *env, wt_caller_t *raw, const wt_val_t *args,
                                                         size_t nargs, wt_val_t *results, size_t nresults) noexcept {
    if (nargs != sizeof...(A) || nresults != Results<R>::count)
        return wt_error_new("host function called with the wrong number of values");
    RunState *state = RunState::current();
    try {
        F &f = *static_cast<F *>(static_cast<std::shared_ptr<void> *>(env)->get());
        Caller caller(raw);
        invoke(f, caller, args, results, std::index_sequence_for<A...>{});
        return nullptr;
    } catch (...) {
        return RunState::trap(state, raw);
    }
}
}  // namespace detail

/// Host functions for the imports of a module, to give a RunConfig (RunConfig::imports),
/// whose runs and instances then link them into every guest thread's instance:
///
///   wasithreads::Imports imports;
///   imports.define("env", "log", [](wasithreads::Caller &c, int32_t ptr, int32_t len) {
///       std::cout << c.tid() << ": " << c.memory().string(ptr, len) << "\n";
///   });
///   config.imports(imports);
///
/// A host function is any callable; its wasm type comes from its signature: parameters
/// int32_t, int64_t, float or double, after an optional leading `Caller &`; result void,
/// one of those, or a std::tuple of them. It runs on the calling guest thread,
/// concurrently for calls from different threads, so it must be thread-safe. An exception
/// it throws traps the calling guest thread (the run or instance ends with a trap whose
/// message holds what()), and is rethrown by the call that sees the end: Run::wait,
/// Instance's calls and close(). A host function that blocks must stay stoppable: poll
/// Caller::end_fd() or check Caller::is_ending(), and throw once the instance is ending.
/// Copying Imports shares the callables; each is destroyed once no config, run or
/// instance holds it.
class Imports {
public:
    /// The untyped form of a host function: the arguments, of `type.params`; returns the
    /// results, of `type.results` (anything else traps the caller).
    using UntypedFn = std::function<std::vector<Val>(Caller &caller, const std::vector<Val> &args)>;

    /// Defines `module::name` as `fn`, typed by its signature.
    template <typename F>
    Imports &define(std::string module, std::string name, F fn) {
        using T = typename detail::HostFuncOf<detail::Plain<F>>::type;
        defs_.push_back({std::move(module), std::move(name), T::type(), &T::callback,
                         std::make_shared<detail::Plain<F>>(std::move(fn))});
        return *this;
    }
    /// Defines `module::name` with an explicit type, as `fn`.
    Imports &define_untyped(std::string module, std::string name, FuncType type, UntypedFn fn) {
        if (!fn) throw Error("define_untyped needs a function", ErrorKind::Misuse, 0);
        auto holder = std::make_shared<Untyped>(Untyped{type, std::move(fn)});
        defs_.push_back({std::move(module), std::move(name), std::move(type), &untyped_callback, std::move(holder)});
        return *this;
    }

private:
    friend class RunConfig;
    struct Definition {
        std::string module, name;
        FuncType type;
        wt_func_callback_t callback;
        std::shared_ptr<void> fn;  // the callable; each config's definition holds a copy of this pointer
    };
    struct Untyped {
        FuncType type;
        UntypedFn fn;
    };
    static wt_error_t *untyped_callback(void *env, wt_caller_t *raw, const wt_val_t *args, size_t nargs,
                                        wt_val_t *results, size_t nresults) noexcept {
        detail::RunState *state = detail::RunState::current();
        try {
            auto &u = *static_cast<Untyped *>(static_cast<std::shared_ptr<void> *>(env)->get());
            std::vector<Val> in;
            in.reserve(nargs);
            for (size_t i = 0; i < nargs; i++) in.emplace_back(args[i]);
            Caller caller(raw);
            std::vector<Val> out = u.fn(caller, in);
            bool ok = out.size() == nresults;
            for (size_t i = 0; ok && i < nresults; i++) ok = out[i].raw().kind == results[i].kind;
            if (!ok) {
                std::vector<ValKind> got;
                for (const Val &v : out) got.push_back(v.kind());
                throw Error("host function returned " + FuncType{{}, got}.str().substr(6) + ", not " +
                                FuncType{{}, u.type.results}.str().substr(6),
                            ErrorKind::Misuse, 0);
            }
            for (size_t i = 0; i < nresults; i++) results[i] = out[i].raw();
            return nullptr;
        } catch (...) {
            return detail::RunState::trap(state, raw);
        }
    }
    std::vector<Definition> defs_;
};

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
    /// For instances: ends the instance (Exit::Kind::Timeout) when one export call has
    /// gone on this long; 0 = never (the default). Runs ignore it.
    RunConfig &call_timeout(std::chrono::milliseconds t) {
        return with([&](auto *c) { wt_run_config_set_call_timeout_ms(c, static_cast<uint64_t>(t.count())); });
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

    // Host functions.
    /// Defines the host functions of `imports` for every run and instance made from this
    /// config from now on (see Imports). Throws Error for a name already defined here or
    /// one of the library's own imports; the definitions before it stay.
    RunConfig &imports(const Imports &imports) {
        return with([&](wt_run_config_t *c) {
            for (const Imports::Definition &d : imports.defs_) {
                std::vector<wt_valkind_t> params, results;
                for (ValKind k : d.type.params) params.push_back(static_cast<wt_valkind_t>(k));
                for (ValKind k : d.type.results) results.push_back(static_cast<wt_valkind_t>(k));
                // The library owns this copy of the pointer: the finalizer releases it,
                // also when the definition fails.
                auto *env = new std::shared_ptr<void>(d.fn);
                detail::check(wt_run_config_define_func(c, d.module.c_str(), d.name.c_str(), params.data(),
                                                        params.size(), results.data(), results.size(), d.callback,
                                                        env, &release_host_func));
            }
        });
    }
    /// Defines one host function (as Imports::define, then imports()).
    template <typename F>
    RunConfig &define(std::string module, std::string name, F fn) {
        return imports(Imports().define(std::move(module), std::move(name), std::move(fn)));
    }

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
    friend class Instance;
    static void release_host_func(void *env) noexcept { delete static_cast<std::shared_ptr<void> *>(env); }
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

    /// Makes an instance with its own copy of the callbacks, made into `run_state`. Its
    /// `_initialize` runs here, with the config locked.
    wt_instance_t *start_instance(const Engine &engine, const Module &module,
                                  std::unique_ptr<detail::RunState> &run_state) const {
        std::lock_guard<std::mutex> g(state_->lock);
        wt_run_config_t *c = state_->handle.get();
        run_state = std::make_unique<detail::RunState>(state_->callbacks);
        run_state->install(c, state_->callbacks);
        wt_instance_t *instance = nullptr;
        wt_error_t *err;
        {
            detail::RunState::Scope scope(run_state.get());
            err = wt_instance_new(engine.get(), module.get(), c, &instance);
        }
        state_->idle.install(c, state_->callbacks);
        if (err && run_state->threw()) {
            wt_error_free(err);
            run_state->rethrow();
        }
        detail::check(err);
        return instance;
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

/// How an instance's calls run (`wt_call_mode_t`).
enum class CallMode : int {
    /// Each calling host thread has a guest thread of its own; calls run in parallel.
    Parallel = WT_CALLS_PARALLEL,
    /// Calls run one at a time on the main guest thread.
    Serial = WT_CALLS_SERIAL,
};

namespace detail {
/// The type of export `name`; throws Error (Misuse) naming the callable exports when the
/// instance has no such export.
inline FuncType export_type(const wt_instance_t *instance, const char *name);

/// Throws the error of a failed call: the kept exception or InstanceEnded when the
/// instance ended, a clear type error for a call of another type than the export's.
[[noreturn]] inline void call_failed(const wt_instance_t *instance, const RunState *state, const char *name,
                                     const FuncType &called, wt_error_t *err, wt_exit_t &exit) {
    ErrorKind kind = static_cast<ErrorKind>(wt_error_kind(err));
    if (kind == ErrorKind::Ended) {
        wt_error_free(err);
        Exit e = Exit::take(exit);
        state->rethrow();
        throw InstanceEnded(std::move(e));
    }
    if (kind == ErrorKind::Misuse && name) {
        FuncType actual;
        try {
            actual = export_type(instance, name);
        } catch (const Error &) {
            wt_error_free(err);
            throw;
        }
        if (actual != called) {
            wt_error_free(err);
            throw Error("export `" + std::string(name) + "` is " + actual.str() + ", called as " + called.str(),
                        ErrorKind::Misuse, 0);
        }
    }
    check(err);
    throw Error("unreachable");
}

/// Calls export `name` with arguments A... and results R.
template <typename R, typename... A>
R call_export(const wt_instance_t *instance, const RunState *state, const char *name, A... a) {
    wt_val_t args[sizeof...(A) + 1] = {make_val<A>(a)...};
    wt_val_t results[Results<R>::count + 1];
    wt_exit_t exit;
    wt_error_t *err;
    {
        RunState::Scope scope(const_cast<RunState *>(state));
        err = wt_instance_call(instance, name, args, sizeof...(A), results, Results<R>::count, &exit);
    }
    if (err) call_failed(instance, state, name, Signature<R(A...)>::type(), err, exit);
    if constexpr (!std::is_void_v<R>) return Results<R>::get(results);
}

inline FuncType export_type(const wt_instance_t *instance, const char *name) {
    wt_valkind_t params[16], results[16];
    size_t np = 0, nr = 0;
    wt_error_t *err = wt_instance_export_type(instance, name, params, 16, &np, results, 16, &nr);
    if (err && wt_error_kind(err) == WT_ERROR_MISUSE && instance && name) {
        wt_error_free(err);
        std::string list;
        for (size_t i = 0, n = wt_instance_export_count(instance); i < n; i++) {
            const char *e = wt_instance_export_name(instance, i);
            list += std::string(i ? ", " : "") + e + " " + export_type(instance, e).str();
        }
        throw Error("no export `" + std::string(name) + "` to call; the instance's callable exports: " +
                        (list.empty() ? "none" : list),
                    ErrorKind::Misuse, 0);
    }
    check(err);
    std::vector<wt_valkind_t> p(np), r(nr);
    if (np > 16 || nr > 16) check(wt_instance_export_type(instance, name, p.data(), np, &np, r.data(), nr, &nr));
    else {
        std::copy(params, params + np, p.begin());
        std::copy(results, results + nr, r.begin());
    }
    FuncType t;
    for (wt_valkind_t k : p) t.params.push_back(static_cast<ValKind>(k));
    for (wt_valkind_t k : r) t.results.push_back(static_cast<ValKind>(k));
    return t;
}
}  // namespace detail

template <typename Sig>
class TypedFunc;

/// A typed handle on one export of an Instance, checked once against the export's type
/// (Instance::func). Calls as Instance::call does; valid while its Instance lives.
template <typename R, typename... A>
class TypedFunc<R(A...)> {
public:
    R operator()(A... args) const {
        return detail::call_export<R, A...>(instance_, state_, name_.c_str(), args...);
    }
    const std::string &name() const noexcept { return name_; }

private:
    friend class Instance;
    TypedFunc(const wt_instance_t *instance, const detail::RunState *state, std::string name)
        : instance_(instance), state_(state), name_(std::move(name)) {}
    const wt_instance_t *instance_;
    const detail::RunState *state_;
    std::string name_;
};

/// A module instantiated once for export calls (a plugin): its `_initialize` has run,
/// the threads it starts go on between calls, and its RunConfig's settings, callbacks
/// and host functions (RunConfig::imports) apply for its whole life.
///
///   wasithreads::Instance plugin(engine, module, config);
///   int32_t n = plugin.call<int32_t(int32_t, int32_t)>("add", 1, 2);
///   auto add = plugin.func<int32_t(int32_t, int32_t)>("add");  // checked once
///   n = add(3, 4);
///
/// Thread-safe: any number of threads may call it at once (see call_mode()), except its
/// destruction and move assignment. It ends at the first trap or `proc_exit` in any of
/// its threads, its timeout, cancel() or close(); every call in flight and after then
/// throws InstanceEnded with the first exit, or rethrows the first exception one of its
/// callbacks or host functions threw (which is what ended it). Destroying it closes it
/// (every guest thread stopped and joined). Do not destroy or assign it from one of its
/// own callbacks or host functions. Movable, not copyable.
class Instance {
public:
    /// Instantiates `module` on the calling thread and runs its `_initialize` (a
    /// command's `_start` is not run). Throws Error (a link error for an import no host
    /// function defines, ErrorKind::Ended when `_initialize` trapped or exited), or the
    /// exception a callback or host function threw during `_initialize`.
    Instance(const Engine &engine, const Module &module, const RunConfig &config = RunConfig()) {
        handle_.reset(config.start_instance(engine, module, state_));
        state_->started(handle_.get());
        if (state_->threw()) {
            handle_.reset();
            state_->rethrow();
        }
    }
    Instance(Instance &&) noexcept = default;
    Instance &operator=(Instance &&other) noexcept {
        if (this != &other) {
            handle_.reset();  // joins this instance's threads before its callbacks go
            handle_ = std::move(other.handle_);
            state_ = std::move(other.state_);
        }
        return *this;
    }

    /// Calls export `name` with the type Sig (`R(A...)`: A... int32_t, int64_t, float or
    /// double; R void, one of those or a std::tuple of them), from any thread. Throws
    /// Error (ErrorKind::Misuse) naming the export's type when it is not Sig, or the
    /// callable exports when there is no such export (the instance goes on);
    /// InstanceEnded (or a host function's exception) when the instance ended.
    template <typename Sig, typename... Args>
    typename detail::Signature<Sig>::Result call(const char *name, Args &&...args) const {
        return Caller_<Sig>::call(handle_.get(), state_.get(), name, std::forward<Args>(args)...);
    }
    template <typename Sig, typename... Args>
    typename detail::Signature<Sig>::Result call(const std::string &name, Args &&...args) const {
        return call<Sig>(name.c_str(), std::forward<Args>(args)...);
    }
    /// A typed handle on export `name`, its type checked now against Sig (Error if not).
    template <typename Sig>
    TypedFunc<Sig> func(const std::string &name) const {
        FuncType actual = export_type(name), wanted = detail::Signature<Sig>::type();
        if (actual != wanted)
            throw Error("export `" + name + "` is " + actual.str() + ", not " + wanted.str(), ErrorKind::Misuse, 0);
        return TypedFunc<Sig>(handle_.get(), state_.get(), name);
    }
    /// Calls export `name` with values of any kinds, checked against its type; returns
    /// its results.
    std::vector<Val> call_untyped(const std::string &name, const std::vector<Val> &args) const {
        FuncType type = export_type(name);
        std::vector<wt_val_t> in, out(type.results.size());
        for (const Val &v : args) in.push_back(v.raw());
        wt_exit_t exit;
        wt_error_t *err;
        {
            detail::RunState::Scope scope(state_.get());
            err = wt_instance_call(handle_.get(), name.c_str(), in.data(), in.size(), out.data(), out.size(), &exit);
        }
        if (err) {
            FuncType called;
            for (const Val &v : args) called.params.push_back(v.kind());
            called.results = type.results;
            detail::call_failed(handle_.get(), state_.get(), name.c_str(), called, err, exit);
        }
        return std::vector<Val>(out.begin(), out.end());
    }

    /// The exports calls can reach, in the module's order, with their types.
    std::vector<std::pair<std::string, FuncType>> exports() const {
        std::vector<std::pair<std::string, FuncType>> out;
        for (size_t i = 0, n = wt_instance_export_count(handle_.get()); i < n; i++) {
            const char *name = wt_instance_export_name(handle_.get(), i);
            out.emplace_back(name, detail::export_type(handle_.get(), name));
        }
        return out;
    }
    /// The type of export `name`; Error (ErrorKind::Misuse) naming the callable exports
    /// when there is no such export.
    FuncType export_type(const std::string &name) const { return detail::export_type(handle_.get(), name.c_str()); }
    /// Whether calls from different threads run in parallel.
    CallMode call_mode() const noexcept { return static_cast<CallMode>(wt_instance_call_mode(handle_.get())); }

    /// The guest memory in place (a shared memory's base never moves; its size grows).
    MemoryView memory() const noexcept {
        return {wt_instance_memory_data(handle_.get()), wt_instance_memory_size(handle_.get())};
    }
    /// Copies `len` bytes at `offset` to `out`; Error (ErrorKind::Misuse) past the end.
    void read(uint64_t offset, void *out, size_t len) const {
        detail::check(wt_instance_memory_read(handle_.get(), offset, static_cast<uint8_t *>(out), len));
    }
    std::vector<uint8_t> read(uint64_t offset, size_t len) const {
        std::vector<uint8_t> out(len);
        read(offset, out.data(), len);
        return out;
    }
    /// Copies `bytes` to `offset`; Error (ErrorKind::Misuse) past the end.
    void write(uint64_t offset, ByteView bytes) const {
        detail::check(wt_instance_memory_write(handle_.get(), offset, bytes.data, bytes.size));
    }

    /// Ends the instance (Exit::Kind::Cancelled) unless it already ended. Any thread.
    void cancel() const noexcept { wt_instance_cancel(handle_.get()); }
    /// Ends the instance if it still lives, waits until every thread of it stopped, and
    /// gives its first exit; rethrows the first exception a callback or host function
    /// threw. Any number of times; not from its own callbacks or host functions.
    Exit close() const {
        wt_exit_t raw;
        detail::check(wt_instance_close(handle_.get(), &raw));
        Exit exit = Exit::take(raw);
        state_->rethrow();
        return exit;
    }

    wt_instance_t *get() const noexcept { return handle_.get(); }

private:
    template <typename Sig>
    struct Caller_;
    template <typename R, typename... A>
    struct Caller_<R(A...)> {
        template <typename... Args>
        static R call(const wt_instance_t *instance, const detail::RunState *state, const char *name,
                      Args &&...args) {
            static_assert(sizeof...(Args) == sizeof...(A), "call<R(A...)> takes as many arguments as A...");
            return detail::call_export<R, A...>(instance, state, name, static_cast<A>(std::forward<Args>(args))...);
        }
    };
    // Declared first, destroyed last: the C instance calls into it until freed.
    std::unique_ptr<detail::RunState> state_;
    detail::Handle<wt_instance_t, wt_instance_free> handle_;
};

/// The library version, e.g. "0.1.0".
inline std::string version() { return wt_version(); }

}  // namespace wasithreads
