/* The real C plugin (tests/guests/plugin-c, built with clang and wasi-libc) through the
 * C API: its three host functions defined with wt_run_config_define_func, calls from 8
 * host threads at once on guest threads of their own with every result checked (stack,
 * _Thread_local, pthread_self, malloc, mutexes of three kinds, thread-specific data, a
 * condition variable, pthreads inside a call over a buffer the host wrote, host
 * functions from those pthreads, stdout), crashes that end the instance, cancel and
 * timeout with calls in flight and blocking host functions, background threads stopped
 * by close. Run with one argument: the plugin's path. Prints "plugin_real: N checks
 * passed". */
#define _GNU_SOURCE
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

int checks = 0;

/* ---- host functions ---- */

#define MAX_LOG 8192
struct log_entry {
    int32_t tid;
    char text[64];
};
static struct log_entry log_entries[MAX_LOG];
static int log_len = 0;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_long adds = 0;
static atomic_int blocked = 0;

static wt_error_t *host_log(void *env, wt_caller_t *caller, const wt_val_t *args, size_t nargs, wt_val_t *results,
                            size_t nresults) {
    (void)env; (void)results;
    if (nargs != 2 || nresults != 0) return wt_error_new("bad call shape");
    uint8_t *base = wt_caller_memory_data(caller);
    size_t size = wt_caller_memory_size(caller);
    uint32_t ptr = (uint32_t)args[0].of.i32, len = (uint32_t)args[1].of.i32;
    if (base == NULL || (size_t)ptr + len > size || len >= 64) return wt_error_new("bad text");
    pthread_mutex_lock(&log_lock);
    if (log_len == MAX_LOG) {
        pthread_mutex_unlock(&log_lock);
        return wt_error_new("log full");
    }
    struct log_entry *e = &log_entries[log_len++];
    e->tid = wt_caller_tid(caller);
    memcpy(e->text, base + ptr, len);
    e->text[len] = 0;
    pthread_mutex_unlock(&log_lock);
    return NULL;
}

static wt_error_t *host_add(void *env, wt_caller_t *caller, const wt_val_t *args, size_t nargs, wt_val_t *results,
                            size_t nresults) {
    (void)env; (void)caller;
    if (nargs != 2 || nresults != 1 || args[0].kind != WT_I64 || results[0].kind != WT_I64)
        return wt_error_new("bad call shape");
    atomic_fetch_add(&adds, 1);
    results[0].of.i64 = args[0].of.i64 + args[1].of.i64;
    return NULL;
}

/* Blocks as a host function waiting on a queue or a socket would, polling the end
 * descriptor beside its own, until the instance ends. */
static wt_error_t *host_block(void *env, wt_caller_t *caller, const wt_val_t *args, size_t nargs, wt_val_t *results,
                              size_t nresults) {
    (void)env; (void)args; (void)nargs; (void)results; (void)nresults;
    return block_until_end(caller, &blocked);
}

/* Guest stdout, every write appended. */
static char out_buf[1 << 16];
static size_t out_len = 0;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_output(void *user_data, int32_t tid, const uint8_t *data, size_t len) {
    (void)user_data; (void)tid;
    pthread_mutex_lock(&out_lock);
    if (out_len + len < sizeof out_buf) {
        memcpy(out_buf + out_len, data, len);
        out_len += len;
    }
    pthread_mutex_unlock(&out_lock);
}

/* The tid that logged `text` (exactly once). */
static int32_t tid_of(const char *text) {
    int32_t tid = -1;
    int n = 0;
    pthread_mutex_lock(&log_lock);
    for (int i = 0; i < log_len; i++)
        if (strcmp(log_entries[i].text, text) == 0) {
            tid = log_entries[i].tid;
            n++;
        }
    pthread_mutex_unlock(&log_lock);
    CHECK(n == 1);
    return tid;
}

/* ---- calls ---- */

static wt_val_t i32v(int32_t x) {
    wt_val_t v = {.kind = WT_I32};
    v.of.i32 = x;
    return v;
}

static wt_instance_t *inst;

/* name(args) -> one result of `kind`, which must return. */
static wt_val_t call1(const char *name, const wt_val_t *args, size_t nargs, wt_valkind_t kind) {
    wt_val_t r;
    wt_error_t *err = wt_instance_call(inst, name, args, nargs, &r, 1, NULL);
    if (err != NULL) fprintf(stderr, "%s: %s\n", name, wt_error_message(err));
    CHECK(err == NULL);
    CHECK(r.kind == kind);
    return r;
}

static int32_t call_i32(const char *name, const wt_val_t *args, size_t nargs) {
    return call1(name, args, nargs, WT_I32).of.i32;
}

static int64_t call_i64(const char *name, const wt_val_t *args, size_t nargs) {
    return call1(name, args, nargs, WT_I64).of.i64;
}

static int32_t stack_sum(int32_t n) {
    uint32_t s = 0;
    for (uint32_t i = 0; i < 256; i++) s += (uint32_t)n * i;
    return (int32_t)s;
}

#define ROUNDS 300
#define SPAWN_EVERY 50
#define BUF_LEN 4096
#define CALLERS 8

static pthread_barrier_t all_started;
static int32_t self_ids[CALLERS];
static int32_t worker_tids[CALLERS];

static void *caller_thread(void *arg) {
    int32_t k = (int32_t)(intptr_t)arg;
    int32_t me = call_i32("self_id", NULL, 0);
    wt_val_t x = i32v(k);
    CHECK(call_i32("log_message", &x, 1) == 0);
    char text[64];
    snprintf(text, sizeof text, "plugin says %d", k);
    worker_tids[k] = tid_of(text);
    CHECK(worker_tids[k] > 0);
    self_ids[k] = me;
    /* Until every caller has its guest thread, none goes on: their ids are compared
     * among host threads alive together. */
    pthread_barrier_wait(&all_started);
    for (int j = 0; j < CALLERS; j++) CHECK(j == k || self_ids[j] != me);

    wt_val_t size = i32v(BUF_LEN * 4);
    int32_t ptr = call_i32("malloc", &size, 1);
    CHECK(ptr > 0);
    static _Thread_local uint32_t data[BUF_LEN];
    for (int32_t i = 0; i < ROUNDS; i++) {
        int32_t n = k * 1000 + i;
        wt_val_t a[3] = {i32v(i), i32v(k)};
        CHECK(call_i32("add", a, 2) == i + k);
        x = i32v(n);
        CHECK(call_i32("stack_sum", &x, 1) == stack_sum(n));
        CHECK(call_i32("tls_counter_bump", NULL, 0) == i + 1);
        CHECK(call_i32("self_id", NULL, 0) == me);
        x = i32v(1 + (n * 37) % 3000);
        CHECK(call_i32("alloc_check", &x, 1) == x.of.i32);
        a[0] = i32v(i % 3);
        a[1] = i32v(5);
        CHECK(call_i32("mutex_add", a, 2) == 0);
        x = i32v(k * 100000 + i);
        CHECK(call_i32("tsd_set", &x, 1) == 0);
        CHECK(call_i32("tsd_get", NULL, 0) == k * 100000 + i);
        if (i % SPAWN_EVERY == 0) {
            x = i32v(20);
            CHECK(call_i32("cond_pingpong", &x, 1) == 40);
            uint64_t want = 0;
            for (uint32_t j = 0; j < BUF_LEN; j++) {
                data[j] = (j * 2654435761u) ^ (uint32_t)n;
                want += data[j];
            }
            expect_ok(wt_instance_memory_write(inst, (uint64_t)ptr, (const uint8_t *)data, sizeof data));
            int32_t threads = 1 + i / SPAWN_EVERY % 4;
            a[0] = i32v(ptr);
            a[1] = i32v(BUF_LEN);
            a[2] = i32v(threads);
            CHECK(call_i64("parallel_sum", a, 3) == (int64_t)want);
            x = i32v(4);
            CHECK(call_i32("call_host_from_threads", &x, 1) == 4);
            x = i32v(n);
            snprintf(text, sizeof text, "plugin line %d\n", n);
            CHECK(call_i32("print_line", &x, 1) == (int32_t)strlen(text));
        }
    }
    x = i32v(ptr);
    expect_ok(wt_instance_call(inst, "free", &x, 1, NULL, 0, NULL));
    return NULL;
}

/* ---- helpers for the end ---- */

static wt_engine_t *engine;
static wt_module_t *module;
static wt_run_config_t *config;

static wt_instance_t *make(void) {
    wt_instance_t *i = NULL;
    expect_ok(wt_instance_new(engine, module, config, &i));
    CHECK(wt_instance_call_mode(i) == WT_CALLS_PARALLEL);
    return i;
}

/* Calls name(args) expecting the instance's end; returns its exit. */
static wt_exit_t call_ended(const char *name, const wt_val_t *args, size_t nargs, size_t nresults) {
    wt_val_t r[1];
    wt_exit_t how = {0};
    wt_error_t *err = wt_instance_call(inst, name, args, nargs, r, nresults, &how);
    CHECK(err != NULL);
    if (wt_error_kind(err) != WT_ERROR_ENDED) fprintf(stderr, "%s: %s\n", name, wt_error_message(err));
    CHECK(wt_error_kind(err) == WT_ERROR_ENDED);
    wt_error_free(err);
    return how;
}

static int same_exit(const wt_exit_t *a, const wt_exit_t *b) {
    if (a->kind != b->kind || a->code != b->code || a->tid != b->tid) return 0;
    if ((a->message == NULL) != (b->message == NULL)) return 0;
    return a->message == NULL || strcmp(a->message, b->message) == 0;
}

/* Calls add until the instance ends; returns that exit (heap). */
static void *add_until_ended(void *arg) {
    (void)arg;
    wt_val_t a[2] = {i32v(1), i32v(2)}, r;
    for (;;) {
        wt_exit_t *how = calloc(1, sizeof *how);
        wt_error_t *err = wt_instance_call(inst, "add", a, 2, &r, 1, how);
        if (err == NULL) {
            CHECK(r.of.i32 == 3);
            free(how);
            continue;
        }
        CHECK(wt_error_kind(err) == WT_ERROR_ENDED);
        wt_error_free(err);
        return how;
    }
}

static void *call_to_end(void *arg) {
    const char *name = arg;
    wt_val_t x = i32v(strcmp(name, "spin") == 0 ? INT32_MAX : 3), r;
    size_t nargs = strcmp(name, "block") == 0 ? 0 : 1;
    wt_exit_t how = {0};
    wt_error_t *err;
    /* A spin that finishes before the cancel goes round again. */
    while ((err = wt_instance_call(inst, name, &x, nargs, &r, 1, &how)) == NULL) CHECK(strcmp(name, "spin") == 0);
    CHECK(wt_error_kind(err) == WT_ERROR_ENDED);
    wt_error_free(err);
    CHECK(how.kind == WT_EXIT_CANCELLED);
    wt_exit_clear(&how);
    return NULL;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}


/* The thread count once the engine's idle pool threads (0.5 s idle) have gone. */
static int settled_threads(void) {
    usleep(1200000);
    return thread_count();
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PLUGIN_WASM\n", argv[0]);
        return 2;
    }
    expect_ok(wt_engine_new(NULL, &engine));
    expect_ok(wt_module_load_file(engine, argv[1], &module));
    config = wt_run_config_new();
    wt_valkind_t i32i32[2] = {WT_I32, WT_I32}, i64i64[2] = {WT_I64, WT_I64}, i64 = WT_I64;
    expect_ok(wt_run_config_define_func(config, "env", "host_log", i32i32, 2, NULL, 0, host_log, NULL, NULL));
    expect_ok(wt_run_config_define_func(config, "env", "host_add", i64i64, 2, &i64, 1, host_add, NULL, NULL));
    expect_ok(wt_run_config_define_func(config, "env", "host_block", NULL, 0, NULL, 0, host_block, NULL, NULL));
    expect_ok(wt_run_config_set_output_callback(config, WT_STDOUT, on_output, NULL));

    /* 8 host threads x ROUNDS rounds of about ten calls, at once. */
    inst = make();
    pthread_t t[CALLERS];
    pthread_barrier_init(&all_started, NULL, CALLERS);
    for (int k = 0; k < CALLERS; k++) CHECK(pthread_create(&t[k], NULL, caller_thread, (void *)(intptr_t)k) == 0);
    for (int k = 0; k < CALLERS; k++) pthread_join(t[k], NULL);
    int spawning = 0;
    for (int i = 0; i < ROUNDS; i++) spawning += i % SPAWN_EVERY == 0;
    for (int32_t kind = 0; kind < 3; kind++) {
        int32_t want = 0;
        for (int i = 0; i < ROUNDS; i++) want += i % 3 == kind ? CALLERS * 5 : 0;
        wt_val_t x = i32v(kind);
        CHECK(call_i32("mutex_counter", &x, 1) == want);
    }
    /* Host functions called from pthreads made inside calls: on tids of their own. */
    int from_threads = 0;
    for (int i = 0; i < log_len; i++) {
        if (strncmp(log_entries[i].text, "thread ", 7) != 0) continue;
        from_threads++;
        CHECK(log_entries[i].tid > 0);
        for (int k = 0; k < CALLERS; k++) CHECK(log_entries[i].tid != worker_tids[k]);
    }
    CHECK(from_threads == CALLERS * spawning * 4);
    CHECK(atomic_load(&adds) == CALLERS * spawning * 4);
    /* Every printed line arrived, whole, once. */
    pthread_mutex_lock(&out_lock);
    out_buf[out_len] = 0;
    int lines = 0;
    for (size_t i = 0; i < out_len; i++) lines += out_buf[i] == '\n';
    CHECK(lines == CALLERS * spawning);
    for (int k = 0; k < CALLERS; k++)
        for (int i = 0; i < ROUNDS; i += SPAWN_EVERY) {
            char line[64];
            snprintf(line, sizeof line, "plugin line %d\n", k * 1000 + i);
            char *at = strstr(out_buf, line);
            CHECK(at != NULL && (at == out_buf || at[-1] == '\n'));
        }
    pthread_mutex_unlock(&out_lock);
    wt_exit_t how;
    expect_ok(wt_instance_close(inst, &how));
    CHECK(how.kind == WT_EXIT_CANCELLED);
    wt_instance_free(inst);

    /* crash(1): a trap in the calling thread; crash(2): in a pthread of the call;
     * crash(3): exit(3). That call, calls in flight elsewhere and every later call get
     * the same first exit. */
    for (int32_t code = 1; code <= 3; code++) {
        inst = make();
        pthread_t others[4];
        for (int j = 0; j < 4; j++) CHECK(pthread_create(&others[j], NULL, add_until_ended, NULL) == 0);
        wt_val_t x = i32v(100 + code);
        CHECK(call_i32("log_message", &x, 1) == 0);
        char text[64];
        snprintf(text, sizeof text, "plugin says %d", 100 + code);
        int32_t me = tid_of(text);
        x = i32v(code);
        wt_exit_t first = call_ended("crash", &x, 1, 1);
        if (code == 3) {
            CHECK(first.kind == WT_EXIT_CODE && first.code == 3 && first.tid == me);
        } else {
            CHECK(first.kind == WT_EXIT_TRAP && first.message != NULL);
            CHECK(strstr(first.message, "wasm backtrace") != NULL);
            CHECK(code == 1 ? first.tid == me : (first.tid > 0 && first.tid != me));
            CHECK(strstr(first.message, code == 1 ? "crash" : "trap_thread") != NULL);
        }
        for (int j = 0; j < 4; j++) {
            void *other;
            pthread_join(others[j], &other);
            CHECK(same_exit(other, &first));
            wt_exit_clear(other);
            free(other);
        }
        wt_val_t two[2] = {i32v(1), i32v(1)};
        wt_exit_t later = call_ended("add", two, 2, 1);
        CHECK(same_exit(&later, &first));
        wt_exit_clear(&later);
        expect_ok(wt_instance_close(inst, &later));
        CHECK(same_exit(&later, &first));
        wt_exit_clear(&later);
        wt_exit_clear(&first);
        wt_instance_free(inst);
    }

    /* Cancel with 8 spinning calls and blocking host functions (in a call's thread and in
     * 3 pthreads of another call) in flight: all return the cancel, well before the long
     * teardown grace would have let the instance give up on them. */
    wt_run_config_set_teardown_grace_ms(config, 60000);
    inst = make();
    atomic_store(&blocked, 0);
    pthread_t calls[10];
    for (int j = 0; j < 8; j++) CHECK(pthread_create(&calls[j], NULL, call_to_end, "spin") == 0);
    CHECK(pthread_create(&calls[8], NULL, call_to_end, "block") == 0);
    CHECK(pthread_create(&calls[9], NULL, call_to_end, "block_in_threads") == 0);
    for (int j = 0; j < 60000 && atomic_load(&blocked) < 4; j++) usleep(1000);
    CHECK(atomic_load(&blocked) == 4);
    usleep(100000);
    double start = now();
    wt_instance_cancel(inst);
    for (int j = 0; j < 10; j++) pthread_join(calls[j], NULL);
    double took = now() - start;
    CHECK(took < 20.0); /* not the 60 s grace: stopped, not abandoned */
    expect_ok(wt_instance_close(inst, &how));
    CHECK(how.kind == WT_EXIT_CANCELLED);
    wt_instance_free(inst);

    /* The config's timeout stops a call blocked in a host function. */
    wt_run_config_set_timeout_ms(config, 1000);
    inst = make();
    how = call_ended("block", NULL, 0, 1);
    CHECK(how.kind == WT_EXIT_TIMEOUT);
    wt_instance_free(inst);
    wt_run_config_set_timeout_ms(config, WT_NO_TIMEOUT);

    /* Background pthreads run between calls; close stops and joins them: no OS thread
     * is left. */
    inst = make(); /* warm-up */
    wt_instance_free(inst);
    int threads0 = settled_threads();
    inst = make();
    wt_val_t four = i32v(4);
    CHECK(call_i32("start_workers", &four, 1) == 0);
    int64_t first = call_i64("worker_count", NULL, 0);
    usleep(200000);
    int64_t second = call_i64("worker_count", NULL, 0);
    CHECK(second > first);
    CHECK(thread_count() >= threads0 + 4);
    expect_ok(wt_instance_close(inst, &how));
    CHECK(how.kind == WT_EXIT_CANCELLED);
    wt_instance_free(inst);
    CHECK(settled_threads() == threads0);

    wt_run_config_free(config);
    wt_module_free(module);
    wt_engine_free(engine);
    printf("plugin_real: %d checks passed\n", checks);
    return 0;
}
