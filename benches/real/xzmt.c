/* Minimal multithreaded xz driver over liblzma's lzma_stream_encoder_mt.
 *   xzmt [-T N] [-L PRESET] [-B BLOCK_MIB] [-d] IN OUT
 * Compresses IN to OUT (.xz, CRC64) with N encoder threads (block size BLOCK_MIB MiB,
 * default 4, so that the output does not depend on N), or with -d decompresses IN
 * to OUT (single-threaded). Reads and writes with stdio in 1 MiB chunks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include "lzma.h"

static void die(const char *what, lzma_ret r) {
    fprintf(stderr, "xzmt: %s failed (lzma_ret %d)\n", what, (int)r);
    exit(1);
}

int main(int argc, char **argv) {
    int threads = 1, preset = 3, block_mib = 4, decompress = 0, i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-T") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-L") && i + 1 < argc) preset = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-B") && i + 1 < argc) block_mib = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-d")) decompress = 1;
        else { fprintf(stderr, "xzmt: unknown option %s\n", argv[i]); return 2; }
    }
    if (argc - i != 2) { fprintf(stderr, "usage: xzmt [-T N] [-L PRESET] [-B BLOCK_MIB] [-d] IN OUT\n"); return 2; }
    FILE *in = fopen(argv[i], "rb"), *out = fopen(argv[i + 1], "wb");
    if (!in) { perror(argv[i]); return 1; }
    if (!out) { perror(argv[i + 1]); return 1; }
    lzma_stream s = LZMA_STREAM_INIT;
    lzma_ret r;
    if (!decompress) {
        lzma_mt mt;
        memset(&mt, 0, sizeof mt);
        mt.threads = threads < 1 ? 1 : (uint32_t)threads;
        mt.block_size = (uint64_t)block_mib << 20;
        mt.timeout = 0;
        mt.preset = (uint32_t)preset;
        mt.check = LZMA_CHECK_CRC64;
        r = lzma_stream_encoder_mt(&s, &mt);
        if (r != LZMA_OK) die("lzma_stream_encoder_mt", r);
    } else {
        r = lzma_stream_decoder(&s, UINT64_MAX, 0);
        if (r != LZMA_OK) die("lzma_stream_decoder", r);
    }
    size_t cap = 1 << 20;
    uint8_t *ib = malloc(cap), *ob = malloc(cap);
    lzma_action action = LZMA_RUN;
    s.next_out = ob;
    s.avail_out = cap;
    for (;;) {
        if (s.avail_in == 0 && action == LZMA_RUN) {
            s.next_in = ib;
            s.avail_in = fread(ib, 1, cap, in);
            if (ferror(in)) { perror("read"); return 1; }
            if (feof(in)) action = LZMA_FINISH;
        }
        r = lzma_code(&s, action);
        if (s.avail_out == 0 || r == LZMA_STREAM_END) {
            size_t n = cap - s.avail_out;
            if (fwrite(ob, 1, n, out) != n) { perror("write"); return 1; }
            s.next_out = ob;
            s.avail_out = cap;
        }
        if (r == LZMA_STREAM_END) break;
        if (r != LZMA_OK) die("lzma_code", r);
    }
    unsigned long long total_in = s.total_in, total_out = s.total_out;
    lzma_end(&s);
    if (fclose(out)) { perror("close"); return 1; }
    fclose(in);
    fprintf(stderr, "xzmt: %llu -> %llu bytes\n", total_in, total_out);
    return 0;
}
