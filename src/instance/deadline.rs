//! The call timeout of an instance (`RunConfig::call_timeout`): a watcher thread, made on
//! the first call, ends the instance with a timeout when a call outlives its deadline.
//! Ending the instance is the only safe way to stop a call: a thread stopped mid-call can
//! leave the guest's locks held.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::exit::{ExitKind, RunExit};
use crate::group::Group;

#[derive(Default)]
struct Watched {
    /// The deadline of every call in flight, with its id.
    calls: BTreeSet<(Instant, u64)>,
    /// Set when the instance is released: the watcher leaves.
    closed: bool,
}

/// The deadlines of an instance's calls in flight and the thread that enforces them.
pub(crate) struct CallDeadlines {
    timeout: Duration,
    watched: Arc<(Mutex<Watched>, Condvar)>,
    next_id: AtomicU64,
    watcher: Mutex<Option<JoinHandle<()>>>,
}

/// A call being watched; dropping it (the call returned) stops watching it.
pub(crate) struct Watch<'a> {
    deadlines: &'a CallDeadlines,
    key: (Instant, u64),
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        self.deadlines.watched.0.lock().calls.remove(&self.key);
    }
}

impl CallDeadlines {
    pub(crate) fn new(timeout: Duration) -> CallDeadlines {
        CallDeadlines { timeout, watched: Arc::default(), next_id: AtomicU64::new(0), watcher: Mutex::new(None) }
    }

    /// Watches a call that starts now. Errors only when the OS gives no watcher thread.
    pub(crate) fn watch(&self, group: &Arc<Group>) -> std::io::Result<Watch<'_>> {
        self.start_watcher(group)?;
        let key = (Instant::now() + self.timeout, self.next_id.fetch_add(1, Ordering::Relaxed));
        let (lock, cond) = &*self.watched;
        let mut w = lock.lock();
        let earliest = w.calls.first().is_none_or(|first| key < *first);
        w.calls.insert(key);
        if earliest {
            cond.notify_one();
        }
        Ok(Watch { deadlines: self, key })
    }

    fn start_watcher(&self, group: &Arc<Group>) -> std::io::Result<()> {
        let mut watcher = self.watcher.lock();
        if watcher.is_some() {
            return Ok(());
        }
        let (watched, group) = (self.watched.clone(), Arc::downgrade(group));
        *watcher = Some(
            std::thread::Builder::new()
                .name("wasithreads-call-timeout".into())
                .spawn(move || watch(&watched, &group))?,
        );
        Ok(())
    }
}

impl Drop for CallDeadlines {
    fn drop(&mut self) {
        self.watched.0.lock().closed = true;
        self.watched.1.notify_one();
        if let Some(h) = self.watcher.get_mut().take() {
            let _ = h.join();
        }
    }
}

/// The watcher: sleeps until the earliest deadline, and ends the instance with a timeout
/// if that call is still going then.
fn watch(watched: &(Mutex<Watched>, Condvar), group: &Weak<Group>) {
    let (lock, cond) = watched;
    let mut w = lock.lock();
    loop {
        if w.closed {
            return;
        }
        match w.calls.first().copied() {
            None => cond.wait(&mut w),
            Some((deadline, _)) if Instant::now() >= deadline => {
                w.calls.clear();
                drop(w);
                if let Some(group) = group.upgrade() {
                    group.finish(RunExit::host(ExitKind::Timeout));
                }
                w = lock.lock();
            }
            Some((deadline, _)) => {
                cond.wait_until(&mut w, deadline);
            }
        }
    }
}
