/* Plugins through the C API: host functions, an instance of tests/guests/wat/plugin.wat
 * (run with one argument, that directory), export calls from 8 host threads at once on
 * guest threads of their own, guest memory, a trap that ends the instance, cancel with
 * calls in flight, a blocking host function stopped by the end, the finalizer.
 * Prints "plugin: N checks passed". */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "check.h"

int checks = 0;

static atomic_int twice_calls = 0;
static atomic_int finalized = 0;
static atomic_int blocked = 0;

static wt_error_t *twice(void *env, wt_caller_t *caller, const wt_val_t *args, size_t nargs, wt_val_t *results,
                         size_t nresults) {
    if (env != (void *)&twice_calls || nargs != 1 || nresults != 1 || args[0].kind != WT_I32 ||
        results[0].kind != WT_I32)
        return wt_error_new("bad call shape");
    if (wt_caller_memory_data(caller) == NULL || wt_caller_memory_size(caller) != 2 * 65536)
        return wt_error_new("no memory");
    if (args[0].of.i32 == 13) return wt_error_new("unlucky 13");
    atomic_fetch_add(&twice_calls, 1);
    results[0].of.i32 = 2 * args[0].of.i32;
    return NULL;
}

/* Blocks until the instance ends, as a host function waiting on a queue or socket would:
 * polling the end descriptor beside its own. */
static wt_error_t *block(void *env, wt_caller_t *caller, const wt_val_t *args, size_t nargs, wt_val_t *results,
                         size_t nresults) {
    (void)env; (void)args; (void)nargs; (void)results; (void)nresults;
    return block_until_end(caller, &blocked);
}

static void finalize(void *env) {
    (void)env;
    atomic_fetch_add(&finalized, 1);
}

static wt_val_t i32v(int32_t x) {
    wt_val_t v = {.kind = WT_I32};
    v.of.i32 = x;
    return v;
}

/* Calls `name(args)` expecting one i32 result. */
static int32_t call_i32(wt_instance_t *inst, const char *name, const wt_val_t *args, size_t nargs) {
    wt_val_t r;
    expect_ok(wt_instance_call(inst, name, args, nargs, &r, 1, NULL));
    CHECK(r.kind == WT_I32);
    return r.of.i32;
}

static wt_instance_t *shared;
static pthread_barrier_t all_started;

static void *caller_thread(void *arg) {
    int k = (int)(intptr_t)arg;
    int32_t me = call_i32(shared, "whoami", NULL, 0);
    CHECK(me > 0);
    /* Until every caller has its guest thread, none exits (whose guest thread another
     * could then take over). */
    pthread_barrier_wait(&all_started);
    for (int i = 0; i < 2000; i++) {
        wt_val_t a[2] = {i32v(i), i32v(k)};
        CHECK(call_i32(shared, "add", a, 2) == i + k);
        CHECK(call_i32(shared, "whoami", NULL, 0) == me); /* the same guest thread each time */
        wt_val_t x = i32v(100 + i);
        CHECK(call_i32(shared, "twice_plus", &x, 1) == 201 + 2 * i);
    }
    return (void *)(intptr_t)me;
}

static void *spinner(void *arg) {
    (void)arg;
    wt_val_t n = i32v(2000000000), r;
    wt_exit_t how;
    wt_error_t *err = wt_instance_call(shared, "spin", &n, 1, &r, 1, &how);
    CHECK(err != NULL && wt_error_kind(err) == WT_ERROR_ENDED);
    CHECK(how.kind == WT_EXIT_CANCELLED);
    wt_error_free(err);
    wt_exit_clear(&how);
    return NULL;
}

static void *blocker(void *arg) {
    (void)arg;
    wt_exit_t how;
    wt_error_t *err = wt_instance_call(shared, "block", NULL, 0, NULL, 0, &how);
    CHECK(err != NULL && wt_error_kind(err) == WT_ERROR_ENDED);
    wt_error_free(err);
    wt_exit_clear(&how);
    return NULL;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static wt_instance_t *make(wt_engine_t *engine, wt_module_t *module, wt_run_config_t *config) {
    wt_instance_t *inst = NULL;
    expect_ok(wt_instance_new(engine, module, config, &inst));
    CHECK(wt_instance_call_mode(inst) == WT_CALLS_PARALLEL);
    return inst;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s GUESTS_DIR\n", argv[0]);
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/plugin.wat", argv[1]);
    wt_engine_t *engine = NULL;
    wt_module_t *module = NULL;
    expect_ok(wt_engine_new(NULL, &engine));
    expect_ok(wt_module_load_file(engine, path, &module));

    /* Without the host functions the module imports, no instance: the error names one. */
    wt_instance_t *inst = NULL;
    wt_error_t *err = wt_instance_new(engine, module, NULL, &inst);
    CHECK(wt_error_kind(err) == WT_ERROR_LINK);
    expect_error(err, "unknown import `env::");
    CHECK(inst == NULL);

    wt_run_config_t *config = wt_run_config_new();
    wt_valkind_t i32 = WT_I32;
    expect_ok(wt_run_config_define_func(config, "env", "twice", &i32, 1, &i32, 1, twice, &twice_calls, finalize));
    expect_ok(wt_run_config_define_func(config, "env", "block", NULL, 0, NULL, 0, block, NULL, finalize));
    expect_error(wt_run_config_define_func(config, "env", "block", NULL, 0, NULL, 0, block, NULL, finalize),
                 "already defined");
    CHECK(atomic_load(&finalized) == 1); /* the refused definition's env */

    /* Calls, memory, a host function from a thread the guest started inside a call. */
    shared = make(engine, module, config);
    CHECK(call_i32(shared, "inited", NULL, 0) == 7);
    const uint8_t data[4] = {1, 2, 3, 250};
    expect_ok(wt_instance_memory_write(shared, 4096, data, sizeof data));
    uint8_t *base = wt_instance_memory_data(shared);
    CHECK(base != NULL && wt_instance_memory_size(shared) == 2 * 65536);
    CHECK(memcmp(base + 4096, data, 4) == 0);
    wt_val_t sum_args[2] = {i32v(4096), i32v(4)}, sum;
    expect_ok(wt_instance_call(shared, "sum", sum_args, 2, &sum, 1, NULL));
    CHECK(sum.kind == WT_I64 && sum.of.i64 == 256);
    uint8_t back[4];
    expect_ok(wt_instance_memory_read(shared, 4096, back, 4));
    CHECK(memcmp(back, data, 4) == 0);
    expect_error(wt_instance_memory_read(shared, 2 * 65536 - 2, back, 4), "outside the memory");
    wt_val_t x = i32v(21);
    CHECK(call_i32(shared, "spawn_twice", &x, 1) == 42);

    /* The exports it can call, in the module's order, and their types. */
    size_t nexports = wt_instance_export_count(shared);
    CHECK(nexports >= 10 && wt_instance_export_name(shared, nexports) == NULL);
    CHECK(strcmp(wt_instance_export_name(shared, 0), "wasi_thread_start") == 0);
    int saw_sum = 0;
    for (size_t i = 0; i < nexports; i++) {
        const char *name = wt_instance_export_name(shared, i);
        CHECK(name != NULL && strncmp(name, "wasithreads:", 12) != 0);
        saw_sum |= strcmp(name, "sum") == 0;
    }
    CHECK(saw_sum);
    wt_valkind_t kinds[2] = {WT_F64, WT_F64}, rkind = WT_F64;
    size_t np = 99, nr = 99;
    expect_ok(wt_instance_export_type(shared, "sum", kinds, 2, &np, &rkind, 1, &nr));
    CHECK(np == 2 && nr == 1 && kinds[0] == WT_I32 && kinds[1] == WT_I32 && rkind == WT_I64);
    kinds[0] = WT_F64;
    expect_ok(wt_instance_export_type(shared, "sum", kinds, 1, &np, NULL, 0, &nr)); /* too short: counts only */
    CHECK(np == 2 && nr == 1 && kinds[0] == WT_I32 && kinds[1] == WT_I32);
    expect_ok(wt_instance_export_type(shared, "boom", NULL, 0, &np, NULL, 0, &nr));
    CHECK(np == 0 && nr == 0);
    err = wt_instance_export_type(shared, "nope", NULL, 0, &np, NULL, 0, &nr);
    CHECK(wt_error_kind(err) == WT_ERROR_MISUSE);
    expect_error(err, "no callable export `nope`");
    expect_error(wt_instance_export_type(shared, "sum", NULL, 2, &np, NULL, 0, &nr), "`params` is NULL");
    expect_error(wt_instance_export_type(shared, "sum", NULL, 0, NULL, NULL, 0, &nr), "NULL");
    expect_error(wt_instance_export_type(NULL, "sum", NULL, 0, &np, NULL, 0, &nr), "NULL");
    CHECK(wt_instance_export_count(NULL) == 0 && wt_instance_export_name(NULL, 0) == NULL);

    /* Misuse leaves the instance alive. */
    wt_val_t r;
    err = wt_instance_call(shared, "nope", NULL, 0, &r, 1, NULL);
    CHECK(wt_error_kind(err) == WT_ERROR_MISUSE);
    expect_error(err, "no callable export `nope`");
    err = wt_instance_call(shared, "add", &x, 1, &r, 1, NULL);
    CHECK(wt_error_kind(err) == WT_ERROR_MISUSE);
    expect_error(err, "1 given, 2 expected");
    wt_val_t two[2] = {i32v(1), i32v(2)};
    err = wt_instance_call(shared, "add", two, 2, &r, 0, NULL);
    CHECK(wt_error_kind(err) == WT_ERROR_MISUSE);
    wt_error_free(err);

    /* 8 host threads x 2000 rounds at once, each on a guest thread of its own. */
    pthread_t t[8];
    pthread_barrier_init(&all_started, NULL, 8);
    for (int k = 0; k < 8; k++) CHECK(pthread_create(&t[k], NULL, caller_thread, (void *)(intptr_t)k) == 0);
    int32_t seen[8];
    for (int k = 0; k < 8; k++) {
        void *me;
        pthread_join(t[k], &me);
        seen[k] = (int32_t)(intptr_t)me;
        for (int j = 0; j < k; j++) CHECK(seen[j] != seen[k]); /* host threads alive together never share one */
    }
    CHECK(atomic_load(&twice_calls) >= 8 * 2000 + 1);

    /* A host function's error traps the calling thread: the instance ends, every later
     * call reports that first exit at once, close gives it too. */
    wt_exit_t how;
    x = i32v(13);
    err = wt_instance_call(shared, "twice_plus", &x, 1, &r, 1, &how);
    CHECK(wt_error_kind(err) == WT_ERROR_ENDED);
    wt_error_free(err);
    CHECK(how.kind == WT_EXIT_TRAP && how.tid > 0);
    CHECK(strstr(how.message, "host function `env::twice` failed: unlucky 13") != NULL);
    CHECK(strstr(how.message, "twice_plus") != NULL || strstr(how.message, "wasm backtrace") != NULL);
    int32_t trapped = how.tid;
    wt_exit_clear(&how);
    err = wt_instance_call(shared, "add", two, 2, &r, 1, &how);
    CHECK(wt_error_kind(err) == WT_ERROR_ENDED && how.kind == WT_EXIT_TRAP && how.tid == trapped);
    wt_error_free(err);
    wt_exit_clear(&how);
    expect_ok(wt_instance_close(shared, &how));
    CHECK(how.kind == WT_EXIT_TRAP && how.tid == trapped);
    wt_exit_clear(&how);
    wt_instance_free(shared);

    /* Cancel with 8 calls in flight (and one in a blocking host function): all return
     * within milliseconds. */
    shared = make(engine, module, config);
    for (int k = 0; k < 8; k++) CHECK(pthread_create(&t[k], NULL, spinner, NULL) == 0);
    pthread_t b;
    CHECK(pthread_create(&b, NULL, blocker, NULL) == 0);
    while (!atomic_load(&blocked)) usleep(1000);
    usleep(50000);
    double start = now();
    wt_instance_cancel(shared);
    for (int k = 0; k < 8; k++) pthread_join(t[k], NULL);
    pthread_join(b, NULL);
    double took = now() - start;
    CHECK(took < 2.0); /* a generous bound: the spins and the host call end at once */
    expect_ok(wt_instance_close(shared, &how));
    CHECK(how.kind == WT_EXIT_CANCELLED);
    wt_exit_clear(&how);
    wt_instance_free(shared);

    /* proc_exit in a call ends the instance with its code. */
    shared = make(engine, module, config);
    x = i32v(9);
    err = wt_instance_call(shared, "quit", &x, 1, NULL, 0, &how);
    CHECK(wt_error_kind(err) == WT_ERROR_ENDED && how.kind == WT_EXIT_CODE && how.code == 9);
    wt_error_free(err);
    wt_exit_clear(&how);
    wt_instance_free(shared);

    /* The finalizers run once the config and every instance made with it are gone. */
    CHECK(atomic_load(&finalized) == 1);
    wt_run_config_free(config);
    CHECK(atomic_load(&finalized) == 3);

    wt_module_free(module);
    wt_engine_free(engine);
    printf("plugin: %d checks passed\n", checks);
    return 0;
}
