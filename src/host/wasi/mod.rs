//! WASI preview 1 for every thread of a run, implemented here over the host's own
//! system calls (`rustix`, and `cap-primitives` for sandboxed path resolution), with no
//! run-wide lock: the run's descriptor table ([`FdTable`](crate::io::FdTable)) is
//! locked only to look a descriptor up, and all I/O runs on the calling guest thread.
//! Every call that can block waits through [`crate::wait`], so it wakes when
//! the run ends.
//!
//! - `linker.rs`: registers every function, through wiggle's generated entry points;
//! - `ctx.rs`: the `WasiSnapshotPreview1` trait for one call, handing over to:
//! - `env.rs`: arguments, environment, clocks, randomness, `proc_exit`, `sched_yield`;
//! - `fd.rs`: descriptor I/O and state (read, write, seek, sync, fdstat, close, renumber);
//! - `iovec.rs`, `direct.rs`: guest buffer arrays, copied or handed to the kernel;
//! - `path.rs`: everything under a directory descriptor (open, stat, create, remove,
//!   rename, links, `fd_readdir`);
//! - `poll.rs`: `poll_oneoff`;
//! - `sock.rs`: sockets handed to the guest;
//! - `stat.rs`, `errno.rs`: conversions shared by the others;
//! - `setup.rs`: the descriptor table a run starts with (stdio, preopens).

mod ctx;
mod direct;
mod env;
mod errno;
mod fd;
mod iovec;
mod linker;
mod memory;
mod path;
mod poll;
mod setup;
mod sock;
mod stat;

pub(crate) use linker::{add_to_linker, P1_FUNCTIONS, P1_MODULE};
pub(crate) use setup::open_fds;

use crate::group::Group;
use crate::wait::WaitSlot;

/// One WASI call of one guest thread: what every function gets.
pub(super) struct Ctx<'a> {
    pub(super) group: &'a Group,
    pub(super) tid: i32,
    /// The calling thread's wait slot: every wait of the call goes through it.
    pub(super) slot: &'a WaitSlot,
}

impl Ctx<'_> {
    /// The descriptor at `fd` (a brief read lock of the table, then an `Arc` clone).
    pub(super) fn descriptor(
        &self,
        fd: wasmtime_wasi::p1::types::Fd,
    ) -> Result<std::sync::Arc<crate::io::OpenFd>, wasmtime_wasi::p1::types::Error> {
        self.group.fds.get(u32::from(fd)).map_err(errno::fd)
    }
}
