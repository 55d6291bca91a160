/*
 * A forked child can use the library (the pre-fork server pattern): after the parent
 * loaded and ran a module (so it had compile threads and guest threads, none of which
 * exist in a child),
 *   1. a child creates an engine of its own, loads and runs a module, and exits 0;
 *   2. a child loads and runs with the parent's engine, and runs the parent's module.
 * The parent waits for each child with a deadline and kills one that hangs (a check
 * fails then, instead of the test hanging).
 *
 *   fork PRINTERS.wat     prints "fork: N checks passed"
 *
 * PRINTERS.wat is tests/guests/wat/printers.wat: four threads, joined, proc_exit(3).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

int checks = 0;

/* In a child: exits 0 when `engine` loads `path` and runs it (and `module`, if any) to
 * proc_exit(3), else 1. */
static void child(const wt_engine_t *engine, const char *path, const wt_module_t *module) {
    wt_module_t *fresh = NULL;
    wt_error_t *err = wt_module_load_file(engine, path, &fresh);
    if (err != NULL) {
        fprintf(stderr, "child: load: %s\n", wt_error_message(err));
        _exit(1);
    }
    wt_run_config_t *config = wt_run_config_new();
    wt_error_free(wt_run_config_set_output_null(config, 1));
    const wt_module_t *modules[2] = {fresh, module};
    for (int i = 0; i < 2 && modules[i] != NULL; i++) {
        wt_exit_t how;
        err = wt_run(engine, modules[i], config, &how);
        if (err != NULL) {
            fprintf(stderr, "child: run: %s\n", wt_error_message(err));
            _exit(1);
        }
        if (how.kind != WT_EXIT_CODE || how.code != 3) {
            fprintf(stderr, "child: run %d ended with kind %d code %d\n", i, (int)how.kind, how.code);
            _exit(1);
        }
    }
    wt_run_config_free(config);
    wt_module_free(fresh);
    _exit(0);
}

/* Waits up to 60 s for `pid`; kills it if it is still there. Returns its exit status, or
 * -1 if it had to be killed. */
static int wait_with_deadline(pid_t pid) {
    for (int i = 0; i < 6000; i++) {
        int status;
        pid_t got = waitpid(pid, &status, WNOHANG);
        if (got == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fprintf(stderr, "child %d hung\n", (int)pid);
    return -1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: fork PRINTERS.wat\n");
        return 2;
    }
    const char *path = argv[1];
    wt_engine_t *engine = NULL;
    expect_ok(wt_engine_new(NULL, &engine));
    wt_module_t *module = NULL;
    expect_ok(wt_module_load_file(engine, path, &module));
    wt_run_config_t *config = wt_run_config_new();
    expect_ok(wt_run_config_set_output_null(config, 1));
    wt_exit_t how;
    expect_ok(wt_run(engine, module, config, &how));
    CHECK(how.kind == WT_EXIT_CODE && how.code == 3);
    fflush(NULL);

    /* 1. A new engine in the child. */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        wt_engine_t *own = NULL;
        wt_error_t *err = wt_engine_new(NULL, &own);
        if (err != NULL) _exit(1);
        child(own, path, NULL);
    }
    CHECK(wait_with_deadline(pid) == 0);

    /* 2. The parent's engine and module in the child. */
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) child(engine, path, module);
    CHECK(wait_with_deadline(pid) == 0);

    /* The parent goes on as before. */
    expect_ok(wt_run(engine, module, config, &how));
    CHECK(how.kind == WT_EXIT_CODE && how.code == 3);
    wt_run_config_free(config);
    wt_module_free(module);
    wt_engine_free(engine);
    printf("fork: %d checks passed\n", checks);
    return 0;
}
