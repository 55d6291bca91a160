/*
 * The C API, exercised the way a C host uses it: load -> run -> exit kinds -> errors.
 * Built and run by the c_api tests (tests/integration/c_api.rs) against include/wasithreads.h and libwasithreads.so.
 *
 *   api_test            run every check; prints "api_test: N checks passed" on success
 *   api_test run FILE [ARGS...]
 *                       run a module file with inherited stdio; exit status = guest code,
 *                       "trap tid=N" + message on stderr and status 134 for a trap
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

int checks = 0;

/* A threaded guest: main spawns a thread with argument MODE, waits until it has started,
 * then runs MAIN_TAIL. Mode 0: the thread traps. Mode 1: it waits forever. */
#define THREADED(MAIN_TAIL)                                                           \
    "(module\n"                                                                       \
    " (import \"wasi\" \"thread-spawn\" (func $spawn (param i32) (result i32)))\n"   \
    " (import \"wasi_snapshot_preview1\" \"proc_exit\" (func $exit (param i32)))\n"  \
    " (import \"env\" \"memory\" (memory 1 1 shared))\n"                             \
    " (func (export \"wasi_thread_start\") (param i32 i32)\n"                         \
    "  (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))\n"                    \
    "  (drop (memory.atomic.notify (i32.const 0) (i32.const 1)))\n"                  \
    "  (if (i32.eqz (local.get 1)) (then unreachable))\n"                            \
    "  (drop (memory.atomic.wait32 (i32.const 8) (i32.const 0) (i64.const -1))))\n"  \
    " (func (export \"_start\")\n"                                                    \
    "  (drop (call $spawn (i32.const 1)))\n"                                          \
    "  (drop (call $spawn (i32.const 1)))\n"                                          \
    "  (drop (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const -1)))\n"   \
    "  " MAIN_TAIL "))"

struct counts {
    atomic_int returned, exited, trapped, terminated, total;
    /* Terminated threads that said where they were ("wasm backtrace:" and frames). */
    atomic_int backtraces;
    atomic_int last_exit_code;
};

#define BACKTRACE_START "wasm backtrace:\n    0: "

static void on_exit_cb(void *user_data, int32_t tid, const wt_thread_exit_t *how) {
    struct counts *c = user_data;
    (void)tid;
    atomic_fetch_add(&c->total, 1);
    switch (how->kind) {
    case WT_THREAD_RETURNED: atomic_fetch_add(&c->returned, 1); break;
    case WT_THREAD_EXITED:
        atomic_fetch_add(&c->exited, 1);
        atomic_store(&c->last_exit_code, how->code);
        break;
    case WT_THREAD_TRAPPED:
        atomic_fetch_add(&c->trapped, 1);
        if (how->message == NULL || strstr(how->message, "unreachable") == NULL) exit(3);
        break;
    case WT_THREAD_TERMINATED:
        atomic_fetch_add(&c->terminated, 1);
        if (how->backtrace && strncmp(how->backtrace, BACKTRACE_START, strlen(BACKTRACE_START)) == 0)
            atomic_fetch_add(&c->backtraces, 1);
        break;
    }
    /* Only a terminated thread has a backtrace field (a trap's is in its message). */
    if (how->kind != WT_THREAD_TERMINATED && how->backtrace != NULL) exit(5);
}

static int run_file(int argc, char **argv) {
    FILE *f = fopen(argv[2], "rb");
    if (!f) { perror(argv[2]); return 2; }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *bytes = malloc(len > 0 ? (size_t)len : 1);
    if (fread(bytes, 1, (size_t)len, f) != (size_t)len) { perror("read"); return 2; }
    fclose(f);

    wt_engine_t *engine = NULL;
    wt_module_t *module = NULL;
    expect_ok(wt_engine_new(NULL, &engine));
    wt_error_t *err = wt_module_load(engine, bytes, (size_t)len, &module);
    free(bytes);
    if (err) {
        fprintf(stderr, "load: %s\n", wt_error_message(err));
        wt_error_free(err);
        wt_engine_free(engine);
        return 2;
    }
    wt_run_config_t *config = wt_run_config_new();
    for (int i = 2; i < argc; i++) expect_ok(wt_run_config_push_arg(config, argv[i]));
    wt_exit_t exit_info;
    err = wt_run(engine, module, config, &exit_info);
    int status;
    if (err) {
        fprintf(stderr, "run: %s\n", wt_error_message(err));
        wt_error_free(err);
        status = 2;
    } else if (exit_info.kind == WT_EXIT_CODE) {
        status = exit_info.code;
    } else {
        fprintf(stderr, "trap tid=%d\n%s\n", exit_info.tid, exit_info.message ? exit_info.message : "");
        status = 134;
    }
    wt_exit_clear(&exit_info);
    wt_run_config_free(config);
    wt_module_free(module);
    wt_engine_free(engine);
    return status;
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "run") == 0) return run_file(argc, argv);

    /* The header and the library are of one release, and the macros agree. */
    CHECK(wt_version() != NULL && strcmp(wt_version(), WT_VERSION) == 0);
    char version[32];
    snprintf(version, sizeof version, "%d.%d.%d", WT_VERSION_MAJOR, WT_VERSION_MINOR, WT_VERSION_PATCH);
    CHECK(strcmp(version, WT_VERSION) == 0);

    /* NULL arguments give errors, not crashes. */
    expect_error(wt_engine_new(NULL, NULL), "engine_out");
    wt_engine_t *engine = NULL;
    expect_ok(wt_engine_new(NULL, &engine));
    wt_module_t *module = NULL;
    expect_error(wt_module_load(NULL, (const uint8_t *)"x", 1, &module), "engine");
    expect_error(wt_module_load(engine, NULL, 4, &module), "bytes");
    expect_error(wt_module_load(engine, (const uint8_t *)"x", 1, NULL), "module_out");
    CHECK(module == NULL);
    CHECK(wt_error_message(NULL) == NULL);
    wt_error_free(NULL);
    wt_module_free(NULL);
    wt_engine_free(NULL);
    wt_run_config_free(NULL);
    wt_exit_clear(NULL);
    wt_run_config_set_max_threads(NULL, 3);
    expect_error(wt_run_config_push_arg(NULL, "a"), "config");

    /* Bad modules. */
    expect_error(wt_module_load(engine, (const uint8_t *)"", 0, &module), "empty");
    const uint8_t garbage[] = {0xde, 0xad, 0xbe, 0xef, 0x00, 0x01};
    expect_error(wt_module_load(engine, garbage, sizeof garbage, &module), "not a WebAssembly module");
    const uint8_t truncated[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00};
    expect_error(wt_module_load(engine, truncated, sizeof truncated, &module), "invalid WebAssembly");
    const char *unshared =
        "(module (import \"wasi\" \"thread-spawn\" (func (param i32) (result i32)))"
        " (import \"env\" \"memory\" (memory 1 1)) (func (export \"_start\")))";
    expect_error(wt_module_load(engine, (const uint8_t *)unshared, strlen(unshared), &module),
                 "shared memory");
    CHECK(module == NULL);
    /* A function import is the host's to define with the run: without it the run fails. */
    wt_module_t *unknown = load(engine, "(module (import \"env\" \"f\" (func)) (func (export \"_start\")))");
    wt_exit_t unstarted;
    expect_error(wt_run(engine, unknown, NULL, &unstarted), "unknown import `env::f`");
    wt_module_free(unknown);

    /* A module without _start loads but cannot run. */
    wt_module_t *no_start = load(engine, "(module (memory (export \"memory\") 1))");
    wt_exit_t exit_info;
    memset(&exit_info, 0x5a, sizeof exit_info);
    expect_error(wt_run(engine, no_start, NULL, &exit_info), "_start");
    CHECK(exit_info.code == 0x5a5a5a5a); /* untouched on failure */
    wt_module_free(no_start);

    /* A plain WASI program (no threads, unshared memory) runs. */
    wt_module_t *plain = load(engine,
        "(module (import \"wasi_snapshot_preview1\" \"proc_exit\" (func $exit (param i32)))"
        " (memory (export \"memory\") 1) (func (export \"_start\") (call $exit (i32.const 12))))");
    expect_ok(wt_run(engine, plain, NULL, &exit_info));
    CHECK(exit_info.kind == WT_EXIT_CODE && exit_info.code == 12 && exit_info.tid == 0);
    CHECK(exit_info.message == NULL);
    wt_module_free(plain);

    /* A trap in a spawned thread ends the run; the others are terminated. */
    wt_module_t *trap = load(engine, THREADED("(drop (call $spawn (i32.const 0))) (loop $l (br $l))"));
    struct counts counts = {0};
    wt_run_config_t *config = wt_run_config_new();
    CHECK(config != NULL);
    wt_run_config_set_thread_exit_callback(config, on_exit_cb, &counts);
    expect_ok(wt_run(engine, trap, config, &exit_info));
    CHECK(exit_info.kind == WT_EXIT_TRAP);
    CHECK(exit_info.tid == 3);
    CHECK(exit_info.message != NULL && strstr(exit_info.message, "unreachable") != NULL);
    wt_exit_clear(&exit_info);
    CHECK(exit_info.message == NULL);
    wt_exit_clear(&exit_info); /* twice is fine */
    CHECK(atomic_load(&counts.total) == 4);
    CHECK(atomic_load(&counts.trapped) == 1);
    CHECK(atomic_load(&counts.terminated) == 3);

    /* A module from another engine is refused. */
    wt_engine_t *other = NULL;
    expect_ok(wt_engine_new(NULL, &other));
    expect_error(wt_run(other, trap, NULL, &exit_info), "different engine");
    wt_engine_free(other);
    wt_module_free(trap);

    /* proc_exit in main while two threads wait forever; the config is reused. */
    wt_module_t *exiting = load(engine, THREADED("(call $exit (i32.const 5))"));
    memset(&counts, 0, sizeof counts);
    expect_ok(wt_run(engine, exiting, config, &exit_info));
    CHECK(exit_info.kind == WT_EXIT_CODE && exit_info.code == 5 && exit_info.tid == 0);
    CHECK(atomic_load(&counts.total) == 3);
    CHECK(atomic_load(&counts.exited) == 1 && atomic_load(&counts.last_exit_code) == 5);
    CHECK(atomic_load(&counts.terminated) == 2);

    /* Thread limit 1: the second spawn fails, the guest goes on and exits 5 as before. */
    wt_run_config_set_max_threads(config, 1);
    memset(&counts, 0, sizeof counts);
    expect_ok(wt_run(engine, exiting, config, &exit_info));
    CHECK(exit_info.kind == WT_EXIT_CODE && exit_info.code == 5);
    CHECK(atomic_load(&counts.total) == 2);

    /* Timeout on a guest that never ends by itself. */
    wt_module_t *forever = load(engine, THREADED("(loop $l (br $l))"));
    wt_run_config_set_max_threads(config, 16);
    wt_run_config_set_timeout_ms(config, 200);
    memset(&counts, 0, sizeof counts);
    expect_ok(wt_run(engine, forever, config, &exit_info));
    CHECK(exit_info.kind == WT_EXIT_TIMEOUT && exit_info.tid == -1);
    /* Every thread was in wasm (two waiting, main looping): each says where. */
    CHECK(atomic_load(&counts.terminated) == 3);
    CHECK(atomic_load(&counts.backtraces) == 3);
    wt_module_free(forever);

    /* Bad strings for config setters. */
    expect_error(wt_run_config_push_env(config, "A=B", "c"), "=");
    expect_error(wt_run_config_push_env(config, "A", NULL), "value");
    const char bad_utf8[] = {(char)0xff, (char)0xfe, 0};
    expect_error(wt_run_config_push_arg(config, bad_utf8), "UTF-8");
    expect_ok(wt_run_config_preopen_dir(config, "/nonexistent-wasithreads-dir", "/"));
    expect_error(wt_run(engine, exiting, config, &exit_info), "nonexistent-wasithreads-dir");

    wt_run_config_free(config);
    wt_module_free(exiting);
    wt_engine_free(engine);
    printf("api_test: %d checks passed\n", checks);
    return 0;
}
