//! Teardown: how every thread of a group is stopped, wherever it is, when the run ends.
//!
//! Ending a run sets `ending` and makes the run's interrupt page inaccessible (busy wasm
//! faults at its next interruption point: a function entry or loop head, see
//! `module/rewrite.rs`), then repeatedly *kicks* every thread until all have exited: every
//! address a thread waits on in a rewritten atomic wait is notified, WASI sleepers are woken through
//! a condvar and threads polling a descriptor through an eventfd. Each woken thread sees
//! `ending` and leaves with a [`Terminated`] error. Kicks repeat until the threads are
//! gone, which closes the window between a thread checking `ending` and starting to block.
//!
//! Every blocking place a guest thread can reach waits through one of the primitives
//! here ([`Teardown::sleep_until`], [`Teardown::wait_fd`], the waiter registry of
//! `host/atomics.rs`), so that each has exactly one way to be woken.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use parking_lot_core::DEFAULT_UNPARK_TOKEN;
use rustix::event::{EventfdFlags, PollFd, PollFlags};
use wasmtime::SharedMemory;

/// The error a thread leaves with when another thread, or the host, ended its run.
#[derive(Debug)]
pub(crate) struct Terminated;

impl std::fmt::Display for Terminated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("thread terminated because its run ended")
    }
}
impl std::error::Error for Terminated {}

/// Everything needed to stop the threads of one group.
pub(crate) struct Teardown {
    ending: AtomicBool,
    /// The run's interrupt page, imported by every instance of the run.
    interrupt: SharedMemory,
    /// With epoch interruption (see `EngineConfig::epoch_interruption`): the engine whose
    /// epoch is bumped by each kick, instead of closing the page.
    epoch: Option<wasmtime::Engine>,
    /// While ending, how often threads that have not stopped yet are kicked again.
    pub(super) interrupt_tick: Duration,
    /// The host address each thread is waiting on in an atomic wait, by tid.
    waiters: Mutex<HashMap<i32, usize>>,
    /// WASI sleepers (`poll_oneoff` on clocks) wait on `wake` under `sleepers`.
    sleepers: Mutex<()>,
    wake: Condvar,
    /// Becomes readable when the run ends; created on the first descriptor wait.
    wake_fd: OnceLock<OwnedFd>,
}

impl Teardown {
    pub(super) fn new(interrupt: SharedMemory, epoch: Option<wasmtime::Engine>, interrupt_tick: Duration) -> Teardown {
        Teardown {
            ending: AtomicBool::new(false),
            interrupt,
            epoch,
            interrupt_tick,
            waiters: Mutex::new(HashMap::new()),
            sleepers: Mutex::new(()),
            wake: Condvar::new(),
            wake_fd: OnceLock::new(),
        }
    }

    /// True once the run has ended: every thread must stop.
    pub(crate) fn is_ending(&self) -> bool {
        self.ending.load(Ordering::SeqCst)
    }

    /// `Err(Terminated)` once the run has ended: what every blocking place returns after
    /// it wakes, so the thread unwinds out of wasm.
    pub(crate) fn bail_if_ending(&self) -> wasmtime::Result<()> {
        if self.is_ending() { Err(wasmtime::Error::new(Terminated)) } else { Ok(()) }
    }

    /// Marks the run as ending and closes the interrupt page. The caller kicks next.
    pub(super) fn begin(&self) {
        if self.ending.swap(true, Ordering::SeqCst) || self.epoch.is_some() {
            return;
        }
        let page = self.interrupt.data();
        // SAFETY: `page` is the whole of the interrupt memory (one wasm page, 64 KiB, a
        // multiple of the host page, starting at Wasmtime's page-aligned mapping), which
        // `self.interrupt` keeps mapped. No host code reads or writes it; wasm only loads
        // from it at interruption points, and a load from it faulting is what we want:
        // Wasmtime's signal handler turns it into a trap because the address lies in a
        // memory of the faulting store. The mapping is released with the memory. (Failure
        // is not expected for our own mapped range; busy wasm would then run until its
        // next host call, and the teardown grace bounds the wait.)
        let _ = unsafe { libc::mprotect(page.as_ptr() as *mut libc::c_void, page.len(), libc::PROT_NONE) };
    }

    /// True when stores stop busy wasm with epoch deadlines (see `Group::new_store`).
    pub(super) fn uses_epochs(&self) -> bool {
        self.epoch.is_some()
    }

    /// True when `trap` is a thread reaching an interruption point after the run ended.
    pub(crate) fn is_interruption(&self, trap: Option<&wasmtime::Trap>) -> bool {
        self.is_ending() && matches!(trap, Some(wasmtime::Trap::MemoryOutOfBounds))
    }

    /// Wakes every thread wherever it blocks so it can notice the run is ending.
    pub(super) fn kick(&self) {
        if let Some(engine) = &self.epoch {
            engine.increment_epoch();
        }
        let keys: Vec<usize> = self.waiters.lock().values().copied().collect();
        for key in keys {
            // SAFETY: keys recorded by `host/atomics.rs` `wait`: addresses inside guest
            // memory, which no other parking_lot user parks on.
            unsafe { parking_lot_core::unpark_all(key, DEFAULT_UNPARK_TOKEN) };
        }
        if let Some(fd) = self.wake_fd.get() {
            let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
        }
        // Taking the lock orders this notify after any sleeper's check of `ending`.
        drop(self.sleepers.lock());
        self.wake.notify_all();
    }

    /// Records that thread `tid` is about to park at host address `key` (an atomic wait).
    pub(crate) fn waiting_at(&self, tid: i32, key: usize) {
        self.waiters.lock().insert(tid, key);
    }

    /// Thread `tid` is no longer parked.
    pub(crate) fn done_waiting(&self, tid: i32) {
        self.waiters.lock().remove(&tid);
    }

    /// Sleeps until `deadline` (forever for `None`), or until the run ends:
    /// `Err(Terminated)`. May return early; callers re-check their own condition.
    pub(crate) fn sleep_until(&self, deadline: Option<Instant>) -> wasmtime::Result<()> {
        let mut guard = self.sleepers.lock();
        self.bail_if_ending()?;
        match deadline {
            Some(t) => {
                self.wake.wait_until(&mut guard, t);
            }
            None => self.wake.wait(&mut guard),
        }
        drop(guard);
        self.bail_if_ending()
    }

    /// The eventfd that becomes readable when the run ends.
    fn wake_fd(&self) -> wasmtime::Result<BorrowedFd<'_>> {
        if self.wake_fd.get().is_none() {
            let fd = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
                .map_err(|e| wasmtime::format_err!("creating an eventfd: {e}"))?;
            let _ = self.wake_fd.set(fd);
        }
        Ok(self.wake_fd.get().expect("set above").as_fd())
    }

    /// Blocks until `fd` is readable (`PollFlags::IN`) or writable (`OUT`): true; until
    /// `timeout` passes: false; or until the run ends: `Err(Terminated)`.
    pub(crate) fn wait_fd(&self, fd: BorrowedFd<'_>, flags: PollFlags, timeout: Option<Duration>) -> wasmtime::Result<bool> {
        let wake = self.wake_fd()?;
        let timeout = timeout.map(|d| rustix::time::Timespec {
            tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: d.subsec_nanos() as _,
        });
        loop {
            self.bail_if_ending()?;
            let mut fds = [PollFd::new(&fd, flags), PollFd::new(&wake, PollFlags::IN)];
            match rustix::event::poll(&mut fds, timeout.as_ref()) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => wasmtime::bail!("polling a standard stream: {e}"),
            }
            if !fds[1].revents().is_empty() {
                return Err(wasmtime::Error::new(Terminated));
            }
            self.bail_if_ending()?;
            if !fds[0].revents().is_empty() {
                return Ok(true);
            }
            if timeout.is_some() {
                return Ok(false);
            }
        }
    }

    /// Blocks until at least one of `fds` is ready for what it asks (`revents` of each
    /// entry are set, as by `poll(2)`): returns how many are; until `deadline` passes
    /// (forever for `None`): 0; or until the run ends: `Err(Terminated)`. A deadline
    /// already past still polls once, without waiting.
    pub(crate) fn wait_fds<'f>(&'f self, fds: &mut [PollFd<'f>], deadline: Option<Instant>) -> wasmtime::Result<usize> {
        let wake = self.wake_fd()?;
        let mut all: Vec<PollFd<'f>> = Vec::with_capacity(fds.len() + 1);
        all.extend(fds.iter().cloned());
        all.push(PollFd::from_borrowed_fd(wake, PollFlags::IN));
        loop {
            self.bail_if_ending()?;
            // Recomputed on every round, so a signal (EINTR) does not restart the wait.
            let timeout = deadline.map(|t| {
                let d = t.saturating_duration_since(Instant::now());
                rustix::time::Timespec { tv_sec: d.as_secs().min(i64::MAX as u64) as i64, tv_nsec: d.subsec_nanos() as _ }
            });
            let ready = match rustix::event::poll(&mut all, timeout.as_ref()) {
                Ok(n) => n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => wasmtime::bail!("polling {} descriptors: {e}", fds.len()),
            };
            let (woken, polled) = all.split_last().expect("holds the wake fd");
            if !woken.revents().is_empty() {
                return Err(wasmtime::Error::new(Terminated));
            }
            self.bail_if_ending()?;
            if ready > 0 || deadline.is_some_and(|t| Instant::now() >= t) {
                for (out, got) in fds.iter_mut().zip(polled) {
                    *out = got.clone();
                }
                return Ok(ready);
            }
        }
    }
}
