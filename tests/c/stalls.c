/*
 * One run cannot stall another, and a run's writers stop with it, wherever they wait:
 * - the host's stdout is a pipe nobody reads: run A's writers wait for room; run B,
 *   writing to the same stdout, is cancelled and returns at once (it used to wait for a
 *   process-wide lock that A's writer held, and took the whole 5 s grace);
 * - the host's stdout is a terminal, then a socket, with no room: cancel returns at once
 *   (a write used to block in write(2) out of teardown's reach), and the host's own
 *   descriptor keeps its flags (no O_NONBLOCK set on it);
 * - an output callback takes 300 ms while other threads queue for it: after cancel, no
 *   queued thread calls it (they used to, one after another).
 * Each case checks that the run ended cancelled, every thread of it terminated (none had
 * to be left past the grace), no callback came after wt_run_free, and the process has
 * no more threads than before. Bounds are generous (3 s where the grace is 5 s): they
 * catch waiting for the grace, not slowness. An alarm ends the program if it hangs.
 *
 *   stalls WAT_DIR     prints "stalls: N checks passed"; stop times go to stderr
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

int checks = 0;

/* Where the guests' writes may block: the grace they must not need. */
#define BOUND_MS 3000.0

/* Eight threads each write 65 520 bytes to stdout with each fd_write, forever (chunks
   larger than the room a full terminal or socket has left); main waits forever. */
static const char *const BIG_WRITERS =
    "(module\n"
    "  (import \"wasi\" \"thread-spawn\" (func $spawn (param i32) (result i32)))\n"
    "  (import \"wasi_snapshot_preview1\" \"fd_write\" (func $write (param i32 i32 i32 i32) (result i32)))\n"
    "  (import \"env\" \"memory\" (memory 2 2 shared))\n"
    "  (func (export \"wasi_thread_start\") (param i32 i32)\n"
    "    (loop $l (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))) (br $l)))\n"
    "  (func (export \"_start\") (local $n i32)\n"
    "    (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 65520))\n"
    "    (loop $s (drop (call $spawn (local.get $n)))\n"
    "      (local.set $n (i32.add (local.get $n) (i32.const 1)))\n"
    "      (br_if $s (i32.lt_u (local.get $n) (i32.const 8))))\n"
    "    (drop (memory.atomic.wait32 (i32.const 12) (i32.const 0) (i64.const -1)))))\n";

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}


/* Waits (bounded) until the process has at most `baseline` threads: the engine's idle
   pool threads leave after 0.5 s. */
static void expect_threads_back_to(int baseline) {
    for (int i = 0; i < 500 && thread_count() > baseline; i++) sleep_ms(10);
    if (thread_count() > baseline) fprintf(stderr, "threads: %d, before: %d\n", thread_count(), baseline);
    CHECK(thread_count() <= baseline);
}

/* What one run's callbacks saw. */
struct seen {
    atomic_int exits;      /* thread-exit callbacks */
    atomic_int terminated; /* ... of threads stopped by the run's end */
    atomic_int returned;   /* ... of writers done before the stream filled up */
    atomic_int unstopped;  /* diagnostics of threads that had not stopped */
    atomic_int outputs;    /* output callbacks made */
    atomic_int after_free; /* callbacks made after wt_run_free returned */
    atomic_int freed;
};

static void on_exit_cb(void *user_data, int32_t tid, const wt_thread_exit_t *how) {
    struct seen *s = user_data;
    if (atomic_load(&s->freed)) atomic_fetch_add(&s->after_free, 1);
    atomic_fetch_add(&s->exits, 1);
    if (how->kind == WT_THREAD_TERMINATED) atomic_fetch_add(&s->terminated, 1);
    if (how->kind == WT_THREAD_RETURNED && tid != 0) atomic_fetch_add(&s->returned, 1);
}

static void on_diagnostic(void *user_data, int32_t tid, const char *message) {
    (void)tid;
    struct seen *s = user_data;
    if (atomic_load(&s->freed)) atomic_fetch_add(&s->after_free, 1);
    if (strstr(message, "had not stopped") != NULL) {
        fprintf(stderr, "diagnostic: %s\n", message);
        atomic_fetch_add(&s->unstopped, 1);
    }
}

/* Takes 300 ms per call. */
static void slow_output(void *user_data, int32_t tid, const uint8_t *data, size_t len) {
    (void)tid, (void)data, (void)len;
    struct seen *s = user_data;
    if (atomic_load(&s->freed)) atomic_fetch_add(&s->after_free, 1);
    atomic_fetch_add(&s->outputs, 1);
    sleep_ms(300);
}

static wt_run_t *start(wt_engine_t *engine, wt_module_t *module, struct seen *s, int callback) {
    wt_run_config_t *config = wt_run_config_new();
    wt_run_config_set_thread_exit_callback(config, on_exit_cb, s);
    wt_run_config_set_diagnostic_callback(config, on_diagnostic, s);
    if (callback) expect_ok(wt_run_config_set_output_callback(config, WT_STDOUT, slow_output, s));
    wt_run_t *run = NULL;
    expect_ok(wt_run_start(engine, module, config, &run));
    wt_run_config_free(config);
    return run;
}

/* Cancels `run`, waits for it and frees it; checks how it ended (the 9 threads of the
   guest all ended, terminated but for writers that were done before the stream filled
   up, none left past the grace); returns how long the cancel took to return from
   wt_run_wait. */
static double cancel_and_check(const char *what, wt_run_t *run, struct seen *s) {
    double t0 = now_ms();
    wt_run_cancel(run);
    wt_exit_t how;
    expect_ok(wt_run_wait(run, &how));
    double took = now_ms() - t0;
    CHECK(how.kind == WT_EXIT_CANCELLED);
    wt_exit_clear(&how);
    wt_run_free(run);
    atomic_store(&s->freed, 1);
    fprintf(stderr, "stalls: %s: cancel to return %.2f ms\n", what, took);
    if (took >= BOUND_MS) fprintf(stderr, "%s: took %.0f ms\n", what, took);
    CHECK(took < BOUND_MS);
    CHECK(atomic_load(&s->unstopped) == 0);
    CHECK(atomic_load(&s->exits) == 9);
    CHECK(atomic_load(&s->terminated) + atomic_load(&s->returned) == 9);
    return took;
}

/* Makes `fd` the process's stdout for a while; returns the saved stdout. */
static int stdout_to(int fd) {
    fflush(stdout);
    int saved = dup(1);
    CHECK(saved >= 0 && dup2(fd, 1) == 1);
    close(fd);
    return saved;
}

static void stdout_back(int saved) {
    CHECK(dup2(saved, 1) == 1);
    close(saved);
}

/* Row 1: A blocks on a full stdout pipe; B, on the same stdout, is cancelled. */
static void two_runs_on_a_full_pipe(wt_engine_t *engine, wt_module_t *module) {
    int p[2];
    CHECK(pipe(p) == 0);
    int baseline = thread_count();
    int saved = stdout_to(p[1]);
    int flags = fcntl(1, F_GETFL);
    struct seen a = {0}, b = {0};
    wt_run_t *run_a = start(engine, module, &a, 0);
    sleep_ms(200); /* A fills the pipe and waits for room */
    wt_run_t *run_b = start(engine, module, &b, 0);
    sleep_ms(100);
    cancel_and_check("pipe nobody reads, the other run cancelled", run_b, &b);
    cancel_and_check("pipe nobody reads, the blocked run cancelled", run_a, &a);
    CHECK(fcntl(1, F_GETFL) == flags);
    stdout_back(saved);
    close(p[0]);
    sleep_ms(100);
    CHECK(atomic_load(&a.after_free) == 0 && atomic_load(&b.after_free) == 0);
    expect_threads_back_to(baseline);
}

/* Row 2: stdout is `fd` (a terminal, a socket) with no room. */
static void full_stdout(wt_engine_t *engine, wt_module_t *module, const char *what, int fd) {
    int baseline = thread_count();
    int saved = stdout_to(fd);
    int flags = fcntl(1, F_GETFL);
    struct seen s = {0};
    wt_run_t *run = start(engine, module, &s, 0);
    sleep_ms(300); /* the writers fill it */
    cancel_and_check(what, run, &s);
    CHECK(fcntl(1, F_GETFL) == flags);
    stdout_back(saved);
    sleep_ms(100);
    CHECK(atomic_load(&s.after_free) == 0);
    expect_threads_back_to(baseline);
}

static void full_terminal(wt_engine_t *engine, wt_module_t *module) {
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    CHECK(master >= 0 && grantpt(master) == 0 && unlockpt(master) == 0);
    int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
    CHECK(slave >= 0 && isatty(slave));
    full_stdout(engine, module, "terminal nobody reads", slave);
    close(master);
}

static void full_socket(wt_engine_t *engine, wt_module_t *module) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    full_stdout(engine, module, "socket nobody reads", sv[0]);
    close(sv[1]);
}

/* Row 4: an output callback of 300 ms, 8 writers queued for it, cancel during the first
   call: no other call follows. */
static void queued_for_a_slow_callback(wt_engine_t *engine, wt_module_t *module) {
    int baseline = thread_count();
    struct seen s = {0};
    wt_run_t *run = start(engine, module, &s, 1);
    while (atomic_load(&s.outputs) == 0) sleep_ms(1);
    sleep_ms(50); /* the other writers queue for the callback */
    cancel_and_check("writers queued for a 300 ms output callback", run, &s);
    if (atomic_load(&s.outputs) != 1) fprintf(stderr, "output callbacks: %d\n", atomic_load(&s.outputs));
    CHECK(atomic_load(&s.outputs) == 1);
    sleep_ms(400);
    CHECK(atomic_load(&s.outputs) == 1 && atomic_load(&s.after_free) == 0);
    expect_threads_back_to(baseline);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: stalls WAT_DIR\n");
        return 2;
    }
    alarm(120); /* a hang ends the program (SIGALRM) instead of the test suite */
    char *writers_wat = read_guest(argv[1], "writers.wat");
    wt_engine_t *engine = NULL;
    expect_ok(wt_engine_new(NULL, &engine));
    wt_module_t *writers = load(engine, writers_wat);
    wt_module_t *big_writers = load(engine, BIG_WRITERS);
    two_runs_on_a_full_pipe(engine, big_writers);
    full_terminal(engine, big_writers);
    full_socket(engine, big_writers);
    queued_for_a_slow_callback(engine, writers);
    wt_module_free(writers);
    wt_module_free(big_writers);
    wt_engine_free(engine);
    free(writers_wat);
    printf("stalls: %d checks passed\n", checks);
    return 0;
}
