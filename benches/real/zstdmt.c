/* Minimal multithreaded zstd driver over libzstd's streaming API (ZSTD_c_nbWorkers).
 *   zstdmt [-T N] [-L LEVEL] [-d] IN OUT
 * Compresses IN to OUT with N worker threads (0 = single-threaded, in the caller),
 * or with -d decompresses IN to OUT. Reads and writes with stdio in 1 MiB chunks. */
#define ZSTD_STATIC_LINKING_ONLY
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "zstd.h"

static void die(const char *what, size_t code) {
    fprintf(stderr, "zstdmt: %s: %s\n", what, code ? ZSTD_getErrorName(code) : "failed");
    exit(1);
}

int main(int argc, char **argv) {
    int workers = 0, level = 3, decompress = 0, i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-T") && i + 1 < argc) workers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-L") && i + 1 < argc) level = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-d")) decompress = 1;
        else { fprintf(stderr, "zstdmt: unknown option %s\n", argv[i]); return 2; }
    }
    if (argc - i != 2) { fprintf(stderr, "usage: zstdmt [-T N] [-L LEVEL] [-d] IN OUT\n"); return 2; }
    FILE *in = fopen(argv[i], "rb"), *out = fopen(argv[i + 1], "wb");
    if (!in) { perror(argv[i]); return 1; }
    if (!out) { perror(argv[i + 1]); return 1; }
    size_t inCap = 1 << 20, outCap = 1 << 20;
    char *ib = malloc(inCap), *ob = malloc(outCap);
    unsigned long long total_in = 0, total_out = 0;
    if (!decompress) {
        ZSTD_CCtx *c = ZSTD_createCCtx();
        size_t r = ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
        if (ZSTD_isError(r)) die("level", r);
        r = ZSTD_CCtx_setParameter(c, ZSTD_c_nbWorkers, workers);
        if (ZSTD_isError(r)) die("nbWorkers (built without ZSTD_MULTITHREAD?)", r);
        ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
        for (;;) {
            size_t n = fread(ib, 1, inCap, in);
            total_in += n;
            int last = n < inCap;
            ZSTD_EndDirective mode = last ? ZSTD_e_end : ZSTD_e_continue;
            ZSTD_inBuffer input = { ib, n, 0 };
            int finished;
            do {
                ZSTD_outBuffer output = { ob, outCap, 0 };
                size_t rem = ZSTD_compressStream2(c, &output, &input, mode);
                if (ZSTD_isError(rem)) die("compress", rem);
                if (fwrite(ob, 1, output.pos, out) != output.pos) die("write", 0);
                total_out += output.pos;
                finished = last ? (rem == 0) : (input.pos == input.size);
            } while (!finished);
            if (last) break;
        }
        ZSTD_freeCCtx(c);
    } else {
        ZSTD_DCtx *d = ZSTD_createDCtx();
        size_t n;
        while ((n = fread(ib, 1, inCap, in)) > 0) {
            total_in += n;
            ZSTD_inBuffer input = { ib, n, 0 };
            while (input.pos < input.size) {
                ZSTD_outBuffer output = { ob, outCap, 0 };
                size_t r = ZSTD_decompressStream(d, &output, &input);
                if (ZSTD_isError(r)) die("decompress", r);
                if (fwrite(ob, 1, output.pos, out) != output.pos) die("write", 0);
                total_out += output.pos;
            }
        }
        ZSTD_freeDCtx(d);
    }
    if (fclose(out)) die("close", 0);
    fclose(in);
    fprintf(stderr, "zstdmt: %llu -> %llu bytes\n", total_in, total_out);
    return 0;
}
