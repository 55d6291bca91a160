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
//! threads: each resize makes the kernel rehash every waiter (after an RCU grace period),
//! and growing step by step with the thread count delayed the start of 1 000 threads by a
//! third. A thread of its own does it, so that no guest thread waits for it.
//!
//! It is left alone when the size is not the kernel's own: on the global hash (0 slots),
//! on a kernel without the call, or at a size above what the kernel picks by itself (at
//! most 4 per online CPU), which only the host can have set. The environment variable
//! `WASITHREADS_KEEP_FUTEX_HASH=1` leaves it alone too (for hosts whose sandbox refuses
//! unknown `prctl` calls).

use std::sync::atomic::{AtomicU32, Ordering};

/// `prctl` option and its sub-operations (`linux/prctl.h`, Linux 6.16).
const PR_FUTEX_HASH: libc::c_int = 78;
const PR_FUTEX_HASH_SET_SLOTS: libc::c_ulong = 1;
const PR_FUTEX_HASH_GET_SLOTS: libc::c_ulong = 2;

/// At this many threads the hash is grown, once, to [`SLOTS`].
pub(super) const MIN_THREADS: usize = 64;
/// The buckets asked for: room for 4 096 threads at the kernel's own 4 a thread, and
/// under one waiter a bucket at the 10 000 threads a run can have. 1 MiB of kernel
/// memory, counted against the process's memory cgroup.
const SLOTS: usize = 1 << 14;

/// The process in which the growth was started: a forked child has a hash of its own.
static DONE_IN: AtomicU32 = AtomicU32::new(0);

/// True once per process, for the caller that brings the pool's thread count to
/// [`MIN_THREADS`] (`threads`: the count with it): the caller then has [`grow`] run. Only
/// that caller looks further (the count rises one at a time), so threads made later
/// cost nothing here.
pub(super) fn due(threads: usize) -> bool {
    if threads != MIN_THREADS {
        return false;
    }
    let pid = std::process::id();
    DONE_IN.load(Ordering::Relaxed) != pid && DONE_IN.swap(pid, Ordering::Relaxed) != pid
}

/// Grows the process's futex hash to [`SLOTS`] if it has the kernel's own size (see the
/// module doc).
pub(super) fn grow() {
    if std::env::var_os("WASITHREADS_KEEP_FUTEX_HASH").is_some_and(|v| v == "1") {
        return;
    }
    grow_if_kernel_sized();
}

/// [`grow`] without the environment check: only system calls (a forked child may run it).
fn grow_if_kernel_sized() {
    // SAFETY: `prctl` with integer arguments only; GET_SLOTS reads nothing from memory.
    let have = unsafe { libc::prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_GET_SLOTS, 0, 0, 0) };
    // Negative: a kernel before 6.16, with no private hash to size.
    let Ok(have) = usize::try_from(have) else { return };
    if have > 0 && have <= kernel_default_at_most() && have < SLOTS {
        // SAFETY: as above; SET_SLOTS takes a power of two and flags 0.
        unsafe { libc::prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_SET_SLOTS, SLOTS as libc::c_ulong, 0 as libc::c_ulong, 0) };
    }
}

/// The most buckets the kernel gives a process's private hash by itself: 4 per online
/// CPU, rounded up to a power of two, at least 16.
fn kernel_default_at_most() -> usize {
    // SAFETY: `sysconf` reads a system constant.
    let cpus = usize::try_from(unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }).unwrap_or(1).max(1);
    cpus.saturating_mul(4).next_power_of_two().max(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots() -> i32 {
        // SAFETY: as in `grow`.
        unsafe { libc::prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_GET_SLOTS, 0, 0, 0) }
    }

    /// `due` says yes once per process, and only when the count reaches [`MIN_THREADS`].
    #[test]
    fn the_growth_is_due_once_for_many_threads() {
        assert!(!due(MIN_THREADS - 1));
        assert!(!due(1000), "due for a count past the threshold");
        // Other tests of this process may have made 64 pool threads already.
        let first = due(MIN_THREADS);
        assert!(!due(MIN_THREADS), "due twice (first call: {first})");
    }

    /// The kernel's own size is grown; a size only the host can have set is not. Run in a
    /// child process, whose hash is its own.
    #[test]
    fn a_size_the_host_set_is_left_alone() {
        if slots() <= 0 {
            eprintln!("no private futex hash here (slots {}): nothing to check", slots());
            return;
        }
        let custom = kernel_default_at_most() * 4;
        // SAFETY: the child only makes system calls and exits with `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: as in `grow`; the child is single-threaded and only calls `prctl`.
            let set = unsafe {
                libc::prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_SET_SLOTS, custom as libc::c_ulong, 0 as libc::c_ulong, 0)
            };
            grow_if_kernel_sized();
            let kept = usize::try_from(slots()).ok() == Some(custom);
            // SAFETY: ends the child at once, without running the parent's atexit work.
            unsafe {
                libc::_exit(if set != 0 {
                    2
                } else if kept {
                    0
                } else {
                    1
                })
            };
        }
        let mut status = 0;
        // SAFETY: waits for the child just made; `status` is a local.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status), "the child did not exit: {status}");
        assert_eq!(libc::WEXITSTATUS(status), 0, "1: the host's size was replaced; 2: it could not be set");
    }

    /// In this multi-threaded test process the hash has the kernel's own size, or was
    /// grown already by the pool: `grow` leaves it at [`SLOTS`] or more.
    #[test]
    fn the_kernels_own_size_is_grown() {
        if slots() <= 0 {
            return;
        }
        grow();
        assert!(slots() >= SLOTS as i32, "slots: {}", slots());
    }
}
