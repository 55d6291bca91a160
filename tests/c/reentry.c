/*
 * Waiting for or freeing a run from inside its own callbacks: thread start, thread exit,
 * output, and diagnostic (on a guest thread: a refused thread-spawn; on the background
 * supervisor: a thread that outlived the teardown grace). `wt_run_wait` there returns an
 * error, `wt_run_try_wait` false, and `wt_run_free` cancels the run and returns; the
 * host's own `wt_run_wait` still returns. An alarm ends the program if anything hangs.
 *
 *   reentry WAT_DIR     prints "reentry: N checks passed"
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

enum kind { K_START, K_EXIT, K_OUTPUT, K_DIAG_GUEST, K_DIAG_SUPERVISOR, K_COUNT };
static const char *const kind_name[K_COUNT] = {"thread start", "thread exit", "output", "diagnostic (guest)",
                                               "diagnostic (supervisor)"};

struct ctx {
    _Atomic(wt_run_t *) run;
    enum kind kind;
    int free_it;
    atomic_int entered;     /* the chosen callback did its calls (once) */
    atomic_int refused;     /* wt_run_wait gave the error, wt_run_try_wait false */
    atomic_int output_slow; /* the first output call sleeps past the grace */
};

/* The run, once wt_run_start has returned it (a callback can come first). */
static wt_run_t *the_run(struct ctx *c) {
    wt_run_t *run;
    while ((run = atomic_load(&c->run)) == NULL) sleep_ms(1);
    return run;
}

static void reenter(struct ctx *c) {
    if (atomic_exchange(&c->entered, 1)) return;
    wt_run_t *run = the_run(c);
    if (c->free_it) {
        wt_run_free(run); /* returns at once: the release completes after this callback */
        atomic_store(&c->refused, 1);
        return;
    }
    wt_exit_t how;
    memset(&how, 0x11, sizeof how);
    wt_error_t *err = wt_run_wait(run, &how);
    int ok = err != NULL && strstr(wt_error_message(err), "own callbacks") != NULL && how.code == 0x11111111;
    wt_error_free(err);
    ok = ok && !wt_run_try_wait(run, &how) && how.code == 0x11111111;
    atomic_store(&c->refused, ok ? 1 : -1);
}

static void on_start(void *user_data, int32_t tid) {
    (void)tid;
    struct ctx *c = user_data;
    if (c->kind == K_START) reenter(c);
}

static void on_exit_cb(void *user_data, int32_t tid, const wt_thread_exit_t *how) {
    (void)tid, (void)how;
    struct ctx *c = user_data;
    if (c->kind == K_EXIT) reenter(c);
}

static void on_output(void *user_data, int32_t tid, const uint8_t *data, size_t len) {
    (void)tid, (void)data, (void)len;
    struct ctx *c = user_data;
    if (c->kind == K_OUTPUT) reenter(c);
    if (c->kind == K_DIAG_SUPERVISOR && !atomic_exchange(&c->output_slow, 1)) {
        wt_run_cancel(the_run(c));
        sleep_ms(300); /* past the 20 ms grace: the supervisor reports this thread */
    }
}

static void on_diagnostic(void *user_data, int32_t tid, const char *message) {
    (void)tid;
    struct ctx *c = user_data;
    if ((c->kind == K_DIAG_GUEST && strstr(message, "thread-spawn failed") != NULL) ||
        (c->kind == K_DIAG_SUPERVISOR && strstr(message, "had not stopped") != NULL))
        reenter(c);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: reentry WAT_DIR\n");
        return 2;
    }
    alarm(120); /* a deadlock ends the program (SIGALRM) instead of hanging the test */
    char *writers_wat = read_guest(argv[1], "writers.wat");
    wt_engine_t *engine = NULL;
    expect_ok(wt_engine_new(NULL, &engine));
    wt_module_t *writers = load(engine, writers_wat);
    for (int free_it = 0; free_it < 2; free_it++) {
        for (int k = 0; k < K_COUNT; k++) {
            struct ctx c = {.kind = (enum kind)k, .free_it = free_it};
            atomic_init(&c.run, NULL);
            wt_run_config_t *config = wt_run_config_new();
            wt_run_config_set_thread_start_callback(config, on_start, &c);
            wt_run_config_set_thread_exit_callback(config, on_exit_cb, &c);
            wt_run_config_set_diagnostic_callback(config, on_diagnostic, &c);
            expect_ok(wt_run_config_set_output_callback(config, WT_STDOUT, on_output, &c));
            /* With no thread allowed, main's spawns fail (and main, waiting for the
               writers, is ended by the timeout). */
            if (k == K_DIAG_GUEST) wt_run_config_set_max_threads(config, 0);
            wt_run_config_set_timeout_ms(config, k == K_DIAG_GUEST ? 200 : 60000);
            wt_run_config_set_teardown_grace_ms(config, 20);
            wt_run_t *run = NULL;
            expect_ok(wt_run_start(engine, writers, config, &run));
            atomic_store(&c.run, run);
            if (free_it) {
                while (atomic_load(&c.refused) == 0) sleep_ms(1);
                /* The handle is gone; the release completes in the background. Give it
                   time to touch `c` if it wrongly would, before `c` goes. */
                sleep_ms(400);
            } else {
                wt_exit_t how;
                expect_ok(wt_run_wait(run, &how));
                wt_exit_clear(&how);
                if (atomic_load(&c.refused) != 1) fprintf(stderr, "%s: not refused\n", kind_name[k]);
                CHECK(atomic_load(&c.refused) == 1);
                wt_run_free(run);
            }
            CHECK(atomic_load(&c.entered) == 1);
            wt_run_config_free(config);
        }
    }
    wt_module_free(writers);
    wt_engine_free(engine);
    free(writers_wat);
    printf("reentry: %d checks passed\n", checks);
    return 0;
}
