/*
 * Host control through the C API: asynchronous runs and cancel from another host thread,
 * stdio capture/redirection, stdin from bytes, environment, memory cap, module file,
 * cache and validation, engine settings, thread callbacks.
 *
 *   host_control RUST_GUEST.wasm WAT_DIR     prints "host_control: N checks passed"
 *
 * WAT_DIR is tests/guests/wat: the guests every language's tests share.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

int checks = 0;

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

struct capture {
    pthread_mutex_t lock;
    unsigned char *data;
    size_t len, cap, calls;
    int bad_chunk;
};

static void on_output(void *user_data, int32_t tid, const uint8_t *data, size_t len) {
    struct capture *c = user_data;
    pthread_mutex_lock(&c->lock);
    /* For the writers guest: one call = one whole 1000-byte block from thread tid. */
    if (len == 1000) {
        for (size_t i = 0; i < len; i++)
            if (data[i] != data[0]) c->bad_chunk = 1;
        if (data[0] - 'A' + 1 != tid) c->bad_chunk = 1;
    }
    if (c->len + len > c->cap) {
        c->cap = (c->len + len) * 2;
        c->data = realloc(c->data, c->cap);
    }
    memcpy(c->data + c->len, data, len);
    c->len += len;
    c->calls++;
    pthread_mutex_unlock(&c->lock);
}

static atomic_int started, exited;
static void on_start(void *user_data, int32_t tid) {
    (void)user_data;
    (void)tid;
    atomic_fetch_add(&started, 1);
}
static void on_exit_cb(void *user_data, int32_t tid, const wt_thread_exit_t *how) {
    (void)user_data;
    (void)tid;
    if (how->kind == WT_THREAD_TERMINATED) atomic_fetch_add(&exited, 1);
}

static void *drain(void *arg) {
    int fd = *(int *)arg;
    static size_t total;
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) total += (size_t)n;
    return &total;
}

static void *cancel_later(void *run) {
    sleep_ms(30);
    wt_run_cancel(run);
    wt_run_cancel(run); /* twice is fine */
    return NULL;
}

static wt_run_config_t *rust_args(const char *a, const char *b) {
    wt_run_config_t *c = wt_run_config_new();
    expect_ok(wt_run_config_push_arg(c, "rust-threads"));
    expect_ok(wt_run_config_push_arg(c, a));
    if (b) expect_ok(wt_run_config_push_arg(c, b));
    return c;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: host_control RUST_GUEST.wasm WAT_DIR\n");
        return 2;
    }
    char *blocked_wat = read_guest(argv[2], "blocked.wat");
    char *writers_wat = read_guest(argv[2], "writers.wat");
    wt_engine_config_t *ec = wt_engine_config_new();
    wt_engine_config_set_opt_level(ec, 2);
    wt_engine_config_set_interrupt_tick_us(ec, 500);
    wt_engine_config_set_max_wasm_stack(ec, 2 << 20);
    wt_engine_config_set_cache(ec, false);
    wt_engine_t *engine = NULL;
    expect_ok(wt_engine_new(ec, &engine));
    wt_engine_config_free(ec);
    wt_exit_t how;

    /* 1. Asynchronous run, cancelled from another host thread. */
    wt_module_t *blocked = load(engine, blocked_wat);
    wt_run_config_t *config = wt_run_config_new();
    wt_run_config_set_thread_start_callback(config, on_start, NULL);
    wt_run_config_set_thread_exit_callback(config, on_exit_cb, NULL);
    wt_run_t *run = NULL;
    expect_ok(wt_run_start(engine, blocked, config, &run));
    CHECK(run != NULL);
    memset(&how, 0x11, sizeof how);
    CHECK(!wt_run_try_wait(run, &how));
    CHECK(how.code == 0x11111111);
    pthread_t canceller;
    CHECK(pthread_create(&canceller, NULL, cancel_later, run) == 0);
    expect_ok(wt_run_wait(run, &how));
    pthread_join(canceller, NULL);
    CHECK(how.kind == WT_EXIT_CANCELLED && how.tid == -1 && how.message == NULL);
    CHECK(wt_run_try_wait(run, &how) && how.kind == WT_EXIT_CANCELLED);
    expect_ok(wt_run_wait(run, &how)); /* waiting again reports the same */
    CHECK(how.kind == WT_EXIT_CANCELLED);
    wt_run_cancel(run);         /* after the end: nothing happens */
    CHECK(atomic_load(&started) == 4 && atomic_load(&exited) == 4);
    wt_run_free(run);

    /* 2. Freeing a run that is still going cancels and joins it. */
    atomic_store(&exited, 0);
    expect_ok(wt_run_start(engine, blocked, config, &run));
    sleep_ms(20);
    wt_run_free(run);
    CHECK(atomic_load(&exited) == 4);

    /* 3. Timeout on an asynchronous run nobody waits for. */
    wt_run_config_set_timeout_ms(config, 40);
    expect_ok(wt_run_start(engine, blocked, config, &run));
    int polls = 0;
    while (!wt_run_try_wait(run, &how) && polls++ < 2000) sleep_ms(5);
    CHECK(how.kind == WT_EXIT_TIMEOUT);
    wt_run_free(run);
    wt_run_config_free(config);
    wt_module_free(blocked);

    /* 4. Capture stdout from 8 threads: nothing lost, nothing interleaved. */
    wt_module_t *writers = load(engine, writers_wat);
    struct capture cap = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, 0, 0};
    config = wt_run_config_new();
    expect_ok(wt_run_config_set_output_callback(config, 1, on_output, &cap));
    expect_ok(wt_run(engine, writers, config, &how));
    CHECK(how.kind == WT_EXIT_CODE && how.code == 0);
    CHECK(cap.calls == 400 && cap.len == 400000 && !cap.bad_chunk);
    size_t per_letter[8] = {0};
    for (size_t i = 0; i < cap.len; i++) per_letter[cap.data[i] - 'A']++;
    for (int i = 0; i < 8; i++) CHECK(per_letter[i] == 50000);

    /* 5. stdout to a host descriptor (a pipe), and to null. */
    int fds[2];
    CHECK(pipe(fds) == 0);
    expect_ok(wt_run_config_set_output_fd(config, 1, fds[1]));
    close(fds[1]); /* the config holds its own duplicate */
    pthread_t drainer;
    CHECK(pthread_create(&drainer, NULL, drain, &fds[0]) == 0);
    expect_ok(wt_run(engine, writers, config, &how));
    expect_ok(wt_run_config_set_output_null(config, 1)); /* drops the duplicate: EOF for drain */
    void *piped;
    pthread_join(drainer, &piped);
    close(fds[0]);
    CHECK(*(size_t *)piped == 400000);

    /* A guest blocked writing to a full pipe nobody reads is still cancelled promptly. */
    CHECK(pipe(fds) == 0);
    expect_ok(wt_run_config_set_output_fd(config, 1, fds[1]));
    close(fds[1]);
    expect_ok(wt_run_start(engine, writers, config, &run));
    pthread_create(&canceller, NULL, cancel_later, run);
    expect_ok(wt_run_wait(run, &how));
    pthread_join(canceller, NULL);
    CHECK(how.kind == WT_EXIT_CANCELLED);
    wt_run_free(run);
    close(fds[0]);
    /* Now the pipe has no reader: writes fail with EPIPE inside the guest, and the host
     * process gets no SIGPIPE. */
    expect_ok(wt_run(engine, writers, config, &how));
    CHECK(how.kind == WT_EXIT_CODE && how.code == 0);
    expect_ok(wt_run_config_set_output_null(config, 1));
    expect_ok(wt_run(engine, writers, config, &how));
    CHECK(how.kind == WT_EXIT_CODE && how.code == 0);
    expect_error(wt_run_config_set_output_null(config, 3), "stream must be 1");
    expect_error(wt_run_config_set_output_callback(config, 2, NULL, NULL), "cb");
    expect_error(wt_run_config_set_output_fd(config, 1, -1), "not a file descriptor");
    expect_error(wt_run_config_set_output_fd(config, 1, 9999), "cannot duplicate");
    expect_error(wt_run_config_set_output_file(config, 2, "/nonexistent-dir/x"), "nonexistent-dir");
    wt_run_config_free(config);
    wt_module_free(writers);

    /* 6. The Rust guest: from a file, through the module cache, stdin bytes, env. */
    wt_module_t *rust = NULL;
    expect_error(wt_module_load_file(engine, "/nonexistent.wasm", &rust), "nonexistent.wasm");
    expect_ok(wt_module_load_file(engine, argv[1], &rust));
    wt_bytes_t serialized = {NULL, 0};
    expect_ok(wt_module_serialize(rust, &serialized));
    CHECK(serialized.data != NULL && serialized.len > 0);
    wt_module_t *cached = NULL;
    expect_ok(wt_module_deserialize(engine, serialized.data, serialized.len, &cached));
    wt_bytes_free(&serialized);
    CHECK(serialized.data == NULL && serialized.len == 0);
    expect_error(wt_module_deserialize(engine, (const uint8_t *)"junk", 4, &cached), "not a module serialized");

    config = rust_args("echo", NULL);
    const char input[] = "line one\nline two\n";
    expect_ok(wt_run_config_set_stdin_bytes(config, (const uint8_t *)input, strlen(input)));
    memset(&cap, 0, sizeof cap);
    pthread_mutex_init(&cap.lock, NULL);
    expect_ok(wt_run_config_set_output_callback(config, 1, on_output, &cap));
    expect_ok(wt_run(engine, cached, config, &how));
    CHECK(how.kind == WT_EXIT_CODE && how.code == 0);
    CHECK(cap.len == strlen(input) && memcmp(cap.data, input, cap.len) == 0);
    wt_run_config_free(config);

    config = rust_args("env", NULL);
    expect_ok(wt_run_config_push_env(config, "GREETING", "hello"));
    cap.len = 0;
    expect_ok(wt_run_config_set_output_callback(config, 1, on_output, &cap));
    expect_ok(wt_run(engine, rust, config, &how));
    CHECK(cap.len == strlen("GREETING=hello\n") && memcmp(cap.data, "GREETING=hello\n", cap.len) == 0);
    wt_run_config_free(config);

    /* Read-only directory: reading works, writing and escaping do not. */
    char dir[] = "/tmp/wasithreads-ro-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char file[64];
    snprintf(file, sizeof file, "%s/hello.txt", dir);
    FILE *f = fopen(file, "w");
    CHECK(f != NULL);
    fputs("hi", f);
    fclose(f);
    config = rust_args("fs", "read:/d/hello.txt");
    expect_ok(wt_run_config_push_arg(config, "write:/d/new.txt"));
    expect_ok(wt_run_config_push_arg(config, "read:/d/../etc/passwd"));
    expect_ok(wt_run_config_push_arg(config, "read:/etc/passwd"));
    expect_ok(wt_run_config_preopen_dir_readonly(config, dir, "/d"));
    cap.len = 0;
    expect_ok(wt_run_config_set_output_callback(config, 1, on_output, &cap));
    expect_ok(wt_run(engine, rust, config, &how));
    const char *expect = "ok read:/d/hello.txt\nerr write:/d/new.txt\nerr read:/d/../etc/passwd\nerr read:/etc/passwd\n";
    CHECK(cap.len == strlen(expect) && memcmp(cap.data, expect, cap.len) == 0);
    snprintf(file, sizeof file, "%s/new.txt", dir);
    CHECK(access(file, F_OK) != 0);
    snprintf(file, sizeof file, "%s/hello.txt", dir);
    unlink(file);
    rmdir(dir);
    wt_run_config_free(config);

    free(cap.data);
    wt_module_free(cached);
    wt_module_free(rust);

    /* 7. Memory cap: a guest that grows until refused exits with its size in pages. */
    const char *grow =
        "(module (import \"wasi_snapshot_preview1\" \"proc_exit\" (func $exit (param i32)))"
        " (import \"env\" \"memory\" (memory 1 100 shared))"
        " (func (export \"_start\") (block $full (loop $more"
        "  (br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1))) (br $more)))"
        "  (call $exit (memory.size))))";
    wt_module_t *grower = load(engine, grow);
    config = wt_run_config_new();
    wt_run_config_set_max_memory(config, 5 * 65536);
    expect_ok(wt_run(engine, grower, config, &how));
    CHECK(how.kind == WT_EXIT_CODE && how.code == 5);
    wt_run_config_set_max_memory(config, 0);
    expect_ok(wt_run(engine, grower, config, &how));
    CHECK(how.code == 100);
    wt_run_config_free(config);
    wt_module_free(grower);

    /* 7b. What instances take: a module defining 98 memories of 0 pages (each reserves
     * 4 GiB of address space) and spawning until refused. 1024 private memories hold 10
     * instances; the 11th spawn fails and the guest exits with the 9 it got; a cap below
     * one instance refuses the run (WT_ERROR_LIMIT). */
    {
        const char *head = "(module (import \"wasi\" \"thread-spawn\" (func $spawn (param i32) (result i32)))"
                           " (import \"wasi_snapshot_preview1\" \"proc_exit\" (func $exit (param i32)))"
                           " (import \"env\" \"memory\" (memory 1 1 shared))";
        const char *tail = " (func (export \"wasi_thread_start\") (param i32 i32)"
                           "  (drop (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const -1))))"
                           " (func (export \"_start\") (local $n i32)"
                           "  (block $done (loop $more"
                           "   (br_if $done (i32.lt_s (call $spawn (i32.const 0)) (i32.const 0)))"
                           "   (local.set $n (i32.add (local.get $n) (i32.const 1))) (br $more)))"
                           "  (call $exit (local.get $n))))";
        size_t len = strlen(head) + strlen(tail) + 98 * strlen(" (memory 0 0)") + 1;
        char *text = malloc(len);
        CHECK(text != NULL);
        strcpy(text, head);
        for (int i = 0; i < 98; i++) strcat(text, " (memory 0 0)");
        strcat(text, tail);
        wt_module_t *mems = load(engine, text);
        free(text);
        config = wt_run_config_new();
        expect_ok(wt_run(engine, mems, config, &how));
        CHECK(how.kind == WT_EXIT_CODE && how.code == 9);
        wt_exit_clear(&how);
        wt_run_config_set_max_memories(config, 97);
        wt_error_t *err = wt_run(engine, mems, config, &how);
        CHECK(err != NULL && wt_error_kind(err) == WT_ERROR_LIMIT);
        expect_error(err, "limit of 97 private memories");
        wt_run_config_set_max_memories(config, 1024);
        wt_run_config_set_max_instance_bytes(config, 1);
        err = wt_run(engine, mems, config, &how);
        CHECK(err != NULL && wt_error_kind(err) == WT_ERROR_LIMIT);
        expect_error(err, "instance memory limit");
        wt_run_config_free(config);
        wt_module_free(mems);
    }

    /* 8. Validation says what is wrong. */
    const char *unshared = "(module (import \"wasi\" \"thread-spawn\" (func (param i32) (result i32)))"
                           " (memory 1) (func (export \"_start\")))";
    expect_error(wt_module_validate(engine, (const uint8_t *)unshared, strlen(unshared)),
               "has no shared memory");
    expect_ok(wt_module_validate(engine, (const uint8_t *)writers_wat, strlen(writers_wat)));
    expect_error(wt_module_validate(engine, NULL, 3), "bytes");

    /* 9. NULL handling of the new calls. */
    expect_error(wt_run_start(engine, NULL, NULL, &run), "module");
    expect_error(wt_run_wait(NULL, &how), "run");
    CHECK(!wt_run_try_wait(NULL, &how));
    wt_run_cancel(NULL);
    wt_run_free(NULL);
    wt_bytes_free(NULL);
    expect_error(wt_module_serialize(NULL, &serialized), "module");
    expect_error(wt_run_config_set_stdin_bytes(NULL, NULL, 0), "config");
    wt_run_config_set_stdin_null(NULL);
    wt_run_config_inherit_env(NULL, true);

    wt_engine_free(engine);
    free(blocked_wat);
    free(writers_wat);
    printf("host_control: %d checks passed\n", checks);
    return 0;
}
