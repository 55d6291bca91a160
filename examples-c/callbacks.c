/*
 * callbacks: a host that stays in charge of its guest.
 *  - captures the guest's stdout through a callback, per writing thread;
 *  - counts how each guest thread ended through the thread-exit callback;
 *  - cancels a guest that would run forever from a second host thread.
 * Prints a summary that the CTest test checks.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "wasithreads.h"

/* Four threads each print "hello from thread N\n"; then main spins forever. */
static const char GUEST[] =
    "(module\n"
    " (import \"wasi\" \"thread-spawn\" (func $spawn (param i32) (result i32)))\n"
    " (import \"wasi_snapshot_preview1\" \"fd_write\" (func $write (param i32 i32 i32 i32) (result i32)))\n"
    " (import \"env\" \"memory\" (memory 1 1 shared))\n"
    " (data (i32.const 256) \"hello from thread 0\\n\")\n"
    " (func (export \"wasi_thread_start\") (param $tid i32) (param $n i32) (local $at i32)\n"
    "  (local.set $at (i32.add (i32.const 512) (i32.mul (local.get $n) (i32.const 64))))\n"
    "  (memory.copy (local.get $at) (i32.const 256) (i32.const 20))\n"
    "  (i32.store8 offset=18 (local.get $at) (i32.add (i32.const 48) (local.get $n)))\n"
    "  (i32.store offset=32 (local.get $at) (local.get $at))\n"
    "  (i32.store offset=36 (local.get $at) (i32.const 20))\n"
    "  (drop (call $write (i32.const 1) (i32.add (local.get $at) (i32.const 32)) (i32.const 1)\n"
    "                     (i32.add (local.get $at) (i32.const 40))))\n"
    "  (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))\n"
    "  (drop (memory.atomic.wait32 (i32.const 4) (i32.const 0) (i64.const -1))))\n"
    " (func (export \"_start\") (local $n i32)\n"
    "  (loop $s (drop (call $spawn (local.get $n)))\n"
    "   (local.set $n (i32.add (local.get $n) (i32.const 1)))\n"
    "   (br_if $s (i32.lt_u (local.get $n) (i32.const 4))))\n"
    "  (loop $forever (br $forever))))\n";

struct host {
    pthread_mutex_t lock;
    char captured[4][64]; /* by tid - 1 */
    atomic_int lines, terminated, other_endings;
};

static void on_output(void *user_data, int32_t tid, const uint8_t *data, size_t len) {
    struct host *h = user_data;
    pthread_mutex_lock(&h->lock);
    if (tid >= 1 && tid <= 4 && len < sizeof h->captured[0]) {
        memcpy(h->captured[tid - 1], data, len);
        h->captured[tid - 1][len] = 0;
    }
    pthread_mutex_unlock(&h->lock);
    atomic_fetch_add(&h->lines, 1);
}

static void on_thread_exit(void *user_data, int32_t tid, const wt_thread_exit_t *how) {
    struct host *h = user_data;
    (void)tid;
    if (how->kind == WT_THREAD_TERMINATED)
        atomic_fetch_add(&h->terminated, 1);
    else
        atomic_fetch_add(&h->other_endings, 1);
}

/* The second host thread: waits until the guest printed four lines, then cancels it. */
struct canceller {
    struct host *host;
    wt_run_t *run;
};

static void *cancel_when_done(void *arg) {
    struct canceller *c = arg;
    struct timespec tick = {0, 1000000};
    for (int i = 0; i < 20000 && atomic_load(&c->host->lines) < 4; i++) nanosleep(&tick, NULL);
    wt_run_cancel(c->run);
    return NULL;
}

static int check(wt_error_t *err) {
    if (err) {
        fprintf(stderr, "callbacks: %s\n", wt_error_message(err));
        wt_error_free(err);
        return 1;
    }
    return 0;
}

int main(void) {
    struct host host = {PTHREAD_MUTEX_INITIALIZER, {{0}}, 0, 0, 0};
    wt_engine_t *engine = NULL;
    wt_module_t *module = NULL;
    if (check(wt_engine_new(NULL, &engine))) return 1;
    if (check(wt_module_load(engine, (const uint8_t *)GUEST, strlen(GUEST), &module))) return 1;

    wt_run_config_t *config = wt_run_config_new();
    if (check(wt_run_config_set_output_callback(config, 1, on_output, &host))) return 1;
    wt_run_config_set_thread_exit_callback(config, on_thread_exit, &host);

    wt_run_t *run = NULL;
    if (check(wt_run_start(engine, module, config, &run))) return 1;
    pthread_t t;
    struct canceller c = {&host, run};
    pthread_create(&t, NULL, cancel_when_done, &c);

    wt_exit_t how;
    if (check(wt_run_wait(run, &how))) return 1;
    pthread_join(t, NULL);

    for (int i = 0; i < 4; i++) printf("captured from thread %d: %s", i + 1, host.captured[i]);
    printf("run ended: %s\n", how.kind == WT_EXIT_CANCELLED ? "cancelled" : "something else");
    printf("threads terminated: %d, other endings: %d\n", atomic_load(&host.terminated),
           atomic_load(&host.other_endings));

    wt_exit_clear(&how);
    wt_run_free(run);
    wt_run_config_free(config);
    wt_module_free(module);
    wt_engine_free(engine);
    return how.kind == WT_EXIT_CANCELLED ? 0 : 1;
}
