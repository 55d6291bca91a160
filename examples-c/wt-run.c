/*
 * wt-run: run a WebAssembly module that uses wasi-threads, from the command line.
 *
 *   wt-run [OPTIONS] [--] MODULE.wasm [ARGS...]
 *
 * The guest's argv is MODULE.wasm followed by ARGS; its stdin, stdout and stderr are
 * ours. Options end at the first argument that does not start with "--" (or after "--"),
 * so every argument after the module belongs to the guest: that makes wt-run usable as a
 * cargo runner (CARGO_TARGET_WASM32_WASIP1_THREADS_RUNNER=wt-run).
 *
 * Exit status: the guest's exit code when it is 0..255 (any other code, which a process
 * status cannot carry, is reported on stderr and gives 1, never 0); 134 if a guest thread
 * trapped (message and wasm backtrace on stderr); 124 on timeout; 2 for bad usage; 1 if
 * the module could not be loaded or started. Diagnostics (a refused thread-spawn and
 * why) are printed on stderr. When the run ends by timeout or a trap, every other
 * thread's wasm backtrace at the moment it was stopped follows on stderr, in the function
 * indices and offsets of MODULE (as `wasm-objdump -d MODULE` shows them).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasithreads.h"

static const char USAGE[] =
    "usage: wt-run [OPTIONS] [--] MODULE.wasm [ARGS...]\n"
    "\n"
    "Runs a WebAssembly module (binary or WAT) that may use wasi-threads.\n"
    "\n"
    "options:\n"
    "  --dir HOST::GUEST    give the guest the host directory HOST as GUEST (read-write);\n"
    "                       --dir DIR alone maps DIR to the same path\n"
    "  --dir-ro HOST::GUEST the same, read-only\n"
    "  --env KEY=VALUE      set an environment variable for the guest (repeatable)\n"
    "  --inherit-env        pass wt-run's own environment to the guest\n"
    "  --max-threads N      most spawned guest threads alive at once (default 1024)\n"
    "  --timeout-ms N       stop the guest after N milliseconds (exit status 124)\n"
    "  --max-memory BYTES   cap the guest's linear memory\n"
    "  --max-fds N          most descriptors the guest may have open (default 256)\n"
    "  --coredump PATH      if a guest thread traps, write a wasm core dump of every\n"
    "                       thread and the memory to PATH\n"
    "  --help               show this help\n"
    "\n"
    "exit status: the guest's exit code (codes outside 0..255 give 1); 134 when a guest\n"
    "thread trapped; 124 on timeout; 1 when the module cannot be loaded or started; 2 for\n"
    "bad usage.\n";

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "wt-run: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'wt-run --help'.\n");
    return 2;
}

/* Parses a non-negative decimal number; returns 0 on success. */
static int parse_u64(const char *s, unsigned long long max, unsigned long long *out) {
    if (!s || !*s || *s == '-') return -1;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max) return -1;
    *out = v;
    return 0;
}

/* Prints what the library reports about the guest (a refused thread-spawn and why). */
static void print_diagnostic(void *user_data, int32_t tid, const char *message) {
    (void)user_data;
    fprintf(stderr, "wt-run: thread %d: %s\n", tid, message);
}

/* Where each stopped thread was, as the thread-exit callback reported it. */
struct stop {
    int32_t tid;
    char *backtrace;
};
static struct {
    pthread_mutex_t lock;
    struct stop *items;
    size_t len, cap;
} stops = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0};

static void record_stop(void *user_data, int32_t tid, const wt_thread_exit_t *how) {
    (void)user_data;
    if (how->kind != WT_THREAD_TERMINATED || !how->backtrace) return;
    char *copy = strdup(how->backtrace);
    if (!copy) return;
    pthread_mutex_lock(&stops.lock);
    if (stops.len == stops.cap) {
        size_t cap = stops.cap ? 2 * stops.cap : 16;
        struct stop *grown = realloc(stops.items, cap * sizeof *grown);
        if (!grown) {
            pthread_mutex_unlock(&stops.lock);
            free(copy);
            return;
        }
        stops.items = grown;
        stops.cap = cap;
    }
    stops.items[stops.len++] = (struct stop){tid, copy};
    pthread_mutex_unlock(&stops.lock);
}

static int by_tid(const void *a, const void *b) {
    int32_t x = ((const struct stop *)a)->tid, y = ((const struct stop *)b)->tid;
    return (x > y) - (x < y);
}

/* Prints (when `print`) and frees where each stopped thread was, by tid. Under the lock:
 * a thread that outlived the teardown grace may still report. */
static void report_stops(int print) {
    pthread_mutex_lock(&stops.lock);
    qsort(stops.items, stops.len, sizeof *stops.items, by_tid);
    for (size_t k = 0; k < stops.len; k++) {
        if (print) fprintf(stderr, "wt-run: thread %d was stopped here:\n%s\n", stops.items[k].tid, stops.items[k].backtrace);
        free(stops.items[k].backtrace);
    }
    free(stops.items);
    stops.items = NULL;
    stops.len = stops.cap = 0;
    pthread_mutex_unlock(&stops.lock);
}

/* Reports and frees an error; returns 1. */
static int fail(const char *what, wt_error_t *err) {
    fprintf(stderr, "wt-run: %s: %s\n", what, wt_error_message(err));
    wt_error_free(err);
    return 1;
}

/* Applies a --dir / --dir-ro value "HOST::GUEST" (or "DIR"). */
static wt_error_t *add_dir(wt_run_config_t *config, const char *spec, int read_only) {
    const char *sep = strstr(spec, "::");
    char *host = sep ? strndup(spec, (size_t)(sep - spec)) : strdup(spec);
    const char *guest = sep ? sep + 2 : spec;
    wt_error_t *err = read_only ? wt_run_config_preopen_dir_readonly(config, host, guest)
                                : wt_run_config_preopen_dir(config, host, guest);
    free(host);
    return err;
}

int main(int argc, char **argv) {
    wt_run_config_t *config = wt_run_config_new();
    if (!config) return 1;
    wt_run_config_set_diagnostic_callback(config, print_diagnostic, NULL);
    wt_run_config_set_thread_exit_callback(config, record_stop, NULL);
    int status = 2;
    int i = 1;
    wt_error_t *err = NULL;

    for (; i < argc; i++) {
        const char *a = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned long long n;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(USAGE, stdout);
            wt_run_config_free(config);
            return 0;
        } else if (strncmp(a, "--", 2) != 0) {
            break; /* the module */
        } else if (strcmp(a, "--inherit-env") == 0) {
            wt_run_config_inherit_env(config, true);
            continue;
        } else if (!value) {
            status = usage_error("option '%s' needs a value", a);
            goto out;
        } else if (strcmp(a, "--dir") == 0 || strcmp(a, "--dir-ro") == 0) {
            if ((err = add_dir(config, value, a[5] == '-'))) goto config_error;
        } else if (strcmp(a, "--env") == 0) {
            const char *eq = strchr(value, '=');
            if (!eq || eq == value) {
                status = usage_error("--env needs KEY=VALUE, not '%s'", value);
                goto out;
            }
            char *key = strndup(value, (size_t)(eq - value));
            err = wt_run_config_push_env(config, key, eq + 1);
            free(key);
            if (err) goto config_error;
        } else if (strcmp(a, "--max-threads") == 0) {
            if (parse_u64(value, UINT32_MAX, &n)) {
                status = usage_error("--max-threads needs a number, not '%s'", value);
                goto out;
            }
            wt_run_config_set_max_threads(config, (uint32_t)n);
        } else if (strcmp(a, "--timeout-ms") == 0) {
            if (parse_u64(value, UINT64_MAX, &n)) {
                status = usage_error("--timeout-ms needs a number, not '%s'", value);
                goto out;
            }
            wt_run_config_set_timeout_ms(config, n);
        } else if (strcmp(a, "--max-memory") == 0) {
            if (parse_u64(value, UINT64_MAX, &n)) {
                status = usage_error("--max-memory needs a number of bytes, not '%s'", value);
                goto out;
            }
            wt_run_config_set_max_memory(config, n);
        } else if (strcmp(a, "--coredump") == 0) {
            if ((err = wt_run_config_set_coredump_path(config, value))) goto config_error;
        } else if (strcmp(a, "--max-fds") == 0) {
            if (parse_u64(value, UINT32_MAX, &n)) {
                status = usage_error("--max-fds needs a number, not '%s'", value);
                goto out;
            }
            wt_run_config_set_max_fds(config, (uint32_t)n);
        } else {
            status = usage_error("unknown option '%s'", a);
            goto out;
        }
        i++; /* the option's value */
    }
    if (i >= argc) {
        status = usage_error("%s", "no module given");
        goto out;
    }

    const char *path = argv[i];
    for (int j = i; j < argc; j++) {
        if ((err = wt_run_config_push_arg(config, argv[j]))) goto config_error;
    }

    wt_engine_t *engine = NULL;
    if ((err = wt_engine_new(NULL, &engine))) {
        status = fail("creating the engine", err);
        goto out;
    }
    wt_module_t *module = NULL;
    if ((err = wt_module_load_file(engine, path, &module))) {
        status = fail("loading the module", err);
        wt_engine_free(engine);
        goto out;
    }
    wt_exit_t how;
    err = wt_run(engine, module, config, &how);
    wt_module_free(module);
    wt_engine_free(engine);
    if (err) {
        status = fail("running the module", err);
        goto out;
    }
    fflush(stdout);
    switch (how.kind) {
    case WT_EXIT_CODE:
        status = how.code;
        if (how.code < 0 || how.code > 255) {
            fprintf(stderr, "wt-run: the guest exited with code %d, which is not a process exit status\n", how.code);
            status = 1;
        }
        break;
    case WT_EXIT_TRAP:
        fprintf(stderr, "wt-run: guest thread %d trapped: %s\n", how.tid, how.message ? how.message : "");
        status = 134;
        break;
    case WT_EXIT_TIMEOUT:
        fprintf(stderr, "wt-run: timed out\n");
        status = 124;
        break;
    case WT_EXIT_CANCELLED: status = 130; break;
    }
    report_stops(how.kind != WT_EXIT_CODE);
    wt_exit_clear(&how);
    goto out;

config_error:
    status = usage_error("%s", wt_error_message(err));
    wt_error_free(err);
out:
    wt_run_config_free(config);
    return status;
}
