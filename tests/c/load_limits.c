/*
 * An engine's load limits (`wt_engine_config_set_max_module_bytes`,
 * `wt_engine_config_set_max_functions`): a module over either is refused with a
 * `WT_ERROR_LIMIT` error saying which, before it is compiled; one at the limit loads;
 * `WT_NO_LOAD_LIMIT` lifts them; the config is copied by `wt_engine_new`.
 *
 *   load_limits     prints "load_limits: N checks passed"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

int checks = 0;

/* A module of `n` defined functions (WAT text) and one import. */
static char *functions_wat(int n) {
    size_t cap = 200 + (size_t)n * 16;
    char *wat = malloc(cap);
    CHECK(wat != NULL);
    size_t len = (size_t)snprintf(wat, cap, "(module (import \"wasi_snapshot_preview1\" \"sched_yield\" (func (result i32)))");
    for (int i = 0; i < n; i++) len += (size_t)snprintf(wat + len, cap - len, " (func)");
    snprintf(wat + len, cap - len, ")");
    return wat;
}

static void expect_limit(wt_error_t *err, const char *needle) {
    CHECK(err != NULL);
    CHECK(wt_error_kind(err) == WT_ERROR_LIMIT);
    expect_error(err, needle);
}

int main(void) {
    char *three = functions_wat(3); /* 4 functions with the import */
    char *two = functions_wat(2);   /* 3 */
    wt_module_t *module = NULL;

    wt_engine_config_t *ec = wt_engine_config_new();
    wt_engine_config_set_max_functions(ec, 3);
    wt_engine_t *engine = NULL;
    expect_ok(wt_engine_new(ec, &engine));
    expect_limit(wt_module_load(engine, (const uint8_t *)three, strlen(three), &module),
                 "the module has 4 functions, more than the 3 this engine loads");
    CHECK(module == NULL);
    wt_module_free(load(engine, two));
    wt_engine_free(engine);

    /* The binary's size counts, not the WAT text's: the 3-function module is 80-some
     * bytes of binary. */
    wt_engine_config_set_max_functions(ec, WT_NO_LOAD_LIMIT);
    wt_engine_config_set_max_module_bytes(ec, 40);
    expect_ok(wt_engine_new(ec, &engine));
    expect_limit(wt_module_load(engine, (const uint8_t *)three, strlen(three), &module),
                 "more than the 40 bytes this engine loads");
    const char *tiny = "(module)";
    wt_module_free(load(engine, tiny));
    wt_engine_free(engine);

    /* The engine copied the config: changing it now changes no engine; lifted, loads pass. */
    wt_engine_config_set_max_module_bytes(ec, WT_NO_LOAD_LIMIT);
    expect_ok(wt_engine_new(ec, &engine));
    wt_engine_config_set_max_module_bytes(ec, 1);
    wt_module_free(load(engine, three));
    wt_engine_free(engine);
    wt_engine_config_free(ec);

    free(three);
    free(two);
    printf("load_limits: %d checks passed\n", checks);
    return 0;
}
