//! `thread-spawn` for a group: the thread limit, thread ids, a new store on a new OS
//! thread, which makes its own instance (see `thread.rs`) and tells the spawner whether
//! that worked. Every failure is a negative return to the guest, never a trap, and is
//! reported to the host through the diagnostic callback.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::thread::{spawn_os_thread, Entry, Started};
use super::Group;

/// Largest thread id the proposal allows.
const MAX_TID: i32 = 0x1FFF_FFFF;
/// How long a spawn at the thread limit waits for a thread to finish leaving.
const LIMIT_GRACE: Duration = Duration::from_millis(20);
/// WASI errno `again`: resources (threads, ids) are exhausted.
const EAGAIN: i32 = 6;
/// WASI errno `nosys`: the module cannot run threads.
const ENOSYS: i32 = 52;

impl Group {
    /// Starts a thread running `wasi_thread_start(tid, arg)`. Returns the new thread's
    /// id, or a negative WASI errno; `Err` only when the run ended meanwhile.
    pub(crate) fn spawn(self: &Arc<Self>, spawner: i32, arg: i32) -> wasmtime::Result<i32> {
        if !self.can_spawn {
            self.diagnose(spawner, "thread-spawn failed: the module has no usable `wasi_thread_start` export");
            return Ok(-ENOSYS);
        }
        if self.max_threads == 0 {
            self.diagnose(spawner, "thread-spawn failed: the run's thread limit is 0");
            return Ok(-EAGAIN);
        }
        let tid = {
            let mut st = self.state.lock();
            // At the limit, give a thread that is just leaving (its joiner already woke up,
            // it is returning from wasm) a moment to count itself out.
            let grace = Instant::now() + LIMIT_GRACE;
            while st.spawned >= self.max_threads && !self.teardown.signal.is_ending() {
                if self.cond.wait_until(&mut st, grace).timed_out() {
                    break;
                }
            }
            self.teardown.signal.bail_if_ending()?;
            if st.spawned >= self.max_threads {
                drop(st);
                let limit = self.max_threads;
                self.diagnose(spawner, &format!("thread-spawn failed: the run's limit of {limit} threads is reached"));
                return Ok(-EAGAIN);
            }
            let next =
                self.next_tid.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| (t <= MAX_TID).then_some(t + 1));
            let Ok(tid) = next else {
                drop(st);
                self.diagnose(spawner, "thread-spawn failed: all thread ids of the run are used");
                return Ok(-EAGAIN);
            };
            st.spawned += 1;
            st.live.insert(tid);
            tid
        };
        let started = Arc::new(Started::default());
        let store = self.new_store(tid);
        if let Err(e) = spawn_os_thread(self, store, Entry::Spawned { arg, started: started.clone() }) {
            self.thread_left_wasm();
            self.thread_gone(tid);
            self.diagnose(spawner, &format!("thread-spawn failed: {e:#}"));
            return Ok(-EAGAIN);
        }
        // The new thread counts itself out if its instance cannot be made.
        match started.wait(&self.teardown)? {
            Ok(()) => Ok(tid),
            Err(why) => {
                self.diagnose(spawner, &format!("thread-spawn failed: {why}"));
                Ok(-EAGAIN)
            }
        }
    }
}
