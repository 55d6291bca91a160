/* SQLite external merge sort with worker threads.
 *   sqlsort DIR THREADS NROWS
 * Creates DIR/sort.db (no journal, no sync, "unix-none" VFS: no lock files), inserts
 * NROWS pseudo-random rows (integer, 40-letter text, integer) in one transaction, then
 * runs SELECT ... ORDER BY the text column with PRAGMA threads=THREADS, temp_store=FILE,
 * temp files in DIR and a 2 MiB cache, so that the sorter writes sorted runs (PMAs) to
 * temp files — sorted by THREADS worker threads besides the main one — and merges them.
 * Prints the row count and a hash of the sorted rows (identical for any THREADS);
 * phase times go to stderr. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "sqlite3.h"

static sqlite3 *db;

#ifdef __wasi__
/* SQLite 3.46's unix VFS on WASI has no fchmod (aSyscall "fchmod" is NULL), yet
 * robust_open calls it for every new temp file (mode 0600, WASI reports mode 0): a call
 * through a null function pointer, which traps in any runtime. Stand in a no-op through
 * the VFS's own hook for replacing system calls. */
static int no_fchmod(int fd, unsigned mode) { (void)fd; (void)mode; return 0; }
#endif

static void check(int rc, const char *what) {
    if (rc != SQLITE_OK && rc != SQLITE_ROW && rc != SQLITE_DONE) {
        fprintf(stderr, "sqlsort: %s: %s\n", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        exit(1);
    }
}

static void exec(const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "sqlsort: %s: %s\n", sql, err);
        exit(1);
    }
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next(void) { /* splitmix64 */
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: sqlsort DIR THREADS NROWS\n"); return 2; }
    const char *dir = argv[1];
    int threads = atoi(argv[2]);
    long nrows = atol(argv[3]);
    char path[4096], sql[256];
    snprintf(path, sizeof path, "%s/sort.db", dir);
    unlink(path);
    sqlite3_temp_directory = sqlite3_mprintf("%s", dir);
#ifdef __wasi__
    sqlite3_vfs *vfs = sqlite3_vfs_find("unix-none");
    if (!vfs || vfs->xSetSystemCall(vfs, "fchmod", (sqlite3_syscall_ptr)no_fchmod) != SQLITE_OK) {
        fprintf(stderr, "sqlsort: cannot replace fchmod\n");
        return 1;
    }
#endif
    check(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, "unix-none"), "open");
    exec("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA temp_store=FILE; PRAGMA cache_size=-2048");
    snprintf(sql, sizeof sql, "PRAGMA threads=%d", threads);
    exec(sql);
    sqlite3_stmt *st;
    check(sqlite3_prepare_v2(db, "PRAGMA threads", -1, &st, NULL), "prepare");
    check(sqlite3_step(st), "step");
    int got = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (got != threads) { fprintf(stderr, "sqlsort: PRAGMA threads=%d gave %d\n", threads, got); return 1; }

    double t0 = now();
    exec("CREATE TABLE t(a INTEGER, b TEXT, c INTEGER); BEGIN");
    check(sqlite3_prepare_v2(db, "INSERT INTO t VALUES(?1, ?2, ?3)", -1, &st, NULL), "prepare insert");
    for (long i = 0; i < nrows; i++) {
        char b[41];
        uint64_t r = next();
        for (int k = 0; k < 40; k++) {
            if (k % 12 == 0) r = next();
            b[k] = 'a' + (char)(r % 26);
            r /= 26;
        }
        b[40] = 0;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)next());
        sqlite3_bind_text(st, 2, b, 40, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, i);
        check(sqlite3_step(st), "insert");
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    exec("COMMIT");
    double t1 = now();

    check(sqlite3_prepare_v2(db, "SELECT b, a, c FROM t ORDER BY b, c", -1, &st, NULL), "prepare select");
    uint64_t h = 0xcbf29ce484222325ull, n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *b = sqlite3_column_text(st, 0);
        int len = sqlite3_column_bytes(st, 0);
        for (int k = 0; k < len; k++) h = (h ^ b[k]) * 0x100000001b3ull;
        uint64_t a = (uint64_t)sqlite3_column_int64(st, 1) ^ ((uint64_t)sqlite3_column_int64(st, 2) << 1);
        h = (h ^ a) * 0x100000001b3ull;
        n++;
    }
    check(rc, "select");
    sqlite3_finalize(st);
    double t2 = now();
    check(sqlite3_close(db), "close");
    unlink(path);
    printf("%llu rows, hash %016llx\n", (unsigned long long)n, (unsigned long long)h);
    fprintf(stderr, "sqlsort: threads=%d insert %.3fs, sort+scan %.3fs\n", threads, t1 - t0, t2 - t1);
    return 0;
}
