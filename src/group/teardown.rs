//! Teardown: how every thread of a group is stopped, wherever it is, when the run ends.
//!
//! Ending a run ends its [`Signal`] and makes the run's interrupt page inaccessible (busy
//! wasm faults at its next interruption point: a function entry or loop head, see
//! `module/rewrite.rs`), or, with epoch interruption, bumps the engine's epoch; then the
//! supervisor repeatedly *kicks* every thread until all have exited: the signal wakes
//! every wait (`crate::wait`), each woken thread sees the run ending and leaves with a
//! [`Terminated`](crate::wait::Terminated) error.

use std::time::Duration;

use crate::interrupt;
use crate::wait::Signal;

/// Everything needed to stop the threads of one group.
pub(crate) struct Teardown {
    /// What every wait of the run's threads watches.
    pub(crate) signal: Signal,
    /// The run's interrupt page (`crate::interrupt`).
    interrupt: interrupt::Page,
    /// With epoch interruption (see `EngineConfig::epoch_interruption`): the engine whose
    /// epoch is bumped by each kick, instead of closing the page.
    epoch: Option<wasmtime::Engine>,
    /// While ending, how often threads that have not stopped yet are kicked again.
    pub(super) interrupt_tick: Duration,
    /// How long the end of the run waits for its threads to stop before the result is
    /// given without them.
    pub(super) grace: Duration,
}

impl Teardown {
    pub(crate) fn new(
        interrupt: interrupt::Page,
        epoch: Option<wasmtime::Engine>,
        interrupt_tick: Duration,
        grace: Duration,
    ) -> Teardown {
        Teardown { signal: Signal::new(), interrupt, epoch, interrupt_tick, grace }
    }

    /// Marks the run as ending and closes the interrupt page. The caller kicks next.
    pub(super) fn begin(&self) {
        if self.signal.end() && self.epoch.is_none() {
            self.interrupt.close();
        }
    }

    /// True when stores stop busy wasm with epoch deadlines (see `Group::new_store`).
    pub(super) fn uses_epochs(&self) -> bool {
        self.epoch.is_some()
    }

    /// True when `trap` is a thread reaching an interruption point after the run ended.
    pub(crate) fn is_interruption(&self, trap: Option<&wasmtime::Trap>) -> bool {
        self.signal.is_ending() && matches!(trap, Some(wasmtime::Trap::MemoryOutOfBounds))
    }

    /// Wakes every thread wherever it blocks so it can notice the run is ending.
    pub(super) fn kick(&self) {
        if let Some(engine) = &self.epoch {
            engine.increment_epoch();
        }
        self.signal.wake_all();
    }
}
