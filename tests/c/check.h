/* Assertions shared by the C test programs. Each program defines `int checks`. */
#ifndef WASITHREADS_TEST_CHECK_H
#define WASITHREADS_TEST_CHECK_H

#include <dirent.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasithreads.h"

extern int checks;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        checks++;                                                                    \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                                 \
        }                                                                            \
    } while (0)

/* Expects `err` to be an error whose message contains `needle`; frees it. */
static inline void expect_error(wt_error_t *err, const char *needle) {
    CHECK(err != NULL);
    const char *msg = wt_error_message(err);
    CHECK(msg != NULL);
    if (strstr(msg, needle) == NULL) {
        fprintf(stderr, "error message \"%s\" lacks \"%s\"\n", msg, needle);
        exit(1);
    }
    wt_error_free(err);
}

/* Expects success. */
static inline void expect_ok(wt_error_t *err) {
    if (err != NULL) {
        fprintf(stderr, "unexpected error: %s\n", wt_error_message(err));
        wt_error_free(err);
        exit(1);
    }
}

/* The text of the file NAME in directory DIR (NUL-terminated, malloc'd), or fails the test. */
static inline char *read_guest(const char *dir, const char *name) {
    char path[4096];
    CHECK(snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(1);
    }
    CHECK(fseek(f, 0, SEEK_END) == 0);
    long len = ftell(f);
    CHECK(len >= 0 && fseek(f, 0, SEEK_SET) == 0);
    char *text = malloc((size_t)len + 1);
    CHECK(text != NULL && fread(text, 1, (size_t)len, f) == (size_t)len);
    text[len] = 0;
    fclose(f);
    return text;
}

/* Compiles WAT text or fails the test. */
static inline wt_module_t *load(wt_engine_t *engine, const char *wat) {
    wt_module_t *module = NULL;
    expect_ok(wt_module_load(engine, (const uint8_t *)wat, strlen(wat), &module));
    CHECK(module != NULL);
    return module;
}

/* Threads of this process (the entries of /proc/self/task). */
static inline int thread_count(void) {
    DIR *d = opendir("/proc/self/task");
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* The body of a host function that blocks as one waiting on a queue or a socket would,
 * polling the end descriptor beside its own: counts itself in `entered`, then waits until
 * the run or instance ends and returns the error that stops its thread. */
static inline wt_error_t *block_until_end(wt_caller_t *caller, atomic_int *entered) {
    int fd = wt_caller_end_fd(caller);
    if (fd < 0) return wt_error_new("no end fd");
    atomic_fetch_add(entered, 1);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (poll(&p, 1, 10000) == 0) {
    }
    return wt_caller_is_ending(caller) ? wt_error_new("ending") : wt_error_new("woken but not ending");
}

#endif
