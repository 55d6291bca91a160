/* The C side of BenchmarkRunTiny: warm runs of a module whose _start is empty, on one
 * engine and module with the default config, each timed; prints the median in µs.
 * "sync" (default) uses wt_run, "async" wt_run_start + wt_run_wait + wt_run_free (the
 * path the Go binding takes when the context can be cancelled). bench.sh builds and runs it:
 *   cc -O2 -I<include> run_tiny.c -L<libdir> -lwasithreads -Wl,-rpath,<libdir> -o run_tiny
 *   ./run_tiny [RUNS] [sync|async]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wasithreads.h"

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void check(wt_error_t *err) {
    if (err) {
        fprintf(stderr, "error: %s\n", wt_error_message(err));
        exit(1);
    }
}

int main(int argc, char **argv) {
    int runs = argc > 1 ? atoi(argv[1]) : 20000;
    int async = argc > 2 && strcmp(argv[2], "async") == 0;
    if (runs < 1) return 2;
    static const char tiny[] = "(module (func (export \"_start\")))";
    wt_engine_t *engine = NULL;
    wt_module_t *module = NULL;
    check(wt_engine_new(NULL, &engine));
    check(wt_module_load(engine, (const uint8_t *)tiny, strlen(tiny), &module));
    wt_exit_t how;
    for (int i = 0; i < 100; i++) { /* warm up */
        check(wt_run(engine, module, NULL, &how));
        wt_exit_clear(&how);
    }
    double *t = malloc(sizeof(double) * (size_t)runs), total = 0;
    for (int i = 0; i < runs; i++) {
        double start = now_us();
        if (async) {
            wt_run_t *run = NULL;
            check(wt_run_start(engine, module, NULL, &run));
            check(wt_run_wait(run, &how));
            wt_run_free(run);
        } else {
            check(wt_run(engine, module, NULL, &how));
        }
        t[i] = now_us() - start;
        total += t[i];
        if (how.kind != WT_EXIT_CODE || how.code != 0) return 1;
        wt_exit_clear(&how);
    }
    qsort(t, (size_t)runs, sizeof(double), cmp);
    printf("C %s: %d warm runs, median %.2f us/run, mean %.2f us/run\n", async ? "async" : "sync", runs, t[runs / 2], total / runs);
    free(t);
    wt_module_free(module);
    wt_engine_free(engine);
    return 0;
}
