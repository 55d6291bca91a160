/*
 * wt_run_cancel from a signal handler (the Ctrl-C pattern): a helper thread sends SIGINT
 * to the main thread every ~100 us while the main thread starts runs of a guest that never
 * ends by itself and waits for each. The handler cancels the run in progress, whatever the
 * main thread is doing in the library when the signal lands (starting the run, waiting
 * for it and supervising it, or between runs). Every run ends cancelled, and nothing
 * deadlocks: an alarm ends the program if anything hangs.
 *
 *   signal_cancel WAT_DIR     prints "signal_cancel: N checks passed"
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

int checks = 0;

/* The run the handler cancels; only the main thread sets it, and the handler runs only
 * on the main thread (the signal is sent there), so it never sees a freed run. */
static _Atomic(wt_run_t *) current = NULL;
static atomic_int delivered = 0;
static atomic_int errno_changed = 0;
static atomic_int stop_sending = 0;

static void on_sigint(int sig) {
    (void)sig;
    int saved = errno;
    errno = 12345;
    wt_run_t *run = atomic_load(&current);
    if (run != NULL) {
        wt_run_cancel(run);
        atomic_fetch_add(&delivered, 1);
    }
    if (errno != 12345) atomic_store(&errno_changed, 1);
    errno = saved;
}

static void *sender(void *arg) {
    pthread_t target = *(pthread_t *)arg;
    while (!atomic_load(&stop_sending)) {
        pthread_kill(target, SIGINT);
        struct timespec ts = {0, 100 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: signal_cancel WAT_DIR\n");
        return 2;
    }
    alarm(120); /* a deadlock ends the program (SIGALRM) instead of hanging the test */
    char *wat = read_guest(argv[1], "blocked.wat");
    wt_engine_t *engine = NULL;
    expect_ok(wt_engine_new(NULL, &engine));
    wt_module_t *module = load(engine, wat);
    free(wat);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    CHECK(sigaction(SIGINT, &sa, NULL) == 0);

    pthread_t me = pthread_self(), helper;
    CHECK(pthread_create(&helper, NULL, sender, &me) == 0);
    int runs = 200;
    for (int i = 0; i < runs; i++) {
        wt_run_t *run = NULL;
        expect_ok(wt_run_start(engine, module, NULL, &run));
        atomic_store(&current, run);
        wt_exit_t how;
        expect_ok(wt_run_wait(run, &how));
        atomic_store(&current, NULL);
        if (how.kind != WT_EXIT_CANCELLED) fprintf(stderr, "run %d: kind %d\n", i, (int)how.kind);
        CHECK(how.kind == WT_EXIT_CANCELLED);
        wt_exit_clear(&how);
        wt_run_free(run);
    }
    atomic_store(&stop_sending, 1);
    CHECK(pthread_join(helper, NULL) == 0);
    CHECK(atomic_load(&delivered) >= runs);
    CHECK(atomic_load(&errno_changed) == 0);
    wt_module_free(module);
    wt_engine_free(engine);
    printf("signal_cancel: %d checks passed (%d cancels from the handler)\n", checks, atomic_load(&delivered));
    return 0;
}
