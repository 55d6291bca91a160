//! The guest's standard streams: reads of fd 0 and writes to fds 1 and 2 are served here,
//! from the run's [`Stdio`](crate::io::Stdio) and outside the context lock, so that a
//! thread blocked on stdin stalls nobody and wakes when the run ends. Once the guest closes
//! or renumbers one of these fds, that fd is left to the WASI context like any other.

use std::os::fd::BorrowedFd;

use rustix::event::PollFlags;
use wasmtime::{Caller, Linker};
use wasmtime_wasi::p1::types::{Ciovec, Iovec};
use wasmtime_wasi::runtime::in_tokio;
use wiggle::{GuestMemory, GuestPtr};

use super::delegate;
use super::errno;
use super::memory::{with_ctx, with_memory};
use super::P1_MODULE;
use crate::group::StoreData;

/// The bytes of a guest `ciovec` array, concatenated: one write per `fd_write`.
/// At most this many bytes are taken from one `fd_write` (a short write, which WASI
/// allows and guests retry), so that a guest cannot make the host copy gigabytes at once.
const MAX_WRITE: usize = 16 << 20;

/// The bytes of a guest `ciovec` array, concatenated, up to [`MAX_WRITE`]: one write per
/// `fd_write`. `None` when the array is longer than `IOV_MAX` entries.
fn gather(mem: &GuestMemory<'_>, iovs: i32, len: i32) -> Result<Option<Vec<u8>>, wiggle::GuestError> {
    if len as u32 > IOV_MAX {
        return Ok(None);
    }
    let iovs = GuestPtr::<[Ciovec]>::new((iovs as u32, len as u32));
    let mut out = Vec::new();
    for iov in iovs.iter() {
        let iov = mem.read(iov?)?;
        let take = iov.buf_len.min((MAX_WRITE - out.len()) as u32);
        out.extend_from_slice(&mem.to_vec(iov.buf.as_array(take))?);
        if out.len() == MAX_WRITE {
            break;
        }
    }
    Ok(Some(out))
}

/// Most iovec entries one call may pass, as POSIX's IOV_MAX on Linux.
const IOV_MAX: u32 = 1024;

/// Copies `data` into a guest `iovec` array, in order.
fn scatter(mem: &mut GuestMemory<'_>, iovs: i32, len: i32, mut data: &[u8]) -> Result<(), wiggle::GuestError> {
    let iovs = GuestPtr::<[Iovec]>::new((iovs as u32, len as u32));
    for iov in iovs.iter() {
        if data.is_empty() {
            break;
        }
        let iov = mem.read(iov?)?;
        let n = data.len().min(iov.buf_len as usize);
        mem.copy_from_slice(&data[..n], iov.buf.as_array(n as u32))?;
        data = &data[n..];
    }
    Ok(())
}

/// Total capacity of a guest `iovec` array (of at most `IOV_MAX` entries).
fn capacity(mem: &GuestMemory<'_>, iovs: i32, len: i32) -> Result<usize, wiggle::GuestError> {
    let iovs = GuestPtr::<[Iovec]>::new((iovs as u32, (len as u32).min(IOV_MAX)));
    let mut total = 0usize;
    for iov in iovs.iter() {
        total = total.saturating_add(mem.read(iov?)?.buf_len as usize);
    }
    Ok(total)
}

/// The WASI errno for a failed read or write of a standard stream.
fn io_errno(e: &std::io::Error) -> i32 {
    match e.raw_os_error() {
        Some(libc::EPIPE) => errno::PIPE,
        Some(libc::EBADF) => errno::BADF,
        _ => errno::IO,
    }
}

pub(super) fn add_to_linker(linker: &mut Linker<StoreData>) -> anyhow::Result<()> {
    linker.func_wrap(
        P1_MODULE,
        "fd_write",
        |mut caller: Caller<'_, StoreData>, fd: i32, iovs: i32, len: i32, nwritten: i32| -> wasmtime::Result<i32> {
            if !(fd == 1 || fd == 2) || !caller.data().group.stdio.owns(fd) {
                return with_ctx(&mut caller, |ctx, mem| in_tokio(delegate::fd_write(ctx, mem, fd, iovs, len, nwritten)));
            }
            with_memory(&mut caller, |mem, group, tid| {
                let bytes = match gather(mem, iovs, len) {
                    Ok(Some(bytes)) => bytes,
                    Ok(None) => return Ok(errno::INVAL),
                    Err(_) => return Ok(errno::FAULT),
                };
                let ready = |fd: BorrowedFd<'_>| group.teardown.wait_fd(fd, PollFlags::OUT, None).map(drop);
                if let Err(e) = group.stdio.output(fd).write(tid, &bytes, &ready)? {
                    return Ok(io_errno(&e));
                }
                match mem.write(GuestPtr::<u32>::new(nwritten as u32), bytes.len() as u32) {
                    Ok(()) => Ok(0),
                    Err(_) => Ok(errno::FAULT),
                }
            })
        },
    )?;
    linker.func_wrap(
        P1_MODULE,
        "fd_read",
        |mut caller: Caller<'_, StoreData>, fd: i32, iovs: i32, len: i32, nread: i32| -> wasmtime::Result<i32> {
            if fd != 0 || !caller.data().group.stdio.owns(fd) {
                return with_ctx(&mut caller, |ctx, mem| in_tokio(delegate::fd_read(ctx, mem, fd, iovs, len, nread)));
            }
            // Size the read from the guest's buffers, block without touching guest memory
            // (other threads may grow it meanwhile), then copy in.
            let cap = with_memory(&mut caller, |mem, _, _| Ok(capacity(mem, iovs, len)))?;
            let Ok(cap) = cap else { return Ok(errno::FAULT) };
            let mut buf = vec![0u8; cap.min(64 * 1024)];
            let group = caller.data().group.clone();
            let ready = |fd: BorrowedFd<'_>| group.teardown.wait_fd(fd, PollFlags::IN, None).map(drop);
            let n = match group.stdio.stdin.read(&mut buf, &ready)? {
                Ok(n) => n,
                Err(e) => return Ok(io_errno(&e)),
            };
            with_memory(&mut caller, |mem, _, _| {
                let ok = scatter(mem, iovs, len, &buf[..n])
                    .and_then(|_| mem.write(GuestPtr::<u32>::new(nread as u32), n as u32));
                Ok(if ok.is_ok() { 0 } else { errno::FAULT })
            })
        },
    )?;
    linker.func_wrap(P1_MODULE, "fd_close", |mut caller: Caller<'_, StoreData>, fd: i32| -> wasmtime::Result<i32> {
        caller.data().group.stdio.release(fd);
        with_ctx(&mut caller, |ctx, mem| in_tokio(delegate::fd_close(ctx, mem, fd)))
    })?;
    linker.func_wrap(
        P1_MODULE,
        "fd_renumber",
        |mut caller: Caller<'_, StoreData>, from: i32, to: i32| -> wasmtime::Result<i32> {
            caller.data().group.stdio.release(from);
            caller.data().group.stdio.release(to);
            with_ctx(&mut caller, |ctx, mem| in_tokio(delegate::fd_renumber(ctx, mem, from, to)))
        },
    )?;
    Ok(())
}
