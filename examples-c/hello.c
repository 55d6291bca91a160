/*
 * hello: the smallest complete wasithreads host.
 *
 *   hello [module.wasm|module.wat]
 *
 * Loads the module (or, without an argument, a built-in WAT guest whose four threads each
 * print a line), runs it, and prints how it ended. The guest's exit code becomes ours.
 */
#include <stdio.h>
#include <stdlib.h>

#include "wasithreads.h"

static const char DEMO[] =
    "(module\n"
    "  (import \"wasi\" \"thread-spawn\" (func $spawn (param i32) (result i32)))\n"
    "  (import \"wasi_snapshot_preview1\" \"fd_write\" (func $write (param i32 i32 i32 i32) (result i32)))\n"
    "  (import \"env\" \"memory\" (memory 1 1 shared))\n"
    "  (data (i32.const 64) \"hello from wasm thread 0\\n\")\n"
    "  ;; Thread N copies the greeting to 128 + 32*N, patches its digit and prints it.\n"
    "  (func (export \"wasi_thread_start\") (param $tid i32) (param $n i32)\n"
    "    (local $base i32)\n"
    "    (local.set $base (i32.add (i32.const 128) (i32.mul (local.get $n) (i32.const 32))))\n"
    "    (memory.copy (local.get $base) (i32.const 64) (i32.const 25))\n"
    "    (i32.store8 offset=23 (local.get $base) (i32.add (i32.const 48) (local.get $n)))\n"
    "    (i32.store offset=8 (i32.mul (local.get $n) (i32.const 8)) (local.get $base))\n"
    "    (i32.store offset=12 (i32.mul (local.get $n) (i32.const 8)) (i32.const 25))\n"
    "    (drop (call $write (i32.const 1) (i32.add (i32.const 8) (i32.mul (local.get $n) (i32.const 8))) (i32.const 1) (i32.const 1024)))\n"
    "    (drop (i32.atomic.rmw.add (i32.const 2048) (i32.const 1)))\n"
    "    (drop (memory.atomic.notify (i32.const 2048) (i32.const 1))))\n"
    "  (func (export \"_start\") (local $i i32) (local $done i32)\n"
    "    (loop $spawn_all\n"
    "      (drop (call $spawn (local.get $i)))\n"
    "      (local.set $i (i32.add (local.get $i) (i32.const 1)))\n"
    "      (br_if $spawn_all (i32.lt_u (local.get $i) (i32.const 4))))\n"
    "    (loop $join\n"
    "      (local.set $done (i32.atomic.load (i32.const 2048)))\n"
    "      (if (i32.lt_u (local.get $done) (i32.const 4)) (then\n"
    "        (drop (memory.atomic.wait32 (i32.const 2048) (local.get $done) (i64.const -1)))\n"
    "        (br $join))))))\n";

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0, got;
    do {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            unsigned char *bigger = realloc(buf, cap);
            if (!bigger) { free(buf); fclose(f); return NULL; }
            buf = bigger;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    fclose(f);
    *len = n;
    return buf;
}

static int fail(wt_error_t *err, const char *what) {
    fprintf(stderr, "hello: %s: %s\n", what, wt_error_message(err));
    wt_error_free(err);
    return 1;
}

int main(int argc, char **argv) {
    size_t len = sizeof DEMO - 1;
    unsigned char *bytes = NULL;
    if (argc > 1 && !(bytes = read_file(argv[1], &len))) {
        perror(argv[1]);
        return 1;
    }

    wt_engine_t *engine = NULL;
    wt_error_t *err = wt_engine_new(NULL, &engine);
    if (err) return fail(err, "engine");

    wt_module_t *module = NULL;
    err = wt_module_load(engine, bytes ? bytes : (const uint8_t *)DEMO, len, &module);
    free(bytes);
    if (err) { wt_engine_free(engine); return fail(err, "load"); }

    wt_exit_t how;
    err = wt_run(engine, module, NULL, &how);
    wt_module_free(module);
    wt_engine_free(engine);
    if (err) return fail(err, "run");

    int status = 0;
    switch (how.kind) {
    case WT_EXIT_CODE:
        printf("guest exited with code %d (thread %d)\n", how.code, how.tid);
        status = how.code;
        break;
    case WT_EXIT_TRAP:
        printf("guest thread %d trapped: %s\n", how.tid, how.message);
        status = 134;
        break;
    case WT_EXIT_TIMEOUT: printf("guest timed out\n"); status = 124; break;
    case WT_EXIT_CANCELLED: printf("guest was cancelled\n"); status = 130; break;
    }
    wt_exit_clear(&how);
    return status;
}
