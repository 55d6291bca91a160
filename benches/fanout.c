/* The native baseline of benches/fanout.rs: the guest's protocol with pthreads.
 *
 *   fanout-native MODE N [mem]      MODE: wait | sleep | busy
 *
 * Starts N threads (1 MiB stacks) that each count themselves in, wake main, then block:
 * wait = a futex wait on a word nobody wakes, sleep = nanosleep for an hour, busy = wait
 * for main's "go", then spin. Main waits until all N have counted in (for busy: sets "go"
 * and wakes them), prints the nanoseconds that took (with `mem`, also its VmRSS and VmSize
 * in KiB and its number of mappings), then exit(0): the kernel ends the N threads. */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static _Atomic unsigned started, go, never;
static int mode;

static void futex_wait(_Atomic unsigned *word, unsigned value, const struct timespec *timeout) {
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, value, timeout, NULL, 0);
}

static void futex_wake(_Atomic unsigned *word) {
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}

static void *body(void *arg) {
    (void)arg;
    atomic_fetch_add(&started, 1);
    futex_wake(&started);
    if (mode == 'w')
        for (;;) futex_wait(&never, 0, NULL);
    if (mode == 's') {
        struct timespec hour = {3600, 0};
        for (;;) nanosleep(&hour, NULL);
    }
    while (!atomic_load(&go)) futex_wait(&go, 0, NULL);
    for (;;) __asm__ volatile("" ::: "memory");
    return NULL;
}

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

/* The value of `key` (a "Key:  N kB" line) in /proc/self/status. */
static long status_kib(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0) v = atol(line + strlen(key));
    if (f) fclose(f);
    return v;
}

static long mappings(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    long n = 0;
    int c;
    while (f && (c = fgetc(f)) != EOF) n += c == '\n';
    if (f) fclose(f);
    return n;
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: fanout-native wait|sleep|busy N [mem]\n");
        return 2;
    }
    long t0 = now_ns();
    mode = argv[1][0];
    unsigned n = (unsigned)atol(argv[2]);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1 << 20);
    for (unsigned i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, &attr, body, NULL) != 0) {
            perror("pthread_create");
            return 9;
        }
    }
    for (;;) {
        unsigned s = atomic_load(&started);
        if (s >= n) break;
        futex_wait(&started, s, NULL);
    }
    /* Before the go: once woken, spinning threads can keep main off the CPUs for long. */
    long live = now_ns() - t0;
    atomic_store(&go, 1);
    futex_wake(&go);
    if (argc == 4)
        printf("%ld %ld %ld %ld\n", live, status_kib("VmRSS:"), status_kib("VmSize:"), mappings());
    else
        printf("%ld\n", live);
    fflush(stdout);
    exit(0);
}
