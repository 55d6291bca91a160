//! The size of the process's futex hash, grown once the pool has many threads.
//!
//! Since Linux 6.16 a process has a private futex hash (the buckets the kernel keeps its
//! futex waiters in) sized from the number of CPUs, not of threads: 16 buckets on a
//! 2-CPU machine, however many threads block. With thousands of guest threads blocked at
//! once (each parked on a futex of its own), every futex call of the process, on any
//! lock, walks a bucket of hundreds of waiters: `perf` showed `futex_wake` alone at 17-23 %
//! of all CPU time for 10 000 blocked threads, and about 1 % with the hash grown.
//!
//! It is grown once, straight to [`SLOTS`], when the pool reaches [`MIN_THREADS`]
//! threads: each resize makes the kernel rehash every waiter, and growing step by step
//! with the thread count delayed the start of 1 000 threads by a third. It is only grown,
//! and only while the kernel's own sizing is in use: a process on the global hash (slots
//! 0), a kernel without the call, or a host that fixed the size (the call then fails) is
//! left as it is.

use std::sync::atomic::{AtomicU32, Ordering};

/// `prctl` option and its sub-operations (`linux/prctl.h`, Linux 6.16).
const PR_FUTEX_HASH: libc::c_int = 78;
const PR_FUTEX_HASH_SET_SLOTS: libc::c_ulong = 1;
const PR_FUTEX_HASH_GET_SLOTS: libc::c_ulong = 2;

/// At this many threads the hash is grown, once, to [`SLOTS`].
const MIN_THREADS: usize = 64;
/// The buckets asked for: room for 4 096 threads at the kernel's own 4 a thread, and
/// under one waiter a bucket at the 10 000 threads a run can have. 1 MiB of kernel
/// memory.
const SLOTS: usize = 1 << 14;

/// The process in which the hash was looked at (and grown if it could be): a forked
/// child has a hash of its own.
static DONE_IN: AtomicU32 = AtomicU32::new(0);

/// Grows the process's futex hash, once, when it has `threads` pool threads.
pub(super) fn fit(threads: usize) {
    if threads < MIN_THREADS {
        return;
    }
    // One thread does it; the others go on.
    let pid = std::process::id();
    if DONE_IN.swap(pid, Ordering::Relaxed) == pid {
        return;
    }
    // SAFETY: `prctl` with integer arguments only; GET_SLOTS reads nothing from memory.
    let have = unsafe { libc::prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_GET_SLOTS, 0, 0, 0) };
    // Negative: a kernel before 6.16, with no private hash to size. 0: the process uses
    // the global hash (the host chose it).
    let Ok(have) = usize::try_from(have) else { return };
    if have > 0 && have < SLOTS {
        // SAFETY: as above; SET_SLOTS takes a power of two and flags 0 (resizable). It
        // fails, changing nothing, if the host made the hash immutable.
        unsafe { libc::prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_SET_SLOTS, SLOTS as libc::c_ulong, 0 as libc::c_ulong, 0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The private hash is made with the process's second thread, which any test harness
    /// has. Other tests may have grown it already: then it must have stayed grown.
    #[test]
    fn the_hash_is_grown_once_for_many_threads_and_never_shrinks() {
        // SAFETY: as in `fit`.
        let get = || unsafe { libc::prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_GET_SLOTS, 0, 0, 0) };
        let before = get();
        if before <= 0 {
            eprintln!("no private futex hash here (slots {before}): nothing to check");
            return;
        }
        fit(MIN_THREADS - 1);
        assert_eq!(get(), before, "a few threads resized the hash");
        fit(1000);
        let after = get();
        assert!(after >= SLOTS as i32, "slots {before} -> {after}");
        fit(100_000);
        assert_eq!(get(), after, "the hash was resized twice");
    }
}
