//! WASI preview 1: a run's WASI state and every preview 1 call, implemented over the host's
//! own system calls (`rustix`, and `cap-primitives` for sandboxed path resolution).
//!
//! A run has one [`WasiState`]: its arguments, environment, descriptor table, standard
//! streams, copy budget and monotonic clock. Each call of a guest thread gets a [`Call`]:
//! that state, the run's [`Signal`](crate::wait::Signal), the calling thread's id and wait
//! slot, and the pool for blocking system calls (the guest memory comes beside it, from
//! wiggle). There is no run-wide lock: the descriptor table is locked only to look a
//! descriptor up, and all I/O runs on the calling guest thread. Every call that can block
//! waits through [`crate::wait`], so it wakes when the run ends. This layer knows nothing of
//! stores or thread groups: `host/wasi_link.rs` links the functions and makes each call's
//! [`Call`] from the store.
//!
//! The state:
//! - `mod.rs`: [`WasiState`] and what the host configures it from ([`Preopen`]);
//! - `fds.rs`: the descriptor table, its entries counted against the run's limit;
//! - `descriptor.rs`: what a descriptor is (stdin, stdout or stderr, a file, a directory);
//! - `stdio.rs`: [`Input`] and [`Output`] (what the host asks for) and the live streams
//!   of a run, read in `input.rs` and written in `output.rs`;
//! - `stat.rs`: host files in WASI's terms: kinds, file types, `filestat`, timestamps;
//! - `errno.rs`: WASI errors from host errors, and the one `EINTR` retry.
//!
//! The calls:
//! - `call.rs`: [`Call`], and the ways a call looks up descriptors and waits;
//! - `preview1.rs`: the `WasiSnapshotPreview1` trait, one line per function naming the
//!   file that implements it;
//! - `env.rs`: arguments, environment, clocks, randomness, `proc_exit`, `sched_yield`;
//! - `read.rs`, `write.rs`: `fd_read`, `fd_pread`, `fd_write`, `fd_pwrite` of every kind
//!   of descriptor;
//! - `iovec.rs`, `direct.rs`: guest buffer arrays, copied within the run's copy budget or
//!   handed to the kernel;
//! - `fd.rs`: a descriptor as a handle: close, renumber, seek, tell, advise, sync;
//! - `fdstat.rs`: descriptor metadata: `fd_fdstat_*`, `fd_filestat_*`, `fd_prestat_*`;
//! - `open.rs`: `path_open`;
//! - `path.rs`: the other calls under a directory descriptor (stat, create, remove,
//!   rename, links);
//! - `readdir.rs`: `fd_readdir`;
//! - `poll.rs`: `poll_oneoff`;
//! - `sock.rs`: sockets handed to the guest;
//! - `listen.rs`: listening sockets the host preopens for the guest ([`PreopenSocket`]).

mod call;
mod descriptor;
mod direct;
mod env;
mod errno;
mod fd;
mod fds;
mod fdstat;
mod input;
mod iovec;
mod listen;
mod open;
mod output;
mod path;
mod poll;
mod preview1;
mod read;
mod readdir;
mod sock;
mod stat;
mod stdio;
mod write;

pub(crate) use call::Call;
pub use listen::PreopenSocket;
pub use stdio::{Input, Output, OutputCallback};

use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::error::{error, ErrorKind, ResultKind};
use crate::limits::{Budget, WriteQuota};
use descriptor::{Descriptor, DirDesc, FileDesc};
use fds::FdTable;
use stat::FileKind;
use stdio::{OutputName, Stdio};

/// A host directory the guest may use under `guest` path.
#[derive(Clone, Debug)]
pub struct Preopen {
    pub host: PathBuf,
    pub guest: String,
    pub read_only: bool,
}

/// The WASI state of one run, shared by all its threads.
pub(crate) struct WasiState {
    /// `argv` and `KEY=value` environment strings, as the guest sees them.
    args: Vec<String>,
    env: Vec<String>,
    /// The descriptors of the run; locked only for lookups.
    fds: FdTable,
    stdio: Stdio,
    /// Bytes of host copy buffers the run's calls hold beyond each call's floor
    /// (`iovec.rs`).
    copy_budget: Arc<Budget>,
    /// Time zero of the guest's monotonic clock (`clock_time_get(monotonic)`).
    clock_zero: Instant,
    /// Bytes the guest may write to files under its preopens, and files it may create
    /// there (`write.rs`, `open.rs`, `path.rs`).
    quota: WriteQuota,
}

impl WasiState {
    /// The state a run starts with: stdin, stdout and stderr at fds 0, 1 and 2, then each
    /// preopened socket, then each preopened directory, each in the order given (as the
    /// Wasmtime 46 CLI numbered them), in a table of at most `max_fds` descriptors; the
    /// guest's monotonic clock starts now; `quota` caps what it writes and creates under
    /// the preopens.
    #[allow(clippy::too_many_arguments, reason = "each part of a run's WASI setup, from its config")]
    pub(crate) fn new(
        args: Vec<String>,
        env: Vec<String>,
        sockets: &[PreopenSocket],
        preopens: &[Preopen],
        max_fds: u32,
        quota: WriteQuota,
        stdin: &Input,
        stdout: &Output,
        stderr: &Output,
    ) -> Result<WasiState> {
        let fds = open_fds(sockets, preopens, max_fds)?;
        let stdio = Stdio::open(stdin, stdout, stderr)?;
        Ok(WasiState { args, env, fds, stdio, copy_budget: iovec::copy_budget(), clock_zero: Instant::now(), quota })
    }

    /// The guest's `argv` (`argv[0]` names the program in a core dump).
    pub(crate) fn args(&self) -> &[String] {
        &self.args
    }

    /// Closes every descriptor (the run is over and its threads are joined): the host
    /// descriptors a guest opened are released when the run ends, not when the host
    /// frees the run handle.
    pub(crate) fn close_fds(&self) {
        self.fds.close_all();
    }
}

/// The descriptor table a run starts with.
fn open_fds(sockets: &[PreopenSocket], preopens: &[Preopen], max_fds: u32) -> Result<FdTable> {
    let (dirs, socks) = (preopens.len() as u64, sockets.len() as u64);
    if u64::from(max_fds) < 3 + dirs + socks {
        return Err(error(
            ErrorKind::Limit,
            format!(
                "the descriptor limit ({max_fds}) leaves no room for stdin, stdout, stderr, {socks} preopened \
                 sockets and {dirs} preopened directories"
            ),
        ));
    }
    let table = FdTable::new(max_fds);
    let full = || error(ErrorKind::Limit, "the descriptor table is full");
    table.insert(Descriptor::Stdin).ok().ok_or_else(full)?;
    table.insert(Descriptor::Output(OutputName::Stdout)).ok().ok_or_else(full)?;
    table.insert(Descriptor::Output(OutputName::Stderr)).ok().ok_or_else(full)?;
    for s in sockets {
        let sock = s.duplicate().context("duplicating a preopened socket").kind(ErrorKind::Io)?;
        // Blocking for the guest (its `fdflags::nonblock` clear) until it says otherwise;
        // the host descriptor is non-blocking and every wait goes through the run's signal.
        let file = FileDesc::new(sock, FileKind::Socket, true, true, false, false);
        table.insert(Descriptor::File(file)).ok().ok_or_else(full)?;
    }
    for p in preopens {
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&p.host)
            .and_then(crate::hostfd::above_stdio)
            .with_context(|| format!("opening directory {} for the guest", p.host.display()))
            .kind(ErrorKind::Io)?;
        table.insert(Descriptor::Dir(DirDesc::new(dir, Some(p.guest.clone()), p.read_only))).ok().ok_or_else(full)?;
    }
    Ok(table)
}
