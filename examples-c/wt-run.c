/*
 * wt-run: run a WebAssembly module that uses wasi-threads, from the command line.
 *
 *   wt-run [run] [OPTIONS] [--] MODULE.wasm [ARGS...]
 *
 * The guest's argv is MODULE.wasm followed by ARGS; its stdin, stdout and stderr are
 * ours. Options end at the first argument that does not start with "-" (or after "--"),
 * so every argument after the module belongs to the guest: that makes wt-run usable as a
 * cargo runner (CARGO_TARGET_WASM32_WASIP1_THREADS_RUNNER=wt-run). The spellings of
 * Wasmtime's CLI (`wasmtime run -W threads=y -S threads=y --dir H::G --env K=V`) are
 * accepted where they mean something here, and refused with the equivalent otherwise.
 *
 * Compiled modules are kept in an on-disk cache (see "The compile cache" below), so a
 * module is compiled once, not on every run.
 *
 * With --invoke NAME, wt-run instantiates the module instead (its `_initialize` runs,
 * `_start` does not), calls the export NAME with ARGS parsed by the export's type, and
 * prints the results one a line, as Wasmtime 46's `wasmtime run --invoke` did.
 *
 * Exit status: the guest's exit code when it is 0..255 (any other code, which a process
 * status cannot carry, is reported on stderr and gives 1, never 0); 134 if a guest thread
 * trapped (message and wasm backtrace on stderr); 124 on timeout; 2 for bad usage; 1 if
 * the module could not be loaded or started. Diagnostics (a refused thread-spawn and
 * why) are printed on stderr. When the run ends by timeout or a trap, every other
 * thread's wasm backtrace at the moment it was stopped follows on stderr, in the function
 * indices and offsets of MODULE (as `wasm-objdump -d MODULE` shows them).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr, asprintf */
#endif
#include <dirent.h>
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "wasithreads.h"

static const char USAGE[] =
    "usage: wt-run [run] [OPTIONS] [--] MODULE.wasm [ARGS...]\n"
    "       wt-run [run] [OPTIONS] --invoke NAME [--] MODULE.wasm [ARGS...]\n"
    "\n"
    "Runs a WebAssembly module (binary or WAT) that may use wasi-threads.\n"
    "\n"
    "options:\n"
    "  --invoke NAME        instead of running _start, instantiate the module (running its\n"
    "                       _initialize, if any), call its exported function NAME with ARGS\n"
    "                       (as many as it takes; i32/i64 in decimal or 0x hex, f32/f64 as\n"
    "                       1.5, 2e-3, inf, nan) and print its results, one a line, as\n"
    "                       Wasmtime 46's --invoke does. A trap, proc_exit or timeout ends\n"
    "                       it as it ends a run; a missing export or wrong arguments are\n"
    "                       bad usage (the callable exports and types are listed). wt-run\n"
    "                       defines no host functions: a module importing any fails\n"
    "  --dir HOST::GUEST    give the guest the host directory HOST as GUEST (read-write);\n"
    "                       --dir DIR alone maps DIR to the same path\n"
    "  --dir-ro HOST::GUEST the same, read-only\n"
    "  --tcplisten ADDR     listen on the TCP address ADDR (IP:PORT; repeatable) and give\n"
    "                       the guest the listening socket; port 0 picks a free port,\n"
    "                       which is printed on stderr\n"
    "  --listenfd           give the guest the listening sockets wt-run inherited by\n"
    "                       socket activation (LISTEN_FDS and LISTEN_PID, as systemd\n"
    "                       passes them; LISTEN_FDS and LISTEN_FDNAMES reach the guest)\n"
    "  --env KEY=VALUE      set an environment variable for the guest (repeatable);\n"
    "                       --env KEY passes wt-run's own value of KEY\n"
    "  --inherit-env        pass wt-run's own environment to the guest\n"
    "  --max-threads N      most spawned guest threads alive at once (default 1024)\n"
    "  --timeout-ms N       stop the guest after N milliseconds (exit status 124)\n"
    "  --max-memory BYTES   cap the guest's linear memory\n"
    "  --max-fds N          most descriptors the guest may have open (default 256)\n"
    "  --max-wasm-stack BYTES  the wasm stack of each guest thread (default 1 MiB)\n"
    "  --coredump PATH      if a guest thread traps, write a wasm core dump of every\n"
    "                       thread and the memory to PATH\n"
    "  --no-cache           compile the module without the compile cache\n"
    "  --cache-dir DIR      where compiled modules are cached (see below)\n"
    "  --version            print the version (that of libwasithreads)\n"
    "  --help               show this help\n"
    "\n"
    "Wasmtime's spellings: `run` before the options; -W threads=y,shared-memory=y and\n"
    "-S threads=y (threads are always on); -W max-memory-size=BYTES, -W max-wasm-stack=BYTES,\n"
    "-W timeout=DURATION (e.g. 500ms, 10s); -S inherit-env; -S tcplisten=ADDR; -S listenfd;\n"
    "-C cache=n. Other -W, -S and -C keys are refused with the reason.\n"
    "\n"
    "Sockets: the guest finds the --listenfd sockets at descriptors 3, 4, ..., then the\n"
    "--tcplisten ones in the order given, then the --dir directories (as Wasmtime 46).\n"
    "\n"
    "The compile cache: a module is compiled once and kept, machine code included, in\n"
    "$WT_RUN_CACHE_DIR, else $XDG_CACHE_HOME/wasithreads, else ~/.cache/wasithreads, one\n"
    "file per module, library version and engine setting, checked against a checksum\n"
    "before use (a damaged file is recompiled and replaced). The directory must belong to\n"
    "you and be writable by you only; wt-run creates it so. It holds at most\n"
    "$WT_RUN_CACHE_MAX_MB megabytes (default 512): the least recently used modules go\n"
    "first. Delete it to empty the cache. WT_RUN_CACHE_DEBUG=1 says on stderr what the\n"
    "cache did.\n"
    "\n"
    "exit status: the guest's exit code (codes outside 0..255 give 1); 134 when a guest\n"
    "thread trapped; 124 on timeout; 1 when the module cannot be loaded or started; 2 for\n"
    "bad usage.\n";

static int usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "wt-run: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'wt-run --help'.\n");
    va_end(ap);
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

/* Parses a duration as Wasmtime's -W timeout takes it ("500ms", "10s", "2m", "1h"; a
 * bare number is seconds) into milliseconds; returns 0 on success. */
static int parse_duration_ms(const char *s, unsigned long long *ms) {
    static const struct {
        const char *unit;
        unsigned long long ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"", 1000}, {"m", 60000}, {"min", 60000}, {"h", 3600000}};
    if (!s || *s < '0' || *s > '9') return -1;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno) return -1;
    for (size_t k = 0; k < sizeof units / sizeof units[0]; k++) {
        if (strcmp(end, units[k].unit) == 0) {
            if (v > ULLONG_MAX / units[k].ms) return -1;
            *ms = v * units[k].ms;
            return 0;
        }
    }
    return -1;
}

/* Wasmtime's boolean option values. Returns 1 (yes), 0 (no) or -1 (neither). */
static int parse_bool(const char *v) {
    if (!v || !strcmp(v, "y") || !strcmp(v, "yes") || !strcmp(v, "true")) return 1;
    if (!strcmp(v, "n") || !strcmp(v, "no") || !strcmp(v, "false")) return 0;
    return -1;
}

/* ---------------------------------------------------------------------------------------
 * SHA-256 (FIPS 180-4): the cache's keys and checksums. With the x86 SHA extensions when
 * the CPU has them (about 2 GB/s: a 20 MB module costs ~10 ms), else portable C.
 */
struct sha256 {
    uint32_t h[8];
    uint8_t buf[64];
    size_t buffered;
    uint64_t total;
    void (*blocks)(uint32_t h[8], const uint8_t *p, size_t n);
};

static const uint32_t SHA256_K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR32(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_blocks_portable(uint32_t h[8], const uint8_t *p, size_t n) {
    for (; n; n--, p += 64) {
        uint32_t w[64], s[8];
        for (int t = 0; t < 16; t++)
            w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 | (uint32_t)p[4 * t + 2] << 8 | p[4 * t + 3];
        for (int t = 16; t < 64; t++) {
            uint32_t s0 = ROR32(w[t - 15], 7) ^ ROR32(w[t - 15], 18) ^ (w[t - 15] >> 3);
            uint32_t s1 = ROR32(w[t - 2], 17) ^ ROR32(w[t - 2], 19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16] + s0 + w[t - 7] + s1;
        }
        memcpy(s, h, sizeof s);
        for (int t = 0; t < 64; t++) {
            uint32_t ch = (s[4] & s[5]) ^ (~s[4] & s[6]), maj = (s[0] & s[1]) ^ (s[0] & s[2]) ^ (s[1] & s[2]);
            uint32_t t1 = s[7] + (ROR32(s[4], 6) ^ ROR32(s[4], 11) ^ ROR32(s[4], 25)) + ch + SHA256_K[t] + w[t];
            uint32_t t2 = (ROR32(s[0], 2) ^ ROR32(s[0], 13) ^ ROR32(s[0], 22)) + maj;
            memmove(s + 1, s, 7 * sizeof s[0]);
            s[4] += t1;
            s[0] = t1 + t2;
        }
        for (int k = 0; k < 8; k++) h[k] += s[k];
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>

__attribute__((target("sha,sse4.1,ssse3"))) static void sha256_blocks_shani(uint32_t h[8], const uint8_t *p, size_t n) {
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[0]), 0xB1);  /* CDAB */
    __m128i state1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[4]), 0x1B); /* EFGH */
    __m128i state0 = _mm_alignr_epi8(tmp, state1, 8);                                  /* ABEF */
    state1 = _mm_blend_epi16(state1, tmp, 0xF0);                                       /* CDGH */
    for (; n; n--, p += 64) {
        __m128i abef = state0, cdgh = state1, m[4];
        for (int i = 0; i < 16; i++) {
            __m128i w;
            if (i < 4) {
                w = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), bswap);
            } else { /* W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16], 4 words at once */
                w = _mm_sha256msg1_epu32(m[i & 3], m[(i + 1) & 3]);
                w = _mm_add_epi32(w, _mm_alignr_epi8(m[(i + 3) & 3], m[(i + 2) & 3], 4));
                w = _mm_sha256msg2_epu32(w, m[(i + 3) & 3]);
            }
            m[i & 3] = w;
            __m128i k = _mm_add_epi32(w, _mm_loadu_si128((const __m128i *)&SHA256_K[4 * i]));
            state1 = _mm_sha256rnds2_epu32(state1, state0, k);
            state0 = _mm_sha256rnds2_epu32(state0, state1, _mm_shuffle_epi32(k, 0x0E));
        }
        state0 = _mm_add_epi32(state0, abef);
        state1 = _mm_add_epi32(state1, cdgh);
    }
    tmp = _mm_shuffle_epi32(state0, 0x1B);    /* FEBA */
    state1 = _mm_shuffle_epi32(state1, 0xB1); /* DCHG */
    _mm_storeu_si128((__m128i *)&h[0], _mm_blend_epi16(tmp, state1, 0xF0)); /* DCBA */
    _mm_storeu_si128((__m128i *)&h[4], _mm_alignr_epi8(state1, tmp, 8));    /* HGFE */
}

static int cpu_has_sha(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3)) return 0;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29));
}
#else
static int cpu_has_sha(void) { return 0; }
#define sha256_blocks_shani sha256_blocks_portable
#endif

/* `portable` forces the portable code (for its test). */
static void sha256_init(struct sha256 *s, int portable) {
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, iv, sizeof iv);
    s->buffered = 0;
    s->total = 0;
    s->blocks = !portable && cpu_has_sha() ? sha256_blocks_shani : sha256_blocks_portable;
}

static void sha256_update(struct sha256 *s, const void *data, size_t len) {
    const uint8_t *p = data;
    s->total += len;
    if (s->buffered) {
        size_t take = 64 - s->buffered < len ? 64 - s->buffered : len;
        memcpy(s->buf + s->buffered, p, take);
        s->buffered += take;
        p += take;
        len -= take;
        if (s->buffered < 64) return;
        s->blocks(s->h, s->buf, 1);
        s->buffered = 0;
    }
    s->blocks(s->h, p, len / 64);
    p += len / 64 * 64;
    memcpy(s->buf, p, len % 64);
    s->buffered = len % 64;
}

static void sha256_final(struct sha256 *s, uint8_t out[32]) {
    uint64_t bits = s->total * 8;
    uint8_t pad[72] = {0x80};
    size_t padlen = (s->buffered < 56 ? 56 : 120) - s->buffered;
    for (int k = 0; k < 8; k++) pad[padlen + k] = (uint8_t)(bits >> (56 - 8 * k));
    sha256_update(s, pad, padlen + 8);
    for (int k = 0; k < 8; k++) {
        out[4 * k] = (uint8_t)(s->h[k] >> 24);
        out[4 * k + 1] = (uint8_t)(s->h[k] >> 16);
        out[4 * k + 2] = (uint8_t)(s->h[k] >> 8);
        out[4 * k + 3] = (uint8_t)s->h[k];
    }
}

static void hex(const uint8_t *d, size_t n, char *out) {
    for (size_t k = 0; k < n; k++) sprintf(out + 2 * k, "%02x", d[k]);
}

/* ---------------------------------------------------------------------------------------
 * The compile cache.
 *
 * An entry is the library's serialized module (wt_module_serialize), which is machine code
 * that wt_module_deserialize trusts: so an entry is used only if it is exactly what this
 * program wrote. Its file name is the key, the SHA-256 of everything that decides the
 * compiled code: the module's bytes, the library's version and the identity of its file
 * (a rebuilt library at the same version does not reuse old code), and the engine
 * settings that change code (stack size, epoch interruption). The file holds
 *
 *   magic (16 bytes) | key (32) | payload length (u64 LE) | SHA-256 of payload (32) | payload
 *
 * and is used only if its magic, key, length and checksum all match; anything else (a
 * write cut short, a damaged disk, another program's file) is compiled again and
 * replaced. Entries are written to a temporary file in the cache directory and renamed
 * over the entry, so readers see a whole entry or none, and two processes filling the
 * same entry at once both succeed (the last rename wins; both wrote the same bytes). The
 * directory is created 0700 and used only if it belongs to this user and no one else may
 * write to it: nobody else can then plant code for us to run.
 *
 * The cache holds at most WT_RUN_CACHE_MAX_MB megabytes (default 512, as Wasmtime's):
 * each store removes the least recently used entries past that (a hit sets its entry's
 * mtime), and temporary files that processes which died left more than an hour ago.
 */
static const uint8_t CACHE_MAGIC[16] = "wt-run-cache\0\0\0\1";
enum { CACHE_HEADER = 16 + 32 + 8 + 32 };

struct cache {
    int enabled;
    unsigned long long max_bytes;
    int debug;    /* WT_RUN_CACHE_DEBUG: say what the cache does on stderr */
    int portable; /* WT_RUN_CACHE_DEBUG=portable-sha256: also force portable SHA-256 */
    char *dir;
    char entry[PATH_MAX];
    uint8_t key[32];
};

static void cache_say(const struct cache *c, const char *fmt, ...) {
    if (!c->debug) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "wt-run: cache: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* The cache directory: --cache-dir, WT_RUN_CACHE_DIR, $XDG_CACHE_HOME/wasithreads or
 * $HOME/.cache/wasithreads. NULL if none can be named. The caller frees it. */
static char *cache_dir_name(const char *option) {
    const char *env = getenv("WT_RUN_CACHE_DIR");
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    char *dir = NULL;
    if (option && *option) dir = strdup(option);
    else if (env && *env) dir = strdup(env);
    else if (xdg && *xdg == '/') {
        if (asprintf(&dir, "%s/wasithreads", xdg) < 0) dir = NULL;
    } else if (home && *home) {
        if (asprintf(&dir, "%s/.cache/wasithreads", home) < 0) dir = NULL;
    }
    return dir;
}

/* Creates `dir` (and its parents) if needed, then checks that only we can write to it.
 * Returns 0 if the cache may use it. */
static int cache_dir_ready(struct cache *c) {
    char *path = c->dir;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        int r = mkdir(path, 0700);
        *p = '/';
        if (r && errno != EEXIST) break;
    }
    if (mkdir(path, 0700) && errno != EEXIST) {
        cache_say(c, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (stat(path, &st) || !S_ISDIR(st.st_mode)) {
        cache_say(c, "%s is not a directory", path);
        return -1;
    }
    if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
        fprintf(stderr, "wt-run: not using the compile cache %s: it must belong to you and be writable by you only\n",
                path);
        return -1;
    }
    return 0;
}

/* Where the library's code is, to tell a rebuilt library from the one that wrote an entry. */
static void hash_library_identity(struct sha256 *s) {
    Dl_info info;
    struct stat st;
    char id[256] = "unknown";
    if (dladdr((void *)(uintptr_t)&wt_version, &info) && info.dli_fname && stat(info.dli_fname, &st) == 0)
        snprintf(id, sizeof id, "%llu:%llu:%lld:%lld.%09ld", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
                 st.st_mtim.tv_nsec);
    sha256_update(s, id, strlen(id) + 1);
}

/* Computes the entry's key and path for a module. */
static void cache_key(struct cache *c, const uint8_t *module, size_t len, size_t max_wasm_stack) {
    struct sha256 s;
    uint8_t digest[32];
    char settings[128], hexed[65];
    sha256_init(&s, c->portable);
    sha256_update(&s, module, len);
    sha256_final(&s, digest);
    hex(digest, 32, hexed);
    cache_say(c, "module sha256 %s", hexed);

    sha256_init(&s, c->portable);
    sha256_update(&s, CACHE_MAGIC, sizeof CACHE_MAGIC);
    sha256_update(&s, wt_version(), strlen(wt_version()) + 1);
    hash_library_identity(&s);
    const char *epoch = getenv("WASITHREADS_EPOCH_INTERRUPTION");
    snprintf(settings, sizeof settings, "opt-level=1 max-wasm-stack=%zu epoch=%s", max_wasm_stack,
             epoch && !strcmp(epoch, "1") ? "1" : "0");
    sha256_update(&s, settings, strlen(settings) + 1);
    sha256_update(&s, digest, sizeof digest);
    sha256_final(&s, c->key);
    hex(c->key, 32, hexed);
    snprintf(c->entry, sizeof c->entry, "%s/%s.wtc", c->dir, hexed);
}

static void put_u64(uint8_t *p, uint64_t v) {
    for (int k = 0; k < 8; k++) p[k] = (uint8_t)(v >> (8 * k));
}

static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int k = 0; k < 8; k++) v |= (uint64_t)p[k] << (8 * k);
    return v;
}

/* Loads the module from its cache entry. Returns 0 and sets *out on a hit; -1 if there
 * is no usable entry (the caller compiles and stores it). */
static int cache_load(struct cache *c, const wt_engine_t *engine, wt_module_t **out) {
    int fd = open(c->entry, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        cache_say(c, "miss %s", c->entry);
        return -1;
    }
    futimens(fd, NULL); /* recently used: the last entry cache_trim removes */
    struct stat st;
    const char *why = NULL;
    uint8_t *map = MAP_FAILED;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size < CACHE_HEADER) why = "too short";
    else if ((map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0)) == MAP_FAILED) why = strerror(errno);
    close(fd);
    if (!why) {
        uint64_t len = get_u64(map + 48);
        uint8_t sum[32];
        if (memcmp(map, CACHE_MAGIC, 16)) why = "not a wt-run cache entry";
        else if (memcmp(map + 16, c->key, 32)) why = "another module's entry";
        else if (len != (uint64_t)st.st_size - CACHE_HEADER) why = "truncated or extended";
        else {
            struct sha256 s;
            sha256_init(&s, c->portable);
            sha256_update(&s, map + CACHE_HEADER, (size_t)len);
            sha256_final(&s, sum);
            if (memcmp(sum, map + 56, 32)) why = "checksum mismatch";
        }
        if (!why) {
            wt_error_t *err = wt_module_deserialize(engine, map + CACHE_HEADER, (size_t)len, out);
            if (err) {
                cache_say(c, "entry %s refused: %s", c->entry, wt_error_message(err));
                wt_error_free(err);
                why = "refused by the library";
            }
        }
    }
    if (map != MAP_FAILED) munmap(map, (size_t)st.st_size);
    if (why) {
        cache_say(c, "ignoring damaged entry %s (%s): compiling again", c->entry, why);
        return -1;
    }
    cache_say(c, "hit %s", c->entry);
    return 0;
}

struct cached_file {
    char *name;
    off_t size;
    time_t mtime;
};

static int by_mtime(const void *a, const void *b) {
    time_t x = ((const struct cached_file *)a)->mtime, y = ((const struct cached_file *)b)->mtime;
    return (x > y) - (x < y);
}

static int ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && strcmp(s + n - m, tail) == 0;
}

/* Removes the least recently used entries past c->max_bytes (never the one just
 * stored) and temporary files older than an hour. */
static void cache_trim(struct cache *c) {
    DIR *d = opendir(c->dir);
    if (!d) return;
    const char *stored = strrchr(c->entry, '/') + 1;
    struct cached_file *files = NULL;
    size_t len = 0, cap = 0;
    unsigned long long total = 0;
    time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode)) continue;
        if (ends_with(e->d_name, ".tmp")) {
            if (now - st.st_mtime > 3600 && unlinkat(dirfd(d), e->d_name, 0) == 0)
                cache_say(c, "removed %s, left by a process that died", e->d_name);
            continue;
        }
        if (!ends_with(e->d_name, ".wtc")) continue;
        total += (unsigned long long)st.st_size;
        if (strcmp(e->d_name, stored) == 0) continue;
        if (len == cap) {
            struct cached_file *grown = realloc(files, (cap = cap ? 2 * cap : 64) * sizeof *files);
            if (!grown) break;
            files = grown;
        }
        if (!(files[len].name = strdup(e->d_name))) break;
        files[len].size = st.st_size;
        files[len++].mtime = st.st_mtime;
    }
    qsort(files, len, sizeof *files, by_mtime);
    for (size_t k = 0; k < len; k++) {
        if (total > c->max_bytes && unlinkat(dirfd(d), files[k].name, 0) == 0) {
            total -= (unsigned long long)files[k].size;
            cache_say(c, "removed %s (least recently used; the cache holds at most %llu MB)", files[k].name,
                      c->max_bytes >> 20);
        }
        free(files[k].name);
    }
    free(files);
    closedir(d);
}

/* Writes the module's entry: a temporary file renamed over the entry. Failures only
 * cost the next run a compilation. */
static void cache_store(struct cache *c, const wt_module_t *module) {
    wt_bytes_t bytes = {NULL, 0};
    wt_error_t *err = wt_module_serialize(module, &bytes);
    if (err) {
        cache_say(c, "cannot serialize the module: %s", wt_error_message(err));
        wt_error_free(err);
        return;
    }
    uint8_t header[CACHE_HEADER];
    struct sha256 s;
    memcpy(header, CACHE_MAGIC, 16);
    memcpy(header + 16, c->key, 32);
    put_u64(header + 48, bytes.len);
    sha256_init(&s, c->portable);
    sha256_update(&s, bytes.data, bytes.len);
    sha256_final(&s, header + 56);

    char tmp[PATH_MAX + 32];
    static unsigned counter;
    snprintf(tmp, sizeof tmp, "%s.%ld.%u.tmp", c->entry, (long)getpid(), counter++);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int ok = fd >= 0;
    if (ok) {
        struct iovec iov[2] = {{header, sizeof header}, {bytes.data, bytes.len}};
        size_t want = sizeof header + bytes.len, done = 0;
        while (ok && done < want) {
            ssize_t n = writev(fd, iov, 2);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                ok = 0;
                break;
            }
            done += (size_t)n;
            for (int k = 0; k < 2; k++) { /* skip what was written */
                size_t used = (size_t)n < iov[k].iov_len ? (size_t)n : iov[k].iov_len;
                iov[k].iov_base = (uint8_t *)iov[k].iov_base + used;
                iov[k].iov_len -= used;
                n -= (ssize_t)used;
            }
        }
        if (close(fd)) ok = 0;
        if (ok && rename(tmp, c->entry)) ok = 0;
        if (!ok) unlink(tmp);
    }
    if (ok) cache_say(c, "stored %s (%zu bytes)", c->entry, bytes.len);
    else cache_say(c, "cannot write %s: %s", c->entry, strerror(errno));
    wt_bytes_free(&bytes);
    if (ok) cache_trim(c);
}

/* Reads the whole file (mapped when it can be). Returns 0, or -1 with errno set. */
static int read_module(const char *path, uint8_t **data, size_t *len, int *mapped) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p != MAP_FAILED) {
            close(fd);
            *data = p;
            *len = (size_t)st.st_size;
            *mapped = 1;
            return 0;
        }
    }
    size_t cap = 1 << 16, n = 0; /* a pipe, or a file that cannot be mapped */
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            close(fd);
            errno = ENOMEM;
            return -1;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            errno = e;
            return -1;
        }
        if (r == 0) break;
        n += (size_t)r;
        if (n == cap) {
            uint8_t *grown = realloc(buf, cap *= 2);
            if (!grown) free(buf);
            buf = grown;
        }
    }
    close(fd);
    *data = buf;
    *len = n;
    *mapped = 0;
    return 0;
}

/* Loads the module at `path` through the cache. */
static wt_error_t *load_module(struct cache *c, const wt_engine_t *engine, const char *path, size_t max_wasm_stack,
                               wt_module_t **module, int *status) {
    uint8_t *data;
    size_t len;
    int mapped;
    if (read_module(path, &data, &len, &mapped)) {
        fprintf(stderr, "wt-run: loading the module: reading %s: %s\n", path, strerror(errno));
        *status = 1;
        return NULL;
    }
    cache_key(c, data, len, max_wasm_stack);
    wt_error_t *err = NULL;
    if (cache_load(c, engine, module) != 0) {
        err = wt_module_load(engine, data, len, module);
        if (!err) cache_store(c, *module);
    }
    if (mapped) munmap(data, len);
    else free(data);
    return err;
}

/* --------------------------------------------------------------------------------------- */

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
        if (print)
            fprintf(stderr, "wt-run: thread %d was stopped here:\n%s\n", stops.items[k].tid, stops.items[k].backtrace);
        free(stops.items[k].backtrace);
    }
    free(stops.items);
    stops.items = NULL;
    stops.len = stops.cap = 0;
    pthread_mutex_unlock(&stops.lock);
}

/* Reports and frees an error; returns 1. */
static int fail(const char *what, wt_error_t *err) {
    const char *message = wt_error_message(err);
    fprintf(stderr, "wt-run: %s: %s\n", what, message);
    if (wt_error_kind(err) == WT_ERROR_LINK && strstr(message, "unknown import"))
        fprintf(stderr, "wt-run: wt-run defines no host functions (nor does Wasmtime's `wasmtime run`): a module "
                        "that imports any cannot run here; embed it with the library instead\n");
    wt_error_free(err);
    return 1;
}

/* ---------------------------------------------------------------------------------------
 * --invoke NAME [ARGS...]: instantiate (the module's `_initialize` runs, `_start` does
 * not), call the export NAME with ARGS parsed by its type, print its results one a line,
 * as Wasmtime 46's `wasmtime run --invoke` does.
 */

static const char *kind_name(wt_valkind_t k) {
    switch (k) {
    case WT_I32: return "i32";
    case WT_I64: return "i64";
    case WT_F32: return "f32";
    case WT_F64: return "f64";
    }
    return "?";
}

/* Writes export `name`'s type as "(i32, i32) -> i32" to `out`; 0, or -1 if there is no
 * such callable export. */
static int export_signature(const wt_instance_t *inst, const char *name, char *out, size_t size) {
    wt_valkind_t params[64], results[64];
    size_t np = 0, nr = 0;
    wt_error_t *err = wt_instance_export_type(inst, name, params, 64, &np, results, 64, &nr);
    if (err) {
        wt_error_free(err);
        return -1;
    }
    size_t len = 0;
    len += (size_t)snprintf(out + len, size - len, "(");
    for (size_t k = 0; k < np && k < 64 && len < size; k++)
        len += (size_t)snprintf(out + len, size - len, "%s%s", k ? ", " : "", kind_name(params[k]));
    if (np > 64 && len < size) len += (size_t)snprintf(out + len, size - len, ", ...");
    if (len < size) len += (size_t)snprintf(out + len, size - len, ") -> %s", nr == 1 ? "" : "(");
    for (size_t k = 0; k < nr && k < 64 && len < size; k++)
        len += (size_t)snprintf(out + len, size - len, "%s%s", k ? ", " : "", kind_name(results[k]));
    if (nr != 1 && len < size) snprintf(out + len, size - len, "%s)", nr > 64 ? ", ..." : "");
    return 0;
}

/* Lists the exports --invoke can call, with their types, on stderr. */
static void list_exports(const wt_instance_t *inst) {
    size_t n = wt_instance_export_count(inst);
    if (n == 0) {
        fprintf(stderr, "wt-run: the module exports no function --invoke can call\n");
        return;
    }
    fprintf(stderr, "wt-run: the functions --invoke can call:\n");
    for (size_t k = 0; k < n; k++) {
        const char *name = wt_instance_export_name(inst, k);
        char sig[512];
        if (name && export_signature(inst, name, sig, sizeof sig) == 0) fprintf(stderr, "  %s %s\n", name, sig);
    }
}

/* Parses an integer argument as Wasmtime 46 does: decimal with an optional sign, or
 * hexadecimal after 0x/0X (no sign), within [min, max]. Returns 0 on success. */
static int parse_int_arg(const char *s, long long min, long long max, long long *out) {
    int hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
    const char *digits = hex ? s + 2 : s + (s[0] == '+' || s[0] == '-');
    if (!*digits) return -1;
    for (const char *p = digits; *p; p++)
        if (!(hex ? (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F')
                  : (*p >= '0' && *p <= '9')))
            return -1;
    errno = 0;
    long long v;
    if (hex) {
        unsigned long long u = strtoull(digits, NULL, 16);
        if (errno || u > (unsigned long long)max) return -1;
        v = (long long)u;
    } else {
        v = strtoll(s, NULL, 10);
        if (errno || v < min || v > max) return -1;
    }
    *out = v;
    return 0;
}

/* Parses a float argument as Rust's (so Wasmtime 46's) f32/f64 parsing does: an optional
 * sign, then `inf`, `infinity` or `nan` in any case, or decimal digits with an optional
 * point and exponent. Returns 0 on success. */
static int parse_float_arg(const char *s, int f32, double *out) {
    const char *p = s + (s[0] == '+' || s[0] == '-');
    if (!strcasecmp(p, "inf") || !strcasecmp(p, "infinity") || !strcasecmp(p, "nan")) {
        *out = tolower((unsigned char)p[0]) == 'n' ? NAN : (s[0] == '-' ? -INFINITY : INFINITY);
        return 0;
    }
    size_t before = strspn(p, "0123456789"), after = 0;
    const char *q = p + before;
    if (*q == '.') {
        after = strspn(q + 1, "0123456789");
        q += 1 + after;
    }
    if (before + after == 0) return -1;
    if (*q == 'e' || *q == 'E') {
        q++;
        q += *q == '+' || *q == '-';
        size_t exp = strspn(q, "0123456789");
        if (!exp) return -1;
        q += exp;
    }
    if (*q) return -1;
    /* strtof/strtod round correctly; out of range gives +-inf, as Rust's parse does. */
    *out = f32 ? (double)strtof(s, NULL) : strtod(s, NULL);
    return 0;
}

/* Prints a float as Rust's `Display` (so Wasmtime 46) does: the shortest digits that read
 * back as the same value, positional (never an exponent); `NaN`, `inf`, `-inf`, `-0`. */
static void print_float(double v, int f32) {
    if (isnan(v)) {
        puts("NaN");
        return;
    }
    if (isinf(v)) {
        puts(v < 0 ? "-inf" : "inf");
        return;
    }
    char e[64];
    for (int prec = 0; prec < 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec, v);
        if (f32 ? strtof(e, NULL) == (float)v : strtod(e, NULL) == v) break;
    }
    /* e is "[-]D[.DDD]e[+-]XX": its digits and the exponent of the first one. */
    char digits[32];
    size_t n = 0;
    const char *p = e + (e[0] == '-');
    for (; *p != 'e'; p++)
        if (*p != '.') digits[n++] = *p;
    while (n > 1 && digits[n - 1] == '0') n--;
    long exp = strtol(p + 1, NULL, 10);
    if (e[0] == '-') putchar('-');
    if (exp < 0) {
        fputs("0.", stdout);
        for (long k = 0; k < -exp - 1; k++) putchar('0');
        fwrite(digits, 1, n, stdout);
    } else if ((size_t)exp + 1 >= n) {
        fwrite(digits, 1, n, stdout);
        for (size_t k = n; k < (size_t)exp + 1; k++) putchar('0');
    } else {
        fwrite(digits, 1, (size_t)exp + 1, stdout);
        putchar('.');
        fwrite(digits + exp + 1, 1, n - (size_t)exp - 1, stdout);
    }
    putchar('\n');
}

/* The exit status and message of an ended run or instance, as a run reports them. */
static int report_exit(const wt_exit_t *how) {
    fflush(stdout);
    switch (how->kind) {
    case WT_EXIT_CODE:
        if (how->code < 0 || how->code > 255) {
            fprintf(stderr, "wt-run: the guest exited with code %d, which is not a process exit status\n", how->code);
            return 1;
        }
        return how->code;
    case WT_EXIT_TRAP:
        fprintf(stderr, "wt-run: guest thread %d trapped: %s\n", how->tid, how->message ? how->message : "");
        return 134;
    case WT_EXIT_TIMEOUT:
        fprintf(stderr, "wt-run: timed out\n");
        return 124;
    case WT_EXIT_CANCELLED: return 130;
    }
    return 1;
}

/* Instantiates the module, calls `name` with `args` and prints its results. Returns the
 * exit status. */
static int invoke(const wt_engine_t *engine, const wt_module_t *module, const wt_run_config_t *config,
                  const char *name, char **args, int nargs) {
    wt_instance_t *inst = NULL;
    wt_error_t *err = wt_instance_new(engine, module, config, &inst);
    if (err) {
        int status = fail("instantiating the module", err);
        report_stops(1);
        return status;
    }
    int status = 2;
    wt_val_t *vals = NULL, *results = NULL;
    wt_valkind_t params[64], kinds[64];
    size_t np = 0, nr = 0;
    char sig[512];
    err = wt_instance_export_type(inst, name, params, 64, &np, kinds, 64, &nr);
    if (err) {
        wt_error_free(err);
        fprintf(stderr, "wt-run: --invoke %s: the module exports no function %s that wt-run can call\n", name, name);
        list_exports(inst);
        goto out;
    }
    export_signature(inst, name, sig, sizeof sig);
    if (np > 64 || nr > 64) {
        fprintf(stderr, "wt-run: --invoke %s: %s has too many parameters or results\n", name, sig);
        goto out;
    }
    if ((size_t)nargs != np) {
        fprintf(stderr, "wt-run: --invoke %s takes %zu argument%s, %s, not %d\nTry 'wt-run --help'.\n", name, np,
                np == 1 ? "" : "s", sig, nargs);
        goto out;
    }
    vals = calloc(np + 1, sizeof *vals);
    results = calloc(nr + 1, sizeof *results);
    if (!vals || !results) {
        status = 1;
        goto out;
    }
    for (size_t k = 0; k < np; k++) {
        long long v = 0;
        double d = 0;
        int bad;
        vals[k].kind = params[k];
        switch (params[k]) {
        case WT_I32:
            bad = parse_int_arg(args[k], INT32_MIN, INT32_MAX, &v);
            vals[k].of.i32 = (int32_t)v;
            break;
        case WT_I64:
            bad = parse_int_arg(args[k], INT64_MIN, INT64_MAX, &v);
            vals[k].of.i64 = (int64_t)v;
            break;
        case WT_F32:
            bad = parse_float_arg(args[k], 1, &d);
            vals[k].of.f32 = (float)d;
            break;
        default:
            bad = parse_float_arg(args[k], 0, &d);
            vals[k].of.f64 = d;
            break;
        }
        if (bad) {
            fprintf(stderr, "wt-run: --invoke %s %s: argument %zu, '%s', is not an %s\nTry 'wt-run --help'.\n", name,
                    sig, k + 1, args[k], kind_name(params[k]));
            goto out;
        }
    }
    wt_exit_t how;
    err = wt_instance_call(inst, name, vals, np, results, nr, &how);
    if (err && wt_error_kind(err) == WT_ERROR_ENDED) {
        wt_error_free(err);
        wt_instance_free(inst);
        inst = NULL;
        status = report_exit(&how);
        report_stops(how.kind != WT_EXIT_CODE);
        wt_exit_clear(&how);
        goto out;
    }
    if (err) {
        status = fail("--invoke", err);
        goto out;
    }
    for (size_t k = 0; k < nr; k++) {
        switch (results[k].kind) {
        case WT_I32: printf("%" PRId32 "\n", results[k].of.i32); break;
        case WT_I64: printf("%" PRId64 "\n", results[k].of.i64); break;
        case WT_F32: print_float(results[k].of.f32, 1); break;
        case WT_F64: print_float(results[k].of.f64, 0); break;
        }
    }
    fflush(stdout);
    status = 0;
out:
    free(vals);
    free(results);
    wt_instance_free(inst); /* ends the threads the guest left running */
    report_stops(0);
    return status;
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

/* Applies --env KEY=VALUE, or --env KEY (wt-run's own value, if it has one). */
static wt_error_t *add_env(wt_run_config_t *config, const char *spec) {
    const char *eq = strchr(spec, '=');
    if (!eq) {
        const char *value = getenv(spec);
        return value ? wt_run_config_push_env(config, spec, value) : NULL;
    }
    char *key = strndup(spec, (size_t)(eq - spec));
    wt_error_t *err = wt_run_config_push_env(config, key, eq + 1);
    free(key);
    return err;
}

/* What wt-run's options set beyond the run config. */
struct settings {
    wt_run_config_t *config;
    size_t max_wasm_stack; /* SIZE_MAX = the library's default */
    int cache;
    const char *cache_dir;
    int listenfd;               /* --listenfd / -S listenfd */
    char *tcplisten[64];        /* --tcplisten / -S tcplisten addresses, in order (owned) */
    size_t tcplisten_len;
    const char *invoke; /* --invoke NAME, or NULL to run _start */
};

/* Records one --tcplisten address; returns 0, or an exit status after printing why. */
static int add_tcplisten(struct settings *set, const char *addr) {
    if (!addr || !*addr) return usage_error("--tcplisten needs an address such as 127.0.0.1:8080");
    if (set->tcplisten_len == sizeof set->tcplisten / sizeof set->tcplisten[0])
        return usage_error("at most %zu --tcplisten addresses", sizeof set->tcplisten / sizeof set->tcplisten[0]);
    set->tcplisten[set->tcplisten_len++] = strdup(addr);
    return 0;
}

/* Gives the guest its sockets, in Wasmtime 46's order: the inherited ones (--listenfd:
 * LISTEN_FDS descriptors from 3 when LISTEN_PID is this process, else none), then each
 * --tcplisten address. Returns 0, or an exit status after printing why. */
static int add_sockets(struct settings *set) {
    if (set->listenfd) {
        const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
        unsigned long long p = 0, n = 0;
        if (pid && fds && !parse_u64(pid, ULLONG_MAX, &p) && p == (unsigned long long)getpid() &&
            !parse_u64(fds, 1024, &n)) {
            for (unsigned long long k = 0; k < n; k++) {
                wt_error_t *err = wt_run_config_preopen_socket(set->config, (int32_t)(3 + k));
                if (err) return fail("--listenfd", err);
            }
            const char *names = getenv("LISTEN_FDNAMES");
            wt_error_t *err = wt_run_config_push_env(set->config, "LISTEN_FDS", fds);
            if (!err && names) err = wt_run_config_push_env(set->config, "LISTEN_FDNAMES", names);
            if (err) return fail("--listenfd", err);
        }
    }
    for (size_t k = 0; k < set->tcplisten_len; k++) {
        uint16_t port = 0;
        wt_error_t *err = wt_run_config_preopen_tcp_listener(set->config, set->tcplisten[k], &port);
        if (err && wt_error_kind(err) == WT_ERROR_MISUSE) {
            int status = usage_error("--tcplisten: %s", wt_error_message(err));
            wt_error_free(err);
            return status;
        }
        if (err) return fail("--tcplisten", err);
        const char *colon = strrchr(set->tcplisten[k], ':');
        if (colon && strcmp(colon, ":0") == 0)
            fprintf(stderr, "wt-run: --tcplisten %s listens on port %u\n", set->tcplisten[k], (unsigned)port);
    }
    return 0;
}

/* Wasmtime options wt-run does not have, and what to use instead. */
static const struct {
    const char *option, *instead;
} REFUSED[] = {
    {"--mapdir", "use --dir HOST::GUEST"},
    {"--allow-precompiled", "wt-run caches compiled modules itself; give it the .wasm file"},
    {"--preload", "wt-run runs one module; linking others is not supported"},
    {"--wasi", "use -S"},
    {"-O", "wt-run compiles with Cranelift's opt level 1; optimisation options are not supported"},
    {"--optimize", "wt-run compiles with Cranelift's opt level 1; optimisation options are not supported"},
    {"-D", "debug options are not supported; --coredump PATH writes a core dump on a trap"},
    {"--debug", "debug options are not supported; --coredump PATH writes a core dump on a trap"},
};

/* Applies the comma-separated KEY[=VALUE] list of a -W, -S or -C option. Returns 0, or
 * an exit status after printing why. */
static int apply_keys(struct settings *set, char which, const char *list) {
    char *copy = strdup(list), *save = NULL;
    int status = 0;
    for (char *item = strtok_r(copy, ",", &save); item && !status; item = strtok_r(NULL, ",", &save)) {
        char *value = strchr(item, '=');
        if (value) *value++ = '\0';
        int yes = parse_bool(value);
        unsigned long long n;
        if (which == 'W' && (!strcmp(item, "threads") || !strcmp(item, "shared-memory"))) {
            if (yes != 1)
                status = usage_error("-W %s=%s: wasi-threads and shared memory are always on in wt-run", item, value);
        } else if (which == 'W' && !strcmp(item, "max-memory-size")) {
            if (parse_u64(value, UINT64_MAX, &n)) status = usage_error("-W max-memory-size needs a number of bytes");
            else wt_run_config_set_max_memory(set->config, n);
        } else if (which == 'W' && !strcmp(item, "max-wasm-stack")) {
            if (parse_u64(value, SIZE_MAX - 1, &n)) status = usage_error("-W max-wasm-stack needs a number of bytes");
            else set->max_wasm_stack = (size_t)n;
        } else if (which == 'W' && !strcmp(item, "timeout")) {
            if (parse_duration_ms(value, &n)) status = usage_error("-W timeout needs a duration such as 500ms or 10s");
            else wt_run_config_set_timeout_ms(set->config, n);
        } else if (which == 'S' && !strcmp(item, "threads")) {
            if (yes != 1) status = usage_error("-S threads=%s: wasi-threads is always on in wt-run", value);
        } else if (which == 'S' && !strcmp(item, "inherit-env")) {
            if (yes < 0) status = usage_error("-S inherit-env takes y or n");
            else wt_run_config_inherit_env(set->config, yes);
        } else if (which == 'S' && !strcmp(item, "preview2")) {
            if (yes != 0)
                status = usage_error("-S preview2: wt-run runs WASI preview 1 modules; components and WASI preview 2 "
                                     "are not supported");
        } else if (which == 'S' && !strcmp(item, "cli")) {
            if (yes != 1)
                status = usage_error("-S cli=%s: wt-run always gives the guest WASI's command-line interface", value);
        } else if (which == 'S' && !strcmp(item, "tcplisten")) {
            status = add_tcplisten(set, value);
        } else if (which == 'S' && !strcmp(item, "listenfd")) {
            if (yes < 0) status = usage_error("-S listenfd takes y or n");
            else set->listenfd = yes;
        } else if (which == 'S' && (!strcmp(item, "inherit-network") || !strcmp(item, "network") ||
                                    !strcmp(item, "tcp") || !strcmp(item, "udp") ||
                                    !strcmp(item, "allow-ip-name-lookup"))) {
            status = usage_error("-S %s is not supported: wt-run gives guests only the listening sockets of "
                                 "--tcplisten and --listenfd",
                                 item);
        } else if (which == 'C' && !strcmp(item, "cache")) {
            if (yes < 0) status = usage_error("-C cache takes y or n");
            else set->cache = yes;
        } else if (which == 'C' && !strcmp(item, "cache-config")) {
            status = usage_error("-C cache-config is not supported: use --cache-dir DIR or --no-cache");
        } else {
            status = usage_error("-%c %s is not supported by wt-run (see wt-run --help)", which, item);
        }
    }
    free(copy);
    return status;
}

int main(int argc, char **argv) {
    wt_run_config_t *config = wt_run_config_new();
    if (!config) return 1;
    wt_run_config_set_diagnostic_callback(config, print_diagnostic, NULL);
    wt_run_config_set_thread_exit_callback(config, record_stop, NULL);
    struct settings set = {config, SIZE_MAX, 1, NULL, 0, {NULL}, 0, NULL};
    struct cache cache = {0};
    int status = 2;
    int i = 1;
    wt_error_t *err = NULL;

    if (i < argc && strcmp(argv[i], "run") == 0) i++; /* `wasmtime run` */
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        } else if (a[0] != '-' || a[1] == '\0') {
            break; /* the module */
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(USAGE, stdout);
            wt_run_config_free(config);
            return 0;
        } else if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
            printf("wt-run %s\n", wt_version());
            wt_run_config_free(config);
            return 0;
        } else if (strcmp(a, "--inherit-env") == 0) {
            wt_run_config_inherit_env(config, true);
            continue;
        } else if (strcmp(a, "--no-cache") == 0) {
            set.cache = 0;
            continue;
        } else if (strcmp(a, "--listenfd") == 0) {
            set.listenfd = 1;
            continue;
        }
        /* An option with a value: "--name value", "--name=value", "-W value", "-Wvalue". */
        char name[32];
        const char *value;
        int attached = 0;
        if (a[1] != '-') {
            snprintf(name, sizeof name, "%.2s", a);
            attached = a[2] != '\0';
            value = attached ? a + 2 : NULL;
        } else {
            const char *eq = strchr(a, '=');
            snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - a) : (int)strlen(a), a);
            attached = eq != NULL;
            value = eq ? eq + 1 : NULL;
        }
        for (size_t k = 0; k < sizeof REFUSED / sizeof REFUSED[0]; k++) {
            if (strcmp(name, REFUSED[k].option) == 0) {
                status = usage_error("%s is not supported: %s", name, REFUSED[k].instead);
                goto out;
            }
        }
        static const char *const WITH_VALUE[] = {
            "--dir",      "--dir-ro",         "--env",       "--max-threads", "--timeout-ms", "--max-memory",
            "--max-fds",  "--coredump",       "--max-wasm-stack", "--cache-dir", "--tcplisten", "--invoke",
            "-W",         "-S",               "-C",
        };
        int known = 0;
        for (size_t k = 0; k < sizeof WITH_VALUE / sizeof WITH_VALUE[0]; k++) known |= strcmp(name, WITH_VALUE[k]) == 0;
        if (!known) {
            status = usage_error("unknown option '%s'", a);
            goto out;
        }
        if (!attached) {
            if (i + 1 >= argc) {
                status = usage_error("option '%s' needs a value", name);
                goto out;
            }
            value = argv[++i];
        }
        unsigned long long n;
        if (strcmp(name, "--dir") == 0 || strcmp(name, "--dir-ro") == 0) {
            if ((err = add_dir(config, value, name[5] == '-'))) goto config_error;
        } else if (strcmp(name, "--env") == 0) {
            if (value[0] == '=' || value[0] == '\0') {
                status = usage_error("--env needs KEY=VALUE or KEY, not '%s'", value);
                goto out;
            }
            if ((err = add_env(config, value))) goto config_error;
        } else if (strcmp(name, "--max-threads") == 0) {
            if (parse_u64(value, UINT32_MAX, &n)) {
                status = usage_error("--max-threads needs a number, not '%s'", value);
                goto out;
            }
            wt_run_config_set_max_threads(config, (uint32_t)n);
        } else if (strcmp(name, "--timeout-ms") == 0) {
            if (parse_u64(value, UINT64_MAX, &n)) {
                status = usage_error("--timeout-ms needs a number, not '%s'", value);
                goto out;
            }
            wt_run_config_set_timeout_ms(config, n);
        } else if (strcmp(name, "--max-memory") == 0) {
            if (parse_u64(value, UINT64_MAX, &n)) {
                status = usage_error("--max-memory needs a number of bytes, not '%s'", value);
                goto out;
            }
            wt_run_config_set_max_memory(config, n);
        } else if (strcmp(name, "--max-wasm-stack") == 0) {
            if (parse_u64(value, SIZE_MAX - 1, &n)) {
                status = usage_error("--max-wasm-stack needs a number of bytes, not '%s'", value);
                goto out;
            }
            set.max_wasm_stack = (size_t)n;
        } else if (strcmp(name, "--coredump") == 0) {
            if ((err = wt_run_config_set_coredump_path(config, value))) goto config_error;
        } else if (strcmp(name, "--max-fds") == 0) {
            if (parse_u64(value, UINT32_MAX, &n)) {
                status = usage_error("--max-fds needs a number, not '%s'", value);
                goto out;
            }
            wt_run_config_set_max_fds(config, (uint32_t)n);
        } else if (strcmp(name, "--cache-dir") == 0) {
            set.cache_dir = value;
        } else if (strcmp(name, "--tcplisten") == 0) {
            if ((status = add_tcplisten(&set, value))) goto out;
        } else if (strcmp(name, "--invoke") == 0) {
            set.invoke = value;
        } else if ((status = apply_keys(&set, name[1], value))) {
            goto out;
        }
        status = 2;
    }
    if (i >= argc) {
        status = usage_error("%s", "no module given");
        goto out;
    }

    if ((status = add_sockets(&set))) goto out;
    status = 2;

    const char *path = argv[i];
    for (int j = i; j < argc; j++) {
        if ((err = wt_run_config_push_arg(config, argv[j]))) goto config_error;
    }

    wt_engine_config_t *engine_config = wt_engine_config_new();
    if (!engine_config) {
        status = 1;
        goto out;
    }
    if (set.max_wasm_stack != SIZE_MAX) wt_engine_config_set_max_wasm_stack(engine_config, set.max_wasm_stack);
    wt_engine_t *engine = NULL;
    err = wt_engine_new(engine_config, &engine);
    wt_engine_config_free(engine_config);
    if (err) {
        status = fail("creating the engine", err);
        goto out;
    }

    const char *debug = getenv("WT_RUN_CACHE_DEBUG");
    cache.debug = debug && *debug && strcmp(debug, "0") != 0;
    cache.portable = debug && strcmp(debug, "portable-sha256") == 0;
    const char *max_mb = getenv("WT_RUN_CACHE_MAX_MB");
    unsigned long long mb = 512;
    if (max_mb && *max_mb && parse_u64(max_mb, ULLONG_MAX >> 20, &mb)) {
        status = usage_error("WT_RUN_CACHE_MAX_MB needs a number of megabytes, not '%s'", max_mb);
        wt_engine_free(engine);
        goto out;
    }
    cache.max_bytes = mb << 20;
    cache.enabled = set.cache && (cache.dir = cache_dir_name(set.cache_dir)) != NULL && cache_dir_ready(&cache) == 0;
    wt_module_t *module = NULL;
    status = 0;
    if (cache.enabled) {
        err = load_module(&cache, engine, path, set.max_wasm_stack, &module, &status);
    } else {
        cache_say(&cache, "off");
        err = wt_module_load_file(engine, path, &module);
    }
    if (err || status) {
        if (err) status = fail("loading the module", err);
        wt_engine_free(engine);
        goto out;
    }
    if (set.invoke) {
        status = invoke(engine, module, config, set.invoke, argv + i + 1, argc - i - 1);
        wt_module_free(module);
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
    status = report_exit(&how);
    report_stops(how.kind != WT_EXIT_CODE);
    wt_exit_clear(&how);
    goto out;

config_error:
    status = usage_error("%s", wt_error_message(err));
    wt_error_free(err);
out:
    for (size_t k = 0; k < set.tcplisten_len; k++) free(set.tcplisten[k]);
    free(cache.dir);
    wt_run_config_free(config);
    return status;
}
