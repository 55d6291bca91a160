/* Force-included (-include) when building liblzma for WASI, which has no signals.
 * liblzma's mythread.h includes <signal.h> and blocks all signals around
 * pthread_create (sigfillset + pthread_sigmask); wasi-libc's <signal.h> refuses to be
 * included without -D_WASI_EMULATED_SIGNAL and even then declares neither function.
 * This stands in for <signal.h> with no-op versions (build with -D_WASI_EMULATED_SIGNAL too,
 * which gets past that header's #error; its include guard, defined here, skips the rest). */
#ifndef _SIGNAL_H
#define _SIGNAL_H
#define __NEED_sigset_t
#include <bits/alltypes.h>
#include <string.h>
#define SIG_BLOCK 0
#define SIG_UNBLOCK 1
#define SIG_SETMASK 2
static inline int sigfillset(sigset_t *s) { memset(s, 0xff, sizeof *s); return 0; }
static inline int pthread_sigmask(int how, const sigset_t *s, sigset_t *old) {
    (void)how; (void)s;
    if (old) memset(old, 0, sizeof *old);
    return 0;
}
#endif
