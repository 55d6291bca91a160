/* Error kinds through the C API: each kind of `wt_error_kind_t` provoked for real, and the
 * OS error of the I/O ones (`wt_error_os_errno`). Run with one argument, a scratch
 * directory the test may write in. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#include "check.h"

int checks = 0;

/* Expects `err` to be an error of `kind` with the OS error `os_errno` whose message
 * contains `needle`; frees it. */
static void expect_kind(wt_error_t *err, wt_error_kind_t kind, int32_t os_errno, const char *needle) {
    CHECK(err != NULL);
    if (wt_error_kind(err) != kind || wt_error_os_errno(err) != os_errno) {
        fprintf(stderr, "error \"%s\": kind %d, errno %d; expected kind %d, errno %d\n", wt_error_message(err),
                (int)wt_error_kind(err), (int)wt_error_os_errno(err), (int)kind, (int)os_errno);
        exit(1);
    }
    expect_error(err, needle);
}

static const char *const HELLO = "(module (memory (export \"memory\") 1) (func (export \"_start\")))";
static const char *const SHARED =
    "(module (import \"env\" \"memory\" (memory 2 10 shared)) (func (export \"_start\")))";

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s SCRATCH_DIR\n", argv[0]);
        return 2;
    }
    const char *scratch = argv[1];
    char path[4096];

    /* A NULL error: OTHER and 0, as `wt_error_message` gives NULL. */
    CHECK(wt_error_kind(NULL) == WT_ERROR_OTHER);
    CHECK(wt_error_os_errno(NULL) == 0);

    /* MISUSE: NULL and bad arguments, settings out of range, another engine's module. */
    wt_engine_t *engine = NULL;
    expect_kind(wt_engine_new(NULL, NULL), WT_ERROR_MISUSE, 0, "engine_out");
    wt_engine_config_t *engine_config = wt_engine_config_new();
    wt_engine_config_set_opt_level(engine_config, 7);
    expect_kind(wt_engine_new(engine_config, &engine), WT_ERROR_MISUSE, 0, "opt level");
    wt_engine_config_free(engine_config);
    expect_ok(wt_engine_new(NULL, &engine));
    wt_exit_t how;
    wt_run_config_t *config = wt_run_config_new();
    expect_kind(wt_run_config_push_env(config, "A=B", "c"), WT_ERROR_MISUSE, 0, "environment key");
    expect_kind(wt_run_config_set_output_null(config, 7), WT_ERROR_MISUSE, 0, "stream must be");
    expect_kind(wt_run_config_set_stdin_fd(config, -1), WT_ERROR_MISUSE, 0, "not a file descriptor");
    expect_kind(wt_run_config_preopen_socket(config, -1), WT_ERROR_MISUSE, 0, "not a file descriptor");
    expect_kind(wt_run_config_preopen_tcp_listener(config, "localhost:80", NULL), WT_ERROR_MISUSE, 0,
                "not an IP address and port");
    wt_run_config_free(config);

    wt_module_t *hello = load(engine, HELLO);
    config = wt_run_config_new();
    expect_ok(wt_run_config_set_coredump_path(config, "/"));
    expect_kind(wt_run(engine, hello, config, &how), WT_ERROR_MISUSE, 0, "names no file");
    wt_run_config_free(config);
    wt_engine_t *other = NULL;
    expect_ok(wt_engine_new(NULL, &other));
    expect_kind(wt_run(other, hello, NULL, &how), WT_ERROR_MISUSE, 0, "different engine");
    wt_engine_free(other);

    /* BAD_MODULE: empty, neither wasm nor WAT, invalid, unsupported, serialized refused. */
    wt_module_t *module = NULL;
    expect_kind(wt_module_load(engine, (const uint8_t *)"", 0, &module), WT_ERROR_BAD_MODULE, 0, "empty");
    expect_kind(wt_module_load(engine, (const uint8_t *)"(module", 7, &module), WT_ERROR_BAD_MODULE, 0, "WAT");
    const uint8_t truncated[] = {0, 'a', 's', 'm', 1, 0, 0, 0, 1};
    expect_kind(wt_module_validate(engine, truncated, sizeof truncated), WT_ERROR_BAD_MODULE, 0, "invalid");
    const char *two = "(module (memory 1 1 shared) (memory 1 1 shared) (func (export \"_start\")))";
    expect_kind(wt_module_load(engine, (const uint8_t *)two, strlen(two), &module), WT_ERROR_BAD_MODULE, 0,
                "more than one shared memory");
    expect_kind(wt_module_deserialize(engine, (const uint8_t *)"junk", 4, &module), WT_ERROR_BAD_MODULE, 0,
                "serialized");
    CHECK(module == NULL);

    /* LINK: an import neither the library nor the run's host functions provide (a
     * function import is the host's to define with the run, so the run fails); no
     * `_start`. */
    wt_module_t *unknown = load(engine, "(module (import \"env\" \"log\" (func)) (func (export \"_start\")))");
    expect_kind(wt_run(engine, unknown, NULL, &how), WT_ERROR_LINK, 0, "unknown import `env::log`");
    wt_module_free(unknown);
    const char *spawn_unshared =
        "(module (import \"wasi\" \"thread-spawn\" (func (param i32) (result i32))) (memory 1)"
        " (func (export \"_start\")))";
    expect_kind(wt_module_load(engine, (const uint8_t *)spawn_unshared, strlen(spawn_unshared), &module),
                WT_ERROR_LINK, 0, "no shared memory");
    wt_module_t *no_start = load(engine, "(module (memory (export \"memory\") 1))");
    expect_kind(wt_run(engine, no_start, NULL, &how), WT_ERROR_LINK, 0, "_start");
    wt_module_free(no_start);

    /* LIMIT: a memory limit below the module's minimum; no descriptor room for stdio. */
    wt_module_t *shared = load(engine, SHARED);
    config = wt_run_config_new();
    wt_run_config_set_max_memory(config, 65536);
    expect_kind(wt_run(engine, shared, config, &how), WT_ERROR_LIMIT, 0, "memory limit");
    wt_run_config_free(config);
    config = wt_run_config_new();
    wt_run_config_set_max_fds(config, 2);
    expect_kind(wt_run(engine, hello, config, &how), WT_ERROR_LIMIT, 0, "descriptor limit");
    wt_run_config_free(config);

    /* IO, with the OS error: a missing module file, a missing preopened directory, a
     * missing stdin file, an output file in a missing directory, a closed descriptor, the
     * core dump's missing directory. */
    CHECK(snprintf(path, sizeof path, "%s/missing/x.wasm", scratch) < (int)sizeof path);
    expect_kind(wt_module_load_file(engine, path, &module), WT_ERROR_IO, ENOENT, "reading");
    CHECK(snprintf(path, sizeof path, "%s/missing", scratch) < (int)sizeof path);
    config = wt_run_config_new();
    expect_ok(wt_run_config_preopen_dir(config, path, "/data"));
    expect_kind(wt_run(engine, hello, config, &how), WT_ERROR_IO, ENOENT, "opening directory");
    wt_run_config_free(config);
    config = wt_run_config_new();
    expect_ok(wt_run_config_set_stdin_file(config, path));
    expect_kind(wt_run(engine, hello, config, &how), WT_ERROR_IO, ENOENT, "stdin");
    wt_run_config_free(config);
    config = wt_run_config_new();
    CHECK(snprintf(path, sizeof path, "%s/missing/out.txt", scratch) < (int)sizeof path);
    expect_kind(wt_run_config_set_output_file(config, WT_STDOUT, path), WT_ERROR_IO, ENOENT, "creating");
    int fd = open(".", O_RDONLY);
    CHECK(fd >= 0 && close(fd) == 0);
    expect_kind(wt_run_config_set_stdin_fd(config, fd), WT_ERROR_IO, EBADF, "cannot duplicate descriptor");
    expect_kind(wt_run_config_preopen_socket(config, fd), WT_ERROR_IO, EBADF, "cannot duplicate descriptor");
    int pipe_fds[2];
    CHECK(pipe(pipe_fds) == 0);
    expect_kind(wt_run_config_preopen_socket(config, pipe_fds[0]), WT_ERROR_IO, ENOTSOCK,
                "cannot be a preopened listener");
    CHECK(close(pipe_fds[0]) == 0 && close(pipe_fds[1]) == 0);
    expect_ok(wt_run_config_set_coredump_path(config, path));
    expect_kind(wt_run(engine, hello, config, &how), WT_ERROR_IO, ENOENT, "core dump");
    wt_run_config_free(config);

    wt_module_free(shared);
    wt_module_free(hello);
    wt_engine_free(engine);
    printf("%d checks passed\n", checks);
    return 0;
}
