//! Waiting for a group's end: the timeout, the kicks until every thread has left (for at
//! most the teardown grace), the joins, and the one outcome every waiter gets.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Group;
use crate::exit::{panic_message, ExitKind, RunExit};

impl Group {
    /// Waits for the run to end (or `deadline` to pass: a timeout), stops every thread,
    /// joins them and returns the outcome. Exactly one caller at a time (`supervising`).
    /// Never leaves waiters blocked: a panic in here still records an outcome.
    fn supervise(self: &Arc<Self>, deadline: Option<Instant>) -> RunExit {
        let exit = catch_unwind(AssertUnwindSafe(|| self.supervise_inner(deadline))).unwrap_or_else(|panic| {
            self.finish(RunExit::host(ExitKind::Cancelled));
            RunExit::trap(-1, format!("internal error: the run's supervisor panicked: {}", panic_message(&*panic)))
        });
        let exit = self.state.lock().joined_exit.get_or_insert(exit).clone();
        self.cond.notify_all();
        exit
    }

    fn supervise_inner(self: &Arc<Self>, deadline: Option<Instant>) -> RunExit {
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
        let give_up = Instant::now() + self.teardown_grace;
        let mut pause = Duration::from_micros(50);
        while !st.live.is_empty() && Instant::now() < give_up {
            drop(st);
            self.kick();
            st = self.state.lock();
            if !st.live.is_empty() {
                self.cond.wait_for(&mut st, pause);
                pause = (pause * 2).min(self.teardown.interrupt_tick);
            }
        }
        let mut exit = st.first_exit.clone().expect("first_exit is set above");
        exit.unstopped = st.live.iter().copied().collect();
        drop(st);
        if exit.unstopped.is_empty() {
            self.jobs.wait_all();
            self.fds.close_all();
        } else {
            self.abandon(&exit.unstopped);
        }
        self.write_coredump(&exit);
        exit
    }

    /// Gives up waiting for threads that did not stop within the teardown grace: the run's
    /// result is given without them, the host is told, and a thread of ours keeps kicking
    /// them until they are gone (each stops at its next interruption point).
    fn abandon(self: &Arc<Self>, tids: &[i32]) {
        let list: Vec<String> = tids.iter().map(i32::to_string).collect();
        let grace = self.teardown_grace.as_millis();
        self.diagnose(
            tids[0],
            &format!(
                "thread(s) {} had not stopped {grace} ms after the run ended (a long host callback, or one \
                 long wasm instruction such as a huge memory.fill); the run's result was given without them",
                list.join(", ")
            ),
        );
        let group = self.clone();
        let _ = std::thread::Builder::new().name("wasithreads-reaper".into()).spawn(move || {
            let mut st = group.state.lock();
            while !st.live.is_empty() {
                drop(st);
                group.kick();
                st = group.state.lock();
                group.cond.wait_for(&mut st, group.teardown.interrupt_tick.max(Duration::from_millis(10)));
            }
        });
    }

    /// Starts a thread that supervises the group at once, so the timeout is enforced and
    /// threads are stopped whether or not anyone waits. `None` if the OS gave no thread:
    /// then waiters (and `try_wait`) supervise instead.
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
    pub(crate) fn wait(self: &Arc<Self>, deadline: Option<Instant>) -> RunExit {
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
    /// When nobody supervises the run, this also enforces `deadline` and, once the run
    /// has ended, kicks the threads and joins them when they are gone.
    pub(crate) fn try_wait(self: &Arc<Self>, deadline: Option<Instant>) -> Option<RunExit> {
        let st = self.state.lock();
        if st.joined_exit.is_some() || st.supervising {
            return st.joined_exit.clone();
        }
        let ended = st.first_exit.is_some();
        drop(st);
        if !ended && deadline.is_some_and(|d| Instant::now() >= d) {
            self.finish(RunExit::host(ExitKind::Timeout));
        } else if ended {
            self.kick();
        }
        let st = self.state.lock();
        if st.first_exit.is_some() && st.live.is_empty() && !st.supervising {
            drop(st);
            return Some(self.wait(deadline));
        }
        None
    }
}
