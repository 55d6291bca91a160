/* Force-included (gcc -include) into a copy of examples-c/wt-run.c by build.sh, with
 * its wt_module_load_file call renamed to load_cached: if WT_CWASM names a file, the
 * module is deserialized from it (no compilation); if that file does not exist yet, the
 * module is compiled and serialized into it. Without WT_CWASM, plain wt_module_load_file.
 * The precompiled-vs-precompiled comparison with `wasmtime run --allow-precompiled`. */
/* Included before wt-run.c's first line: its feature macro (dladdr) must come first. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include "wasithreads.h"

static wt_error_t *load_cached(const wt_engine_t *engine, const char *path, wt_module_t **out) {
    const char *cw = getenv("WT_CWASM");
    if (!cw || !*cw) return wt_module_load_file(engine, path, out);
    FILE *f = fopen(cw, "rb");
    if (f) {
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        uint8_t *buf = malloc((size_t)n);
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) { fprintf(stderr, "short read %s\n", cw); exit(1); }
        fclose(f);
        wt_error_t *err = wt_module_deserialize(engine, buf, (size_t)n, out);
        free(buf);
        return err;
    }
    wt_error_t *err = wt_module_load_file(engine, path, out);
    if (err) return err;
    wt_bytes_t bytes = {0};
    if ((err = wt_module_serialize(*out, &bytes))) return err;
    f = fopen(cw, "wb");
    if (!f || fwrite(bytes.data, 1, bytes.len, f) != bytes.len || fclose(f)) { perror(cw); exit(1); }
    wt_bytes_free(&bytes);
    return NULL;
}
