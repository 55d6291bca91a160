/*
 * NULL for every pointer argument of every export: each call returns an error naming the
 * argument, returns false/NULL, or does nothing — and the process carries on.
 * Prints "null_args: N checks passed".
 */
#include "check.h"

int checks = 0;

#define NULL_ERROR(call, name) expect_error((call), name)

static void exit_cb(void *u, int32_t t, const wt_thread_exit_t *h) { (void)u; (void)t; (void)h; }
static void start_cb(void *u, int32_t t) { (void)u; (void)t; }
static void diag_cb(void *u, int32_t t, const char *m) { (void)u; (void)t; (void)m; }
static void out_cb(void *u, int32_t t, const uint8_t *d, size_t n) { (void)u; (void)t; (void)d; (void)n; }
static wt_error_t *func_cb(void *e, wt_caller_t *c, const wt_val_t *a, size_t na, wt_val_t *r, size_t nr) {
    (void)e; (void)c; (void)a; (void)na; (void)r; (void)nr;
    return NULL;
}
static int finalized = 0;
static void finalizer(void *env) { (void)env; finalized++; }

int main(void) {
    static const char WAT[] = "(module (memory (export \"memory\") 1) (func (export \"_start\")))";
    const uint8_t *bytes = (const uint8_t *)WAT;
    size_t len = strlen(WAT);
    wt_engine_t *engine = NULL;
    wt_module_t *module = NULL;
    wt_run_t *run = NULL;
    wt_exit_t exit_info;
    wt_bytes_t serialized = {NULL, 0};

    /* Engine and its config. */
    NULL_ERROR(wt_engine_new(NULL, NULL), "engine_out");
    wt_engine_config_free(NULL);
    wt_engine_config_set_opt_level(NULL, 1);
    wt_engine_config_set_cache(NULL, true);
    wt_engine_config_set_max_wasm_stack(NULL, 1 << 20);
    wt_engine_config_set_interrupt_tick_us(NULL, 100);
    wt_engine_config_set_max_module_bytes(NULL, 1);
    wt_engine_config_set_max_functions(NULL, 1);
    wt_engine_free(NULL);
    expect_ok(wt_engine_new(NULL, &engine));

    /* Modules. */
    NULL_ERROR(wt_module_load(NULL, bytes, len, &module), "engine");
    NULL_ERROR(wt_module_load(engine, NULL, len, &module), "bytes");
    NULL_ERROR(wt_module_load(engine, bytes, len, NULL), "module_out");
    NULL_ERROR(wt_module_load_file(NULL, "x.wasm", &module), "engine");
    NULL_ERROR(wt_module_load_file(engine, NULL, &module), "path");
    NULL_ERROR(wt_module_load_file(engine, "x.wasm", NULL), "module_out");
    NULL_ERROR(wt_module_validate(NULL, bytes, len), "engine");
    NULL_ERROR(wt_module_validate(engine, NULL, len), "bytes");
    NULL_ERROR(wt_module_serialize(NULL, &serialized), "module");
    NULL_ERROR(wt_module_deserialize(NULL, bytes, len, &module), "engine");
    NULL_ERROR(wt_module_deserialize(engine, NULL, len, &module), "bytes");
    NULL_ERROR(wt_module_deserialize(engine, bytes, len, NULL), "module_out");
    wt_bytes_free(NULL);
    wt_bytes_free(&serialized); /* {NULL, 0} */
    wt_module_free(NULL);
    CHECK(module == NULL);
    module = load(engine, WAT);
    NULL_ERROR(wt_module_serialize(module, NULL), "bytes_out");

    /* Run configs. */
    wt_run_config_t *config = wt_run_config_new();
    CHECK(config != NULL);
    wt_run_config_free(NULL);
    NULL_ERROR(wt_run_config_push_arg(NULL, "a"), "config");
    NULL_ERROR(wt_run_config_push_arg(config, NULL), "arg");
    NULL_ERROR(wt_run_config_push_env(NULL, "K", "V"), "config");
    NULL_ERROR(wt_run_config_push_env(config, NULL, "V"), "key");
    NULL_ERROR(wt_run_config_push_env(config, "K", NULL), "value");
    NULL_ERROR(wt_run_config_preopen_dir(NULL, "/", "/"), "config");
    NULL_ERROR(wt_run_config_preopen_dir(config, NULL, "/"), "host_path");
    NULL_ERROR(wt_run_config_preopen_dir(config, "/", NULL), "guest_path");
    NULL_ERROR(wt_run_config_preopen_dir_readonly(NULL, "/", "/"), "config");
    NULL_ERROR(wt_run_config_preopen_dir_readonly(config, NULL, "/"), "host_path");
    NULL_ERROR(wt_run_config_preopen_dir_readonly(config, "/", NULL), "guest_path");
    wt_run_config_set_max_threads(NULL, 1);
    wt_run_config_set_timeout_ms(NULL, 1);
    wt_run_config_set_max_memory(NULL, 1);
    wt_run_config_inherit_env(NULL, true);
    wt_run_config_set_thread_exit_callback(NULL, exit_cb, NULL);
    wt_run_config_set_thread_exit_callback(config, NULL, NULL);
    wt_run_config_set_thread_start_callback(NULL, start_cb, NULL);
    wt_run_config_set_thread_start_callback(config, NULL, NULL);
    wt_run_config_set_diagnostic_callback(NULL, diag_cb, NULL);
    wt_run_config_set_diagnostic_callback(config, NULL, NULL);
    wt_run_config_set_max_fds(NULL, 8);
    wt_run_config_set_max_table_elements(NULL, 8);
    wt_run_config_set_max_memories(NULL, 8);
    wt_run_config_set_max_instance_bytes(NULL, 8);
    wt_run_config_set_max_write_bytes(NULL, WT_NO_WRITE_LIMIT);
    wt_run_config_set_max_files_created(NULL, 8);
    wt_run_config_set_teardown_grace_ms(NULL, 8);
    NULL_ERROR(wt_run_config_set_coredump_path(NULL, "/tmp/core"), "config");
    CHECK(wt_run_config_set_coredump_path(config, NULL) == NULL); /* NULL path clears */
    wt_engine_config_set_epoch_interruption(NULL, true);
    NULL_ERROR(wt_run_config_set_output_inherit(NULL, 1), "config");
    NULL_ERROR(wt_run_config_set_output_null(NULL, 2), "config");
    NULL_ERROR(wt_run_config_set_output_file(NULL, 1, "/tmp/x"), "config");
    NULL_ERROR(wt_run_config_set_output_file(config, 1, NULL), "path");
    NULL_ERROR(wt_run_config_set_output_fd(NULL, 1, 1), "config");
    NULL_ERROR(wt_run_config_set_output_callback(NULL, 1, out_cb, NULL), "config");
    NULL_ERROR(wt_run_config_set_output_callback(config, 1, NULL, NULL), "cb");
    wt_run_config_set_stdin_inherit(NULL);
    wt_run_config_set_stdin_null(NULL);
    NULL_ERROR(wt_run_config_set_stdin_bytes(NULL, bytes, 1), "config");
    NULL_ERROR(wt_run_config_set_stdin_bytes(config, NULL, 5), "data");
    NULL_ERROR(wt_run_config_set_stdin_file(NULL, "/dev/null"), "config");
    NULL_ERROR(wt_run_config_set_stdin_file(config, NULL), "path");
    NULL_ERROR(wt_run_config_set_stdin_fd(NULL, 0), "config");
    NULL_ERROR(wt_run_config_preopen_socket(NULL, 0), "config");
    NULL_ERROR(wt_run_config_preopen_tcp_listener(NULL, "127.0.0.1:0", NULL), "config");
    NULL_ERROR(wt_run_config_preopen_tcp_listener(config, NULL, NULL), "address");

    /* Runs. */
    NULL_ERROR(wt_run(NULL, module, config, &exit_info), "engine");
    NULL_ERROR(wt_run(engine, NULL, config, &exit_info), "module");
    NULL_ERROR(wt_run(engine, module, config, NULL), "exit_out");
    expect_ok(wt_run(engine, module, NULL, &exit_info)); /* NULL config = defaults */
    CHECK(exit_info.kind == WT_EXIT_CODE && exit_info.code == 0);
    NULL_ERROR(wt_run_start(NULL, module, config, &run), "engine");
    NULL_ERROR(wt_run_start(engine, NULL, config, &run), "module");
    NULL_ERROR(wt_run_start(engine, module, config, NULL), "run_out");
    CHECK(run == NULL);
    wt_run_cancel(NULL);
    NULL_ERROR(wt_run_wait(NULL, &exit_info), "run");
    CHECK(!wt_run_try_wait(NULL, &exit_info));
    wt_run_free(NULL);
    expect_ok(wt_run_start(engine, module, NULL, &run));
    NULL_ERROR(wt_run_wait(run, NULL), "exit_out");
    CHECK(!wt_run_try_wait(run, NULL));
    wt_run_free(run);
    wt_exit_clear(NULL);

    /* Host functions and callers. Every refused definition releases its env. */
    wt_valkind_t i32 = WT_I32;
    NULL_ERROR(wt_run_config_define_func(NULL, "env", "f", &i32, 1, NULL, 0, func_cb, NULL, finalizer), "config");
    NULL_ERROR(wt_run_config_define_func(config, NULL, "f", &i32, 1, NULL, 0, func_cb, NULL, finalizer), "module");
    NULL_ERROR(wt_run_config_define_func(config, "env", NULL, &i32, 1, NULL, 0, func_cb, NULL, finalizer), "name");
    NULL_ERROR(wt_run_config_define_func(config, "env", "f", NULL, 1, NULL, 0, func_cb, NULL, finalizer), "params");
    NULL_ERROR(wt_run_config_define_func(config, "env", "f", NULL, 0, NULL, 2, func_cb, NULL, finalizer), "results");
    NULL_ERROR(wt_run_config_define_func(config, "env", "f", NULL, 0, NULL, 0, NULL, NULL, finalizer), "callback");
    CHECK(finalized == 6);
    CHECK(wt_caller_tid(NULL) == -1);
    CHECK(wt_caller_memory_data(NULL) == NULL);
    CHECK(wt_caller_memory_size(NULL) == 0);
    CHECK(!wt_caller_is_ending(NULL));
    CHECK(wt_caller_end_fd(NULL) == -1);
    wt_error_t *made = wt_error_new(NULL);
    expect_error(made, "(no message)");

    /* Instances. */
    wt_instance_t *instance = NULL;
    NULL_ERROR(wt_instance_new(NULL, module, config, &instance), "engine");
    NULL_ERROR(wt_instance_new(engine, NULL, config, &instance), "module");
    NULL_ERROR(wt_instance_new(engine, module, config, NULL), "instance_out");
    CHECK(instance == NULL);
    wt_val_t val;
    uint8_t byte;
    NULL_ERROR(wt_instance_call(NULL, "f", NULL, 0, NULL, 0, NULL), "instance");
    CHECK(wt_instance_call_mode(NULL) == WT_CALLS_SERIAL);
    CHECK(wt_instance_memory_data(NULL) == NULL);
    CHECK(wt_instance_memory_size(NULL) == 0);
    NULL_ERROR(wt_instance_memory_read(NULL, 0, &byte, 1), "instance");
    NULL_ERROR(wt_instance_memory_write(NULL, 0, &byte, 1), "instance");
    wt_instance_cancel(NULL);
    NULL_ERROR(wt_instance_close(NULL, &exit_info), "instance");
    wt_instance_free(NULL);
    expect_ok(wt_instance_new(engine, module, NULL, &instance));
    NULL_ERROR(wt_instance_call(instance, NULL, NULL, 0, NULL, 0, NULL), "name");
    NULL_ERROR(wt_instance_call(instance, "f", NULL, 1, NULL, 0, NULL), "args");
    NULL_ERROR(wt_instance_call(instance, "f", &val, 0, NULL, 1, NULL), "results");
    NULL_ERROR(wt_instance_memory_read(instance, 0, NULL, 1), "buf");
    NULL_ERROR(wt_instance_memory_write(instance, 0, NULL, 1), "data");
    expect_ok(wt_instance_memory_read(instance, 0, NULL, 0));
    NULL_ERROR(wt_instance_close(instance, NULL), "exit_out");
    wt_instance_free(instance);

    CHECK(wt_error_message(NULL) == NULL);
    CHECK(wt_error_kind(NULL) == WT_ERROR_OTHER);
    CHECK(wt_error_os_errno(NULL) == 0);
    wt_error_free(NULL);
    CHECK(wt_version() != NULL);

    wt_run_config_free(config);
    wt_module_free(module);
    wt_engine_free(engine);
    printf("null_args: %d checks passed\n", checks);
    return 0;
}
