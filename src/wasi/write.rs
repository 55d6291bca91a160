//! `fd_write` and `fd_pwrite`, for every kind of descriptor:
//! - stdout and stderr ([`Descriptor::Output`]) write the run's output streams
//!   (`output.rs`), all the bytes of one `fd_write` in one piece (one callback call per
//!   `fd_write`), wherever the guest renumbered them; they have no position (`fd_pwrite`
//!   is `spipe`);
//! - a regular file on shared memory is written straight from the guest's buffers
//!   (`direct.rs`); any other file through a copy buffer, a file that may block waiting
//!   until it is writable through the run's signal (or `again` if the guest set
//!   `fdflags::nonblock`). Cursor writes of regular files take the descriptor's
//!   `position` lock, positional writes none. In append mode the host descriptor is
//!   `O_APPEND`, so both append (Linux ignores a `pwrite` offset then, as Wasmtime);
//! - stdin and directories cannot be written (`badf`, as Wasmtime 48), nor can a file
//!   not opened for writing.
//!
//! One call writes at most 16 MiB, within the run's copy budget when it copies (`iovec.rs`).
//! Writes to regular files and block devices (all under preopened directories: the host
//! gives no others) count against the run's write quota
//! ([`Limits::max_write_bytes`](crate::Limits)): a call writes at most what is left of it,
//! and fails with `dquot` when nothing is.

use rustix::event::PollFlags;
use wasmtime_wasi::p1::types::{self, Errno};
use wiggle::GuestMemory;

use super::descriptor::{Descriptor, FileDesc};
use super::stdio::OutputName;
use super::{direct, errno, iovec, Call};

pub(super) fn fd_write(
    call: &Call<'_>,
    memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    ciovs: types::CiovecArray,
) -> Result<types::Size, types::Error> {
    match &**call.descriptor(fd)? {
        Descriptor::Output(name) => write_output(call, memory, *name, ciovs),
        Descriptor::File(f) => write_file(call, memory, f, ciovs, None),
        Descriptor::Stdin | Descriptor::Dir(_) => Err(Errno::Badf.into()),
    }
}

pub(super) fn fd_pwrite(
    call: &Call<'_>,
    memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    ciovs: types::CiovecArray,
    offset: types::Filesize,
) -> Result<types::Size, types::Error> {
    match &**call.descriptor(fd)? {
        Descriptor::File(f) => write_file(call, memory, f, ciovs, Some(offset)),
        Descriptor::Output(_) => Err(Errno::Spipe.into()),
        Descriptor::Stdin | Descriptor::Dir(_) => Err(Errno::Badf.into()),
    }
}

/// `fd_write` of the run's stdout or stderr: all the bytes of the call (up to the
/// limits), in one piece.
fn write_output(
    call: &Call<'_>,
    memory: &mut GuestMemory<'_>,
    name: OutputName,
    ciovs: types::CiovecArray,
) -> Result<types::Size, types::Error> {
    let total = iovec::total(memory, ciovs)?;
    let grant = iovec::reserve(&call.wasi.copy_budget, total);
    let data = iovec::gather(memory, ciovs, grant.len)?;
    call.wasi.stdio.output(name).write(call, &data)?;
    iovec::size(data.len())
}

/// `fd_write` (`at` `None`) or `fd_pwrite` of a file.
fn write_file(
    call: &Call<'_>,
    memory: &mut GuestMemory<'_>,
    f: &FileDesc,
    ciovs: types::CiovecArray,
    at: Option<u64>,
) -> Result<types::Size, types::Error> {
    if !f.writable {
        return Err(Errno::Badf.into());
    }
    // The array is read once: its buffers serve the total and the direct writes.
    let bufs = iovec::const_buffers(memory, ciovs)?;
    let total = iovec::sum(&bufs);
    if total == 0 {
        return Ok(0);
    }
    let quota = (!f.kind.may_block()).then(|| call.wasi.quota.reserve_bytes(total as u64));
    let allowed = match &quota {
        Some(q) if q.units == 0 => return Err(Errno::Dquot.into()),
        Some(q) => total.min(usize::try_from(q.units).unwrap_or(usize::MAX)),
        None => total,
    };
    let spend = |n: usize| {
        if let Some(q) = quota {
            q.spend(n as u64);
        }
        n
    };
    if let (GuestMemory::Shared(shared), false) = (&*memory, f.kind.may_block()) {
        // Shared memory and a regular file: straight from the guest's buffers, no copy.
        let mut direct = direct::Iovecs::for_write(shared, &bufs)?;
        direct.cut(allowed);
        let _pos = at.is_none().then(|| call.position(f)).transpose()?;
        return iovec::size(spend(direct::write(&f.file, &direct, at)?));
    }
    let grant = iovec::reserve(&call.wasi.copy_budget, allowed);
    let data = iovec::gather(memory, ciovs, grant.len)?;
    let write = || match at {
        None => rustix::io::write(&f.file, &data),
        Some(off) => rustix::io::pwrite(&f.file, &data, off),
    };
    let n = if f.kind.may_block() {
        call.until_ready(f, PollFlags::OUT, write)?
    } else {
        let _pos = at.is_none().then(|| call.position(f)).transpose()?;
        errno::retry_intr(write).map_err(errno::sys)?
    };
    iovec::size(spend(n))
}
