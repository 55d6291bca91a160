//! A run: the public handle, and the one place that joins a [`Module`], its [`Engine`] and
//! a thread [`Group`]: it creates the run's memory and WASI context, links the module,
//! hands the group what it needs and starts the main thread.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::Result;
use parking_lot::Mutex;

use crate::config::RunConfig;
use crate::error::{error, ErrorKind};
use crate::exit::{ExitKind, RunExit};
use crate::group::Group;
use crate::hooks::Gate;
use crate::launch::{launch, Launch};
use crate::module::Module;

/// A started run. [`Run::wait`] returns how it ended; dropping a run that is still going
/// cancels it and waits for its threads. All methods may be called from any thread.
///
/// Once [`Run::wait`] returned (or the run was dropped), no callback of the run starts: a
/// thread that outlived the teardown grace makes no further callback (one it is inside
/// when the grace runs out goes on until it returns). Waiting for
/// a run, or dropping it, from one of its own callbacks would wait for that callback
/// itself: [`Run::wait`] then panics, [`Run::try_wait`] gives `None`, and a drop cancels
/// the run and leaves the rest (the wait, the release) to a thread of its own.
pub struct Run {
    group: Arc<Group>,
    deadline: Option<Instant>,
    /// The background supervisor of [`Run::start_background`].
    supervisor: Mutex<Option<JoinHandle<()>>>,
    /// Every callback of the run goes through it.
    gate: Arc<Gate>,
}

impl Run {
    /// Instantiates the module for the main thread and starts `_start` on a new OS thread.
    /// The first [`Run::wait`] supervises the run (enforces the timeout, stops threads).
    /// Errors (link errors, a missing `_start`, …) mean nothing started.
    pub fn start(module: &Module, config: &RunConfig) -> Result<Run> {
        let inner = &module.inner;
        if let Err(why) = &inner.start {
            return Err(error(ErrorKind::Link, format!("cannot run this module: {why}")));
        }
        let Launch { group, store, gate } = launch(module, config)?;
        group.start_main(store)?;
        Ok(Run { group, deadline: config.timeout.map(|t| Instant::now() + t), supervisor: Mutex::new(None), gate })
    }

    /// The life of a launched group whose main thread the caller runs (an instance's):
    /// supervised in the background from now on, with the config's `timeout`.
    pub(crate) fn supervised(group: Arc<Group>, gate: Arc<Gate>, timeout: Option<std::time::Duration>) -> Run {
        let deadline = timeout.map(|t| Instant::now() + t);
        let supervisor = group.supervise_in_background(deadline);
        Run { group, deadline, supervisor: Mutex::new(supervisor), gate }
    }

    /// The run's thread group.
    pub(crate) fn group(&self) -> &Arc<Group> {
        &self.group
    }

    /// Like [`Run::start`], plus a supervisor thread that enforces the timeout and stops
    /// the threads as soon as the run ends, whether or not anyone waits.
    pub fn start_background(module: &Module, config: &RunConfig) -> Result<Run> {
        let run = Run::start(module, config)?;
        *run.supervisor.lock() = run.group.supervise_in_background(run.deadline);
        Ok(run)
    }

    /// Blocks until the run ended and every thread of it has been joined (or outlived the
    /// teardown grace); from then on no callback of the run starts. May be called any
    /// number of times, from any threads; each call returns the same outcome.
    ///
    /// # Panics
    /// When called from one of the run's own callbacks (it would wait for itself; see
    /// [`Run::in_own_callback`]).
    pub fn wait(&self) -> RunExit {
        assert!(!self.in_own_callback(), "Run::wait called from one of the run's own callbacks");
        let exit = self.group.wait(self.deadline);
        self.gate.close();
        exit
    }

    /// The outcome if the run has ended and all its threads are joined (then no callback
    /// of the run starts any more, as after [`Run::wait`]), else `None` (always from one
    /// of the run's own callbacks).
    pub fn try_wait(&self) -> Option<RunExit> {
        if self.in_own_callback() {
            return None;
        }
        let exit = self.group.try_wait(self.deadline)?;
        self.gate.close();
        Some(exit)
    }

    /// True when the calling thread is inside one of this run's callbacks (thread start
    /// or exit, diagnostic, output), where waiting for the run would wait for itself.
    pub fn in_own_callback(&self) -> bool {
        self.gate.is_inside()
    }

    /// How many callbacks of the run were not made because they came after
    /// [`Run::wait`] returned (from threads that outlived the teardown grace).
    pub fn suppressed_callbacks(&self) -> u64 {
        self.gate.suppressed()
    }

    /// Ends the run with [`ExitKind::Cancelled`] unless it already ended. Returns at once;
    /// the threads stop within milliseconds. Harmless after the run ended.
    pub fn cancel(&self) {
        self.group.finish(RunExit::host(ExitKind::Cancelled));
    }

    /// Asks for the run to end with [`ExitKind::Cancelled`] unless it already ended, in a
    /// way that is async-signal-safe (no lock, no allocation: a flag and a `futex` wake),
    /// so a signal handler may call it (the Ctrl-C pattern). The run's supervisor thread
    /// ([`Run::start_background`]) then ends it within microseconds; a run without one
    /// ends at the next [`Run::wait`], [`Run::try_wait`] or drop. From the moment it is
    /// asked, the run's outcome is the cancel unless it had ended already. Harmless after
    /// the run ended.
    pub fn ask_cancel(&self) {
        self.group.ask_cancel();
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if self.in_own_callback() {
            // Waiting here would wait for the callback we are in: cancel, and let a
            // thread of our own wait and release once it returned.
            self.cancel();
            let rest = Run {
                group: self.group.clone(),
                deadline: self.deadline,
                supervisor: Mutex::new(self.supervisor.lock().take()),
                gate: self.gate.clone(),
            };
            // Without a thread (the process is out of them) the threads still stop, as
            // cancelled; the run's memory is then never released.
            if let Err(e) = std::thread::Builder::new().name("wasithreads-release".into()).spawn(move || drop(rest)) {
                drop(e);
            }
            return;
        }
        if self.try_wait().is_none() {
            self.cancel();
        }
        self.wait();
        if let Some(h) = self.supervisor.lock().take() {
            let _ = h.join();
        }
    }
}
