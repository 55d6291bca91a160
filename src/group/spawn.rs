//! `thread-spawn` for a group: the thread limit, thread ids, a new instance of the module
//! in its own store on a new OS thread. Every failure is a negative return, never a trap.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Group;
use super::thread::{Entry, THREAD_START, spawn_os_thread};

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
    /// id, or a negative WASI errno.
    pub(crate) fn spawn(self: &Arc<Self>, arg: i32) -> i32 {
        if !self.can_spawn {
            return -ENOSYS;
        }
        {
            let mut st = self.state.lock();
            // At the limit, give a thread that is just leaving (its joiner already woke up,
            // it is returning from wasm) a moment to count itself out.
            let grace = Instant::now() + LIMIT_GRACE;
            while st.spawned >= self.max_threads && !self.teardown.is_ending() {
                if self.cond.wait_until(&mut st, grace).timed_out() {
                    break;
                }
            }
            if self.teardown.is_ending() || st.spawned >= self.max_threads {
                return -EAGAIN;
            }
            st.spawned += 1;
            st.live += 1;
        }
        match self.try_spawn(arg) {
            Some(tid) => tid,
            None => {
                self.thread_left_wasm();
                self.thread_gone();
                -EAGAIN
            }
        }
    }

    fn try_spawn(self: &Arc<Self>, arg: i32) -> Option<i32> {
        let tid = self
            .next_tid
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| (t <= MAX_TID).then_some(t + 1))
            .ok()?;
        let mut store = self.new_store(tid);
        let instance = self.pre().instantiate(&mut store).ok()?;
        let entry = instance.get_typed_func::<(i32, i32), ()>(&mut store, THREAD_START).ok()?;
        spawn_os_thread(self, store, Entry::Spawned(entry, arg)).ok()?;
        Some(tid)
    }
}
