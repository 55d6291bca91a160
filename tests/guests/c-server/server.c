/* A thread-per-connection echo server for the wasithreads tests and benchmark: built
 * for wasm32-wasip1-threads (clang + wasm-ld from PyPI's `ziglang`, Rust's threaded
 * wasi-libc; tests/common/c_guest.rs) and natively (benches/sock.rs).
 *
 *   server echo [FD]   accept on FD (default 3) forever; each connection gets its own
 *                      pthread that echoes with recv/send until the peer shuts down,
 *                      then shuts down and closes its side
 *   server poll [FD]   the same, waiting in poll() before every accept and recv (the
 *                      listener and the connections non-blocking)
 *   server probe N     prints what fds 3..3+N-1 are: filetype, fdflags (fcntl), and for
 *                      a socket what a non-blocking accept gets (EAGAIN: it listens)
 *
 * Output lines: "listening" once the server is about to accept (flushed). An accept that
 * fails with EMFILE prints "accept: EMFILE" and ends the program with status 3.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int use_poll;

static int wait_in(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    for (;;) {
        int n = poll(&p, 1, -1);
        if (n > 0) return 0;
        if (n < 0 && errno != EINTR) return -1;
    }
}

static int send_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = send(fd, buf, len, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                poll(&p, 1, -1);
                continue;
            }
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static void *serve(void *arg) {
    int fd = (int)(intptr_t)arg;
    static __thread char buf[16384];
    for (;;) {
        if (use_poll && wait_in(fd) < 0) break;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) break;
        if (send_all(fd, buf, (size_t)n) < 0) break;
    }
    shutdown(fd, SHUT_WR);
    close(fd);
    return NULL;
}

static int serve_forever(int lfd) {
    if (use_poll) fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
    printf("listening\n");
    fflush(stdout);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 65536);
    for (;;) {
        if (use_poll && wait_in(lfd) < 0) {
            perror("poll");
            return 1;
        }
        int c = accept(lfd, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) continue;
            if (errno == EMFILE) {
                /* The run's descriptor limit: said and ended, so that tests see it. */
                printf("accept: EMFILE\n");
                return 3;
            }
            perror("accept");
            return 1;
        }
        if (use_poll) fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK);
        pthread_t t;
        int e = pthread_create(&t, &attr, serve, (void *)(intptr_t)c);
        if (e != 0) {
            fprintf(stderr, "pthread_create: %s\n", strerror(e));
            close(c);
        }
    }
}

static int probe(int count) {
    for (int fd = 3; fd < 3 + count; fd++) {
        struct stat st;
        if (fstat(fd, &st) < 0) {
            printf("fd %d: %s\n", fd, strerror(errno));
            continue;
        }
        const char *kind = S_ISSOCK(st.st_mode) ? "socket" : S_ISDIR(st.st_mode) ? "dir" : "other";
        int fl = fcntl(fd, F_GETFL);
        printf("fd %d: %s nonblock=%d", fd, kind, fl >= 0 && (fl & O_NONBLOCK) ? 1 : 0);
        if (S_ISSOCK(st.st_mode)) {
            /* Non-blocking for one accept, to see that it listens without waiting. */
            fcntl(fd, F_SETFL, fl | O_NONBLOCK);
            int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK);
            printf(" accept=%s", c >= 0 ? "connection" : errno == EAGAIN ? "EAGAIN" : strerror(errno));
            fcntl(fd, F_SETFL, fl);
        }
        printf("\n");
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "echo";
    int fd = argc > 2 ? atoi(argv[2]) : 3;
    if (strcmp(mode, "probe") == 0) return probe(argc > 2 ? atoi(argv[2]) : 1);
    if (strcmp(mode, "poll") == 0) use_poll = 1;
    else if (strcmp(mode, "echo") != 0) {
        fprintf(stderr, "usage: server echo|poll [FD] | probe N\n");
        return 2;
    }
    return serve_forever(fd);
}
