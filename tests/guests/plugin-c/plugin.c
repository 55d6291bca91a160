/*
 * plugin-c: a threaded C "reactor" (library) module for the plugin tests and benchmarks.
 *
 * Built by build.sh (next to this file) with PyPI's ziglang clang/wasm-ld against the
 * threaded wasi-libc of Rust's wasm32-wasip1-threads target: crt1-reactor.o,
 * -mexec-model=reactor, -pthread, a shared imported memory (`env.memory`),
 * --export=malloc,free. tests/common/plugin.rs builds it on demand (cached).
 *
 * It has no `_start`: a host instantiates it, calls `_initialize` once (which runs the
 * constructor below), then calls its exports, possibly from several host threads at once.
 * Every export is meant to behave as in a native shared library, so each one checks what
 * it relies on and returns a value the host can verify.
 *
 * Imports (besides WASI and `wasi.thread-spawn`), defined by the host:
 *   env.host_log(ptr: i32, len: i32)        the host reads `len` bytes of text at `ptr`
 *   env.host_add(a: i64, b: i64) -> i64     the host must return a + b
 *   env.host_block()                        blocks in the host until the host lets it go
 *                                           (or the instance ends)
 *
 * Exports and what each one exercises:
 *   malloc(n), free(p)            wasi-libc's allocator, for the host to place buffers
 *   add(a, b) -> a + b            a trivial call (the call-overhead benchmark)
 *   spin(n) -> i32                CPU-bound: n rounds of xorshift32 from a seed that depends
 *                                 on n; no memory traffic (two calls in parallel must scale)
 *   stack_sum(n) -> i32           a stack buffer whose address escapes (it lives on the
 *                                 thread's shadow stack in linear memory, i.e. needs a valid
 *                                 `__stack_pointer` of its own): fills 256 i32 with n * i,
 *                                 yields, re-reads them; returns sum(n * i, i < 256), or -1 if
 *                                 the buffer changed under it (a stack shared with another
 *                                 thread)
 *   tls_counter_bump() -> i32     `_Thread_local` counter: +1, returns this thread's count
 *                                 (1, 2, 3, ... per guest thread; needs its own TLS block)
 *   tls_counter_get() -> i32      the same counter, read only
 *   self_id() -> i32              pthread_self() as an integer: unique per living guest thread
 *   alloc_check(n) -> i32         malloc(n), fill, verify, free; returns n, or -1 if the
 *                                 block was changed by someone else, -2 if malloc failed
 *   mutex_add(kind, n) -> i32     adds 1, n times, to counters[kind], each under a lock of
 *                                 mutex kind: 0 normal (PTHREAD_MUTEX_INITIALIZER),
 *                                 1 recursive (locked twice per add), 2 error-checking (also
 *                                 checks that relocking returns EDEADLK and that unlocking a
 *                                 mutex it does not hold returns EPERM: needs a valid, unique
 *                                 pthread_self); returns 0 or a negative code; -EINVAL for a
 *                                 bad kind
 *   mutex_counter(kind) -> i32    counters[kind]
 *   tsd_set(v), tsd_get() -> i32  pthread_setspecific / getspecific on a key made by the
 *                                 constructor (per-thread values)
 *   cond_pingpong(rounds) -> i32  a pthread created inside the call and this thread pass a
 *                                 token back and forth `rounds` times through a mutex and a
 *                                 condition variable; returns 2 * rounds, or -errno
 *   parallel_sum(ptr, len, nthreads) -> i64
 *                                 sums `len` u32 at `ptr` (written by the host) with
 *                                 `nthreads` pthreads created inside the call and joined
 *                                 before it returns; -errno if a thread could not start
 *   parallel_sum64(ptr, len, nthreads, out) -> i32
 *                                 the same over u64 (wrapping sum), stored at `out`; returns
 *                                 0 or errno
 *   crash(code) -> i32            0: returns 0; 1: __builtin_trap() in this thread; 2: a
 *                                 pthread created by the call traps while the call waits in
 *                                 pthread_join; 3: exit(3) (proc_exit) in this thread;
 *                                 anything else: returns -1
 *   start_workers(n) -> i32       starts n background pthreads that increment an atomic
 *                                 counter every millisecond (sleeping in
 *                                 memory.atomic.wait32) until stop_workers(); they keep
 *                                 running between calls; returns 0, -EBUSY if already
 *                                 started, -errno
 *   stop_workers() -> i32         stops and joins them; returns how many were joined
 *   worker_count() -> i64         the counter (it grows while the workers run)
 *   print_line(n) -> i32          printf("plugin line %d\n", n) + fflush(stdout): stdio's
 *                                 FILE lock shared by threads; returns printf's result
 *   log_message(n) -> i32         host_log("plugin says <n>")
 *   call_host_add(a, b) -> i64    host_add(a, b) once (the guest -> host round trip)
 *   host_add_loop(n) -> i64       sum of host_add(i, 1) for i < n (many round trips in one
 *                                 call); -1 at the first wrong answer
 *   call_host_from_threads(n) -> i32
 *                                 n pthreads created inside the call each call
 *                                 host_log("thread <i>") and host_add(i, 1000 * i), joined;
 *                                 returns how many got the right sum (n when all did), -errno
 *   block() -> i32                host_block() on this thread; returns 0 when it returns
 *   block_in_threads(n) -> i32    n pthreads each call host_block(), joined; returns n
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT(name) __attribute__((export_name(#name))) __attribute__((visibility("default")))
/* A self-test build may define the host functions in C instead (-DIMPORT(name)=). */
#ifndef IMPORT
#define IMPORT(name) __attribute__((import_module("env"), import_name(#name)))
#endif

IMPORT(host_log) void host_log(const char *ptr, int32_t len);
IMPORT(host_add) int64_t host_add(int64_t a, int64_t b);
IMPORT(host_block) void host_block(void);

static pthread_mutex_t locks[3] = {PTHREAD_MUTEX_INITIALIZER};
static int32_t counters[3];
static pthread_key_t tsd_key;
static int init_error; /* set by the constructor if it failed */

__attribute__((constructor)) static void plugin_init(void) {
    pthread_mutexattr_t a;
    if (pthread_mutexattr_init(&a) || pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE) ||
        pthread_mutex_init(&locks[1], &a) || pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK) ||
        pthread_mutex_init(&locks[2], &a) || pthread_key_create(&tsd_key, NULL))
        init_error = 1;
    pthread_mutexattr_destroy(&a);
}

EXPORT(add) int32_t add(int32_t a, int32_t b) { return a + b; }

EXPORT(spin) int32_t spin(int32_t n) {
    uint32_t x = 2463534242u ^ (uint32_t)n;
    for (int32_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
    }
    return (int32_t)x;
}

/* Not inlined, so the buffer's address escapes and it must live in linear memory. */
__attribute__((noinline)) static void fill(volatile int32_t *buf, int32_t n, int32_t len) {
    for (int32_t i = 0; i < len; i++) buf[i] = n * i;
}

EXPORT(stack_sum) int32_t stack_sum(int32_t n) {
    volatile int32_t buf[256];
    fill(buf, n, 256);
    sched_yield();
    int32_t sum = 0;
    for (int32_t i = 0; i < 256; i++) {
        if (buf[i] != n * i) return -1;
        sum += buf[i];
    }
    return sum;
}

static _Thread_local int32_t tls_counter;

EXPORT(tls_counter_bump) int32_t tls_counter_bump(void) { return ++tls_counter; }
EXPORT(tls_counter_get) int32_t tls_counter_get(void) { return tls_counter; }
EXPORT(self_id) int32_t self_id(void) { return (int32_t)(uintptr_t)pthread_self(); }

EXPORT(alloc_check) int32_t alloc_check(int32_t n) {
    if (n <= 0) return -2;
    unsigned char *p = malloc((size_t)n);
    if (!p) return -2;
    unsigned char tag = (unsigned char)(uintptr_t)pthread_self();
    memset(p, tag, (size_t)n);
    sched_yield();
    int32_t r = n;
    for (int32_t i = 0; i < n; i++)
        if (p[i] != tag) r = -1;
    free(p);
    return r;
}

EXPORT(mutex_add) int32_t mutex_add(int32_t kind, int32_t n) {
    if (kind < 0 || kind > 2) return -EINVAL;
    if (init_error) return -EFAULT;
    pthread_mutex_t *m = &locks[kind];
    for (int32_t i = 0; i < n; i++) {
        if (pthread_mutex_lock(m)) return -100;
        if (kind == 1 && pthread_mutex_lock(m)) return -101;
        if (kind == 2 && pthread_mutex_lock(m) != EDEADLK) return -102;
        counters[kind]++;
        if (kind == 1 && pthread_mutex_unlock(m)) return -103;
        if (pthread_mutex_unlock(m)) return -104;
        if (kind == 2 && pthread_mutex_unlock(m) != EPERM) return -105;
    }
    return 0;
}

EXPORT(mutex_counter) int32_t mutex_counter(int32_t kind) {
    if (kind < 0 || kind > 2) return -EINVAL;
    pthread_mutex_lock(&locks[kind]);
    int32_t v = counters[kind];
    pthread_mutex_unlock(&locks[kind]);
    return v;
}

EXPORT(tsd_set) int32_t tsd_set(int32_t v) { return pthread_setspecific(tsd_key, (void *)(uintptr_t)v); }
EXPORT(tsd_get) int32_t tsd_get(void) { return (int32_t)(uintptr_t)pthread_getspecific(tsd_key); }

struct pingpong {
    pthread_mutex_t m;
    pthread_cond_t c;
    int32_t turn; /* 0: the caller's turn, 1: the thread's */
    int32_t rounds, passes;
};

static void *pong(void *arg) {
    struct pingpong *p = arg;
    pthread_mutex_lock(&p->m);
    for (int32_t i = 0; i < p->rounds; i++) {
        while (p->turn != 1) pthread_cond_wait(&p->c, &p->m);
        p->turn = 0;
        p->passes++;
        pthread_cond_signal(&p->c);
    }
    pthread_mutex_unlock(&p->m);
    return NULL;
}

EXPORT(cond_pingpong) int32_t cond_pingpong(int32_t rounds) {
    struct pingpong p = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, rounds, 0};
    pthread_t t;
    int e = pthread_create(&t, NULL, pong, &p);
    if (e) return -e;
    pthread_mutex_lock(&p.m);
    for (int32_t i = 0; i < rounds; i++) {
        while (p.turn != 0) pthread_cond_wait(&p.c, &p.m);
        p.turn = 1;
        p.passes++;
        pthread_cond_signal(&p.c);
    }
    while (p.turn != 0) pthread_cond_wait(&p.c, &p.m);
    pthread_mutex_unlock(&p.m);
    pthread_join(t, NULL);
    return p.passes;
}

#define MAX_THREADS 64

struct part {
    const void *base;
    size_t from, to;
    int wide; /* u64 elements */
    uint64_t sum;
};

static void *sum_part(void *arg) {
    struct part *p = arg;
    uint64_t s = 0;
    if (p->wide)
        for (size_t i = p->from; i < p->to; i++) s += ((const uint64_t *)p->base)[i];
    else
        for (size_t i = p->from; i < p->to; i++) s += ((const uint32_t *)p->base)[i];
    p->sum = s;
    return NULL;
}

/* Sums with nthreads pthreads; returns 0 or an errno. */
static int sum_threads(const void *base, size_t len, int32_t nthreads, int wide, uint64_t *out) {
    if (nthreads < 1 || nthreads > MAX_THREADS) return EINVAL;
    struct part parts[MAX_THREADS];
    pthread_t threads[MAX_THREADS];
    int32_t started = 0, err = 0;
    for (int32_t i = 0; i < nthreads; i++) {
        parts[i] = (struct part){base, len * (size_t)i / (size_t)nthreads,
                                 len * (size_t)(i + 1) / (size_t)nthreads, wide, 0};
        int e = pthread_create(&threads[i], NULL, sum_part, &parts[i]);
        if (e) {
            err = e;
            break;
        }
        started++;
    }
    uint64_t total = 0;
    for (int32_t i = 0; i < started; i++) {
        pthread_join(threads[i], NULL);
        total += parts[i].sum;
    }
    *out = total;
    return err;
}

EXPORT(parallel_sum) int64_t parallel_sum(const uint32_t *ptr, int32_t len, int32_t nthreads) {
    uint64_t s;
    int e = sum_threads(ptr, (size_t)len, nthreads, 0, &s);
    return e ? -(int64_t)e : (int64_t)s;
}

EXPORT(parallel_sum64)
int32_t parallel_sum64(const uint64_t *ptr, int32_t len, int32_t nthreads, uint64_t *out) {
    return sum_threads(ptr, (size_t)len, nthreads, 1, out);
}

static void *trap_thread(void *arg) {
    (void)arg;
    __builtin_trap();
}

EXPORT(crash) int32_t crash(int32_t code) {
    switch (code) {
    case 0:
        return 0;
    case 1:
        __builtin_trap();
    case 2: {
        pthread_t t;
        int e = pthread_create(&t, NULL, trap_thread, NULL);
        if (e) return -e;
        pthread_join(t, NULL);
        return -2; /* not reached: the trap ends the instance */
    }
    case 3:
        exit(3);
    default:
        return -1;
    }
}

static int workers_stop; /* accessed atomically; waited on with memory.atomic.wait32 */
static _Atomic int64_t workers_counter;
static pthread_t workers[MAX_THREADS];
static int32_t workers_started;
static pthread_mutex_t workers_lock = PTHREAD_MUTEX_INITIALIZER;

static void *worker(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&workers_stop, __ATOMIC_SEQ_CST)) {
        atomic_fetch_add(&workers_counter, 1);
        /* Sleeps 1 ms, or until stop_workers() wakes it (libc's nanosleep would need
           compiler-rt, which this link leaves out). */
        __builtin_wasm_memory_atomic_wait32(&workers_stop, 0, 1000000);
    }
    return NULL;
}

EXPORT(start_workers) int32_t start_workers(int32_t n) {
    if (n < 1 || n > MAX_THREADS) return -EINVAL;
    pthread_mutex_lock(&workers_lock);
    int32_t r = 0;
    if (workers_started) {
        r = -EBUSY;
    } else {
        __atomic_store_n(&workers_stop, 0, __ATOMIC_SEQ_CST);
        for (int32_t i = 0; i < n; i++) {
            int e = pthread_create(&workers[i], NULL, worker, NULL);
            if (e) {
                r = -e;
                break;
            }
            workers_started++;
        }
    }
    pthread_mutex_unlock(&workers_lock);
    return r;
}

EXPORT(stop_workers) int32_t stop_workers(void) {
    pthread_mutex_lock(&workers_lock);
    __atomic_store_n(&workers_stop, 1, __ATOMIC_SEQ_CST);
    __builtin_wasm_memory_atomic_notify(&workers_stop, (unsigned)-1);
    int32_t n = workers_started;
    for (int32_t i = 0; i < n; i++) pthread_join(workers[i], NULL);
    workers_started = 0;
    pthread_mutex_unlock(&workers_lock);
    return n;
}

EXPORT(worker_count) int64_t worker_count(void) { return atomic_load(&workers_counter); }

EXPORT(print_line) int32_t print_line(int32_t n) {
    int r = printf("plugin line %d\n", (int)n);
    fflush(stdout);
    return r;
}

static void log_text(const char *prefix, int32_t n) {
    char buf[64]; /* on the thread's own stack */
    int len = snprintf(buf, sizeof buf, "%s %d", prefix, (int)n);
    host_log(buf, len);
}

EXPORT(log_message) int32_t log_message(int32_t n) {
    log_text("plugin says", n);
    return 0;
}

EXPORT(call_host_add) int64_t call_host_add(int64_t a, int64_t b) { return host_add(a, b); }

EXPORT(host_add_loop) int64_t host_add_loop(int32_t n) {
    int64_t s = 0;
    for (int32_t i = 0; i < n; i++) {
        int64_t r = host_add(i, 1);
        if (r != (int64_t)i + 1) return -1;
        s += r;
    }
    return s;
}

struct host_job {
    int32_t i;
    int ok;
};

static void *host_caller(void *arg) {
    struct host_job *j = arg;
    log_text("thread", j->i);
    j->ok = host_add(j->i, 1000 * (int64_t)j->i) == 1001 * (int64_t)j->i;
    return NULL;
}

EXPORT(call_host_from_threads) int32_t call_host_from_threads(int32_t n) {
    if (n < 1 || n > MAX_THREADS) return -EINVAL;
    struct host_job jobs[MAX_THREADS];
    pthread_t threads[MAX_THREADS];
    int32_t started = 0, ok = 0;
    int err = 0;
    for (int32_t i = 0; i < n; i++) {
        jobs[i] = (struct host_job){i, 0};
        err = pthread_create(&threads[i], NULL, host_caller, &jobs[i]);
        if (err) break;
        started++;
    }
    for (int32_t i = 0; i < started; i++) {
        pthread_join(threads[i], NULL);
        ok += jobs[i].ok;
    }
    return err ? -err : ok;
}

EXPORT(block) int32_t block(void) {
    host_block();
    return 0;
}

static void *blocker(void *arg) {
    (void)arg;
    host_block();
    return NULL;
}

EXPORT(block_in_threads) int32_t block_in_threads(int32_t n) {
    if (n < 1 || n > MAX_THREADS) return -EINVAL;
    pthread_t threads[MAX_THREADS];
    int32_t started = 0;
    int err = 0;
    for (int32_t i = 0; i < n; i++) {
        err = pthread_create(&threads[i], NULL, blocker, NULL);
        if (err) break;
        started++;
    }
    for (int32_t i = 0; i < started; i++) pthread_join(threads[i], NULL);
    return err ? -err : started;
}
