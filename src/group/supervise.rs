//! Waiting for a group's end: the timeout, the kicks until every thread has left, the
//! joins, and the one outcome every waiter gets.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Group;
use crate::exit::{ExitKind, RunExit};

impl Group {
    /// Waits for the run to end (or `deadline` to pass: a timeout), stops every thread,
    /// joins them and returns the outcome. Exactly one caller at a time (`supervising`).
    fn supervise(&self, deadline: Option<Instant>) -> RunExit {
        let mut st = self.state.lock();
        while st.first_exit.is_none() {
            match deadline {
                Some(d) => {
                    if self.cond.wait_until(&mut st, d).timed_out() && st.first_exit.is_none() {
                        drop(st);
                        self.finish(RunExit::host(ExitKind::Timeout));
                        st = self.state.lock();
                    }
                }
                None => self.cond.wait(&mut st),
            }
        }
        // Kick until every thread has left; a thread that checked `ending` just before it
        // was set may have started blocking after the previous kick.
        let mut pause = Duration::from_micros(50);
        while st.live > 0 {
            drop(st);
            self.kick();
            st = self.state.lock();
            if st.live > 0 {
                self.cond.wait_for(&mut st, pause);
                pause = (pause * 2).min(self.teardown.interrupt_tick);
            }
        }
        let exit = st.first_exit.clone().expect("first_exit is set above");
        drop(st);
        // Taken in a statement of its own, so the lock is not held while joining.
        let handles = std::mem::take(&mut *self.handles.lock());
        for done in handles {
            done.wait();
        }
        self.state.lock().joined_exit = Some(exit.clone());
        self.cond.notify_all();
        exit
    }

    /// Starts a thread that supervises the group at once, so the timeout is enforced and
    /// threads are stopped whether or not anyone waits. `None` if the OS gave no thread:
    /// the first [`Group::wait`] supervises instead.
    pub(crate) fn supervise_in_background(self: &Arc<Self>, deadline: Option<Instant>) -> Option<JoinHandle<()>> {
        self.state.lock().supervising = true;
        let group = self.clone();
        let spawned = std::thread::Builder::new()
            .name("wasithreads-supervisor".into())
            .spawn(move || drop(group.supervise(deadline)));
        match spawned {
            Ok(handle) => Some(handle),
            Err(_) => {
                self.state.lock().supervising = false;
                None
            }
        }
    }

    /// Blocks until the run ended and every thread of it has been joined, supervising
    /// the group if nobody does yet. Each call returns the same outcome.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> RunExit {
        let mut st = self.state.lock();
        loop {
            if let Some(exit) = &st.joined_exit {
                return exit.clone();
            }
            if !st.supervising {
                st.supervising = true;
                drop(st);
                self.supervise(deadline);
                st = self.state.lock();
                continue;
            }
            self.cond.wait(&mut st);
        }
    }

    /// The outcome if the run has ended and all its threads are joined, else `None`.
    pub(crate) fn try_wait(&self) -> Option<RunExit> {
        self.state.lock().joined_exit.clone()
    }
}
