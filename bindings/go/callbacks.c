// C trampolines for the run callbacks: the library calls these with user_data = the
// run's id in the Go registry (callbacks.go), and they call the //export functions there.
#include <stdint.h>
#include "wasithreads.h"
#include "_cgo_export.h"

static void wtgo_stdout(void *user_data, int32_t tid, const uint8_t *data, size_t len) {
    wtgoOutput((uintptr_t)user_data, 1, tid, (uint8_t *)data, len);
}

static void wtgo_stderr(void *user_data, int32_t tid, const uint8_t *data, size_t len) {
    wtgoOutput((uintptr_t)user_data, 2, tid, (uint8_t *)data, len);
}

static void wtgo_thread_start(void *user_data, int32_t tid) {
    wtgoThreadStart((uintptr_t)user_data, tid);
}

static void wtgo_thread_exit(void *user_data, int32_t tid, const wt_thread_exit_t *how) {
    wtgoThreadExit((uintptr_t)user_data, tid, (int)how->kind, how->code, (char *)how->message,
                   (char *)how->backtrace);
}

static void wtgo_diagnostic(void *user_data, int32_t tid, const char *message) {
    wtgoDiagnostic((uintptr_t)user_data, tid, (char *)message);
}

wt_error_t *wtgo_set_output_callback(wt_run_config_t *config, int32_t stream, uintptr_t id) {
    return wt_run_config_set_output_callback(config, stream, stream == 2 ? wtgo_stderr : wtgo_stdout,
                                             (void *)id);
}

void wtgo_set_thread_exit_callback(wt_run_config_t *config, uintptr_t id) {
    wt_run_config_set_thread_exit_callback(config, wtgo_thread_exit, (void *)id);
}

void wtgo_set_thread_start_callback(wt_run_config_t *config, uintptr_t id) {
    wt_run_config_set_thread_start_callback(config, wtgo_thread_start, (void *)id);
}

void wtgo_set_diagnostic_callback(wt_run_config_t *config, uintptr_t id) {
    wt_run_config_set_diagnostic_callback(config, wtgo_diagnostic, (void *)id);
}

// Host functions (plugin.go): env is the definition's id in the hostFuncs registry; the
// finalizer removes it once the library holds the definition no more.
static wt_error_t *wtgo_host_call(void *env, wt_caller_t *caller, const wt_val_t *args, size_t nargs,
                                  wt_val_t *results, size_t nresults) {
    return wtgoHostCall((uintptr_t)env, caller, (wt_val_t *)args, nargs, results, nresults);
}

static void wtgo_host_finalize(void *env) {
    wtgoHostFinalize((uintptr_t)env);
}

wt_error_t *wtgo_define_func(wt_run_config_t *config, const char *module, const char *name,
                             const wt_valkind_t *params, size_t nparams,
                             const wt_valkind_t *results, size_t nresults, uintptr_t id) {
    return wt_run_config_define_func(config, module, name, params, nparams, results, nresults,
                                     wtgo_host_call, (void *)id, wtgo_host_finalize);
}
