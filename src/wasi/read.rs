//! `fd_read` and `fd_pread`, for every kind of descriptor:
//! - stdin ([`Descriptor::Stdin`]) reads the run's input stream (`input.rs`), wherever the
//!   guest renumbered it; it has no position (`fd_pread` is `spipe`);
//! - a file that may block (a pipe, FIFO, character device or socket) has a non-blocking
//!   host descriptor: one read through a copy buffer, waiting until it is readable
//!   through the run's signal when it has nothing, or `again` if the guest set
//!   `fdflags::nonblock`;
//! - a regular file (or block device) never blocks for long and is read in one of three
//!   ways: on unshared memory into a single buffer, straight into it; on shared memory,
//!   straight into the guest's buffers (`direct.rs`); otherwise through a copy buffer.
//!   Cursor reads take the descriptor's `position` lock, positional reads none;
//! - stdout, stderr and directories cannot be read (`badf`, as Wasmtime 48), nor can a
//!   file not opened for reading.
//!
//! One call reads at most 16 MiB, within the run's copy budget when it copies (`iovec.rs`);
//! a read of a stream asks for at most [`MAX_STREAM_READ`].

use rustix::event::PollFlags;
use wasmtime_wasi::p1::types::{self, Errno};
use wiggle::GuestMemory;

use super::descriptor::{Descriptor, FileDesc};
use super::stat::FileKind;
use super::{direct, errno, iovec, Call};

/// Most bytes one read of a stream (stdin, a pipe, a socket, a device) asks for: a pipe
/// holds at most 1 MiB (Linux's `pipe-max-size`), so a larger buffer would only be
/// allocated to stay empty.
const MAX_STREAM_READ: usize = 1 << 20;

pub(super) fn fd_read(
    call: &Call<'_>,
    memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    iovs: types::IovecArray,
) -> Result<types::Size, types::Error> {
    match &**call.descriptor(fd)? {
        Descriptor::Stdin => read_stdin(call, memory, iovs),
        Descriptor::File(f) => read_file(call, memory, f, iovs, None),
        Descriptor::Output(_) | Descriptor::Dir(_) => Err(Errno::Badf.into()),
    }
}

pub(super) fn fd_pread(
    call: &Call<'_>,
    memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    iovs: types::IovecArray,
    offset: types::Filesize,
) -> Result<types::Size, types::Error> {
    match &**call.descriptor(fd)? {
        Descriptor::File(f) => read_file(call, memory, f, iovs, Some(offset)),
        Descriptor::Stdin => Err(Errno::Spipe.into()),
        Descriptor::Output(_) | Descriptor::Dir(_) => Err(Errno::Badf.into()),
    }
}

/// `fd_read` of the run's stdin.
fn read_stdin(
    call: &Call<'_>,
    memory: &mut GuestMemory<'_>,
    iovs: types::IovecArray,
) -> Result<types::Size, types::Error> {
    let cap = iovec::capacity(memory, iovs)?;
    read_copied(call, memory, iovs, cap.min(MAX_STREAM_READ), |buf| call.wasi.stdio.stdin.read(call, buf))
}

/// `fd_read` (`at` `None`) or `fd_pread` of a file.
fn read_file(
    call: &Call<'_>,
    memory: &mut GuestMemory<'_>,
    f: &FileDesc,
    iovs: types::IovecArray,
    at: Option<u64>,
) -> Result<types::Size, types::Error> {
    if !f.readable {
        return Err(Errno::Badf.into());
    }
    // The array is read once: its buffers serve the capacity and the direct reads.
    let bufs = iovec::buffers(memory, iovs)?;
    let cap = iovec::sum(&bufs);
    if cap == 0 {
        return Ok(0);
    }
    if f.kind.may_block() {
        return read_copied(call, memory, iovs, cap.min(MAX_STREAM_READ), |buf| {
            call.until_ready(f, PollFlags::IN, || read_stream_once(f, buf, at))?;
            Ok(())
        });
    }
    // Unshared memory and one buffer: read straight into it, no copy.
    if let (GuestMemory::Unshared(_), Some(one)) = (&*memory, iovec::single(&bufs)) {
        if let Some(slice) = memory.as_slice_mut(one)? {
            let slice = match slice.len() > iovec::MAX_CALL {
                true => &mut slice[..iovec::MAX_CALL],
                false => slice,
            };
            let _pos = at.is_none().then(|| call.position(f)).transpose()?;
            let n = errno::retry_intr(|| match at {
                None => rustix::io::read(&f.file, &mut *slice),
                Some(off) => rustix::io::pread(&f.file, &mut *slice, off),
            });
            return iovec::size(n.map_err(errno::sys)?);
        }
    }
    // Shared memory: straight into the guest's buffers, no copy (unless one lies
    // outside memory: the copy below traps as Wasmtime does, on what it would fill).
    if let GuestMemory::Shared(shared) = &*memory {
        if let Some(direct) = direct::Iovecs::for_read(shared, &bufs) {
            let _pos = at.is_none().then(|| call.position(f)).transpose()?;
            return iovec::size(direct::read(&f.file, &direct, at)?);
        }
    }
    read_copied(call, memory, iovs, cap, |buf| {
        let _pos = at.is_none().then(|| call.position(f)).transpose()?;
        errno::retry_intr(|| read_into(f, buf, at)).map_err(errno::sys)?;
        Ok(())
    })
}

/// A read through a host copy buffer of at most `cap` bytes (less when the run's copy
/// budget is spent): `fill` reads into the buffer's spare capacity, then the bytes go to
/// the guest's buffers.
fn read_copied(
    call: &Call<'_>,
    memory: &mut GuestMemory<'_>,
    iovs: types::IovecArray,
    cap: usize,
    fill: impl FnOnce(&mut Vec<u8>) -> Result<(), types::Error>,
) -> Result<types::Size, types::Error> {
    let grant = iovec::reserve(&call.wasi.copy_budget, cap);
    let mut buf = Vec::with_capacity(grant.len);
    fill(&mut buf)?;
    iovec::scatter(memory, iovs, &buf)?;
    iovec::size(buf.len())
}

/// One read of a file that may block. 0 bytes from a FIFO that no writer has opened yet
/// is `EAGAIN`, not end of file.
fn read_stream_once(f: &FileDesc, buf: &mut Vec<u8>, at: Option<u64>) -> rustix::io::Result<usize> {
    let n = read_into(f, buf, at)?;
    if n == 0 && f.kind == FileKind::Fifo && !f.is_nonblock() && !fifo_writer_left(f) {
        // No writer has opened the FIFO since `path_open` (which never waits for one):
        // POSIX's blocking open would still be waiting, so wait for data or for a writer
        // to come and go instead of reporting end of file.
        return Err(rustix::io::Errno::AGAIN);
    }
    Ok(n)
}

/// One read of `f` into the spare capacity of `buf`: at its cursor (`at` `None`; for a
/// regular file, whose cursor `fd_seek` moves, the caller holds the position lock) or at
/// an offset.
fn read_into(f: &FileDesc, buf: &mut Vec<u8>, at: Option<u64>) -> rustix::io::Result<usize> {
    let spare = rustix::buffer::spare_capacity(buf);
    match at {
        None => rustix::io::read(&f.file, spare),
        Some(off) => rustix::io::pread(&f.file, spare, off),
    }
}

/// True when a FIFO read end reports hang-up with nothing to read: a writer has been
/// and gone (Linux suppresses `POLLHUP` on a non-blocking read end until it has seen a
/// writer), so a read of 0 bytes is end of file.
fn fifo_writer_left(f: &FileDesc) -> bool {
    let mut fds = [rustix::event::PollFd::new(&f.file, PollFlags::IN)];
    let zero = rustix::time::Timespec { tv_sec: 0, tv_nsec: 0 };
    match rustix::event::poll(&mut fds, Some(&zero)) {
        Ok(_) => {
            let ev = fds[0].revents();
            ev.contains(PollFlags::HUP) && !ev.contains(PollFlags::IN)
        }
        Err(_) => true,
    }
}
