/* The C side of BenchmarkCallAdd: warm wt_instance_call of the real C plugin's
 * add(i32, i32) -> i32 from one thread, its host functions defined as no-ops; prints the
 * median over ROUNDS rounds of CALLS calls, in ns per call. bench.sh builds and runs it:
 *   cc -O2 -I<include> call_add.c -L<libdir> -lwasithreads -Wl,-rpath,<libdir> -o call_add
 *   ./call_add PLUGIN.wasm [CALLS [ROUNDS]]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "wasithreads.h"

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void check(wt_error_t *err) {
    if (err) {
        fprintf(stderr, "error: %s\n", wt_error_message(err));
        exit(1);
    }
}

static wt_error_t *nop(void *env, wt_caller_t *caller, const wt_val_t *args, size_t nargs, wt_val_t *results,
                       size_t nresults) {
    (void)env, (void)caller, (void)nargs;
    if (nresults == 1) results[0].of.i64 = args[0].of.i64 + args[1].of.i64;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    int calls = argc > 2 ? atoi(argv[2]) : 100000, rounds = argc > 3 ? atoi(argv[3]) : 9;
    if (calls < 1 || rounds < 1) return 2;
    wt_engine_t *engine = NULL;
    wt_module_t *module = NULL;
    wt_instance_t *inst = NULL;
    check(wt_engine_new(NULL, &engine));
    check(wt_module_load_file(engine, argv[1], &module));
    wt_run_config_t *config = wt_run_config_new();
    const wt_valkind_t i32x2[] = {WT_I32, WT_I32}, i64x2[] = {WT_I64, WT_I64}, i64[] = {WT_I64};
    check(wt_run_config_define_func(config, "env", "host_log", i32x2, 2, NULL, 0, nop, NULL, NULL));
    check(wt_run_config_define_func(config, "env", "host_add", i64x2, 2, i64, 1, nop, NULL, NULL));
    check(wt_run_config_define_func(config, "env", "host_block", NULL, 0, NULL, 0, nop, NULL, NULL));
    check(wt_instance_new(engine, module, config, &inst));
    wt_val_t args[2] = {{.kind = WT_I32, .of.i32 = 1}, {.kind = WT_I32, .of.i32 = 2}}, res[1];
    wt_exit_t how;
    for (int i = 0; i < 1000; i++) check(wt_instance_call(inst, "add", args, 2, res, 1, &how)); /* warm up */
    double *t = malloc(sizeof(double) * (size_t)rounds);
    for (int r = 0; r < rounds; r++) {
        double start = now_ns();
        for (int i = 0; i < calls; i++) {
            args[0].of.i32 = i;
            check(wt_instance_call(inst, "add", args, 2, res, 1, &how));
            if (res[0].of.i32 != i + 2) {
                fprintf(stderr, "add(%d, 2) = %d\n", i, res[0].of.i32);
                return 1;
            }
        }
        t[r] = (now_ns() - start) / calls;
    }
    qsort(t, (size_t)rounds, sizeof(double), cmp);
    printf("wt_instance_call add: median %.1f ns/call over %d rounds of %d calls (min %.1f, max %.1f)\n",
           t[rounds / 2], rounds, calls, t[0], t[rounds - 1]);
    check(wt_instance_close(inst, &how));
    wt_exit_clear(&how);
    wt_instance_free(inst);
    wt_run_config_free(config);
    wt_module_free(module);
    wt_engine_free(engine);
    free(t);
    return 0;
}
