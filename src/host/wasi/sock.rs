//! Sockets handed to the guest: `sock_recv`, `sock_send`, `sock_shutdown`, `sock_accept`,
//! on the calling thread, never blocking in a system call: each attempt is non-blocking
//! (`MSG_DONTWAIT`, or a non-blocking host descriptor) and a wait for readiness goes
//! through the run's teardown, unless the guest set `fdflags::nonblock` (then `again`).
//!
//! Which descriptors are sockets:
//! - a `Descriptor::File` of kind socket (its host descriptor is non-blocking): every
//!   call, within what the descriptor was opened for (`badf` otherwise);
//! - stdin, when the host's stdin stream is a socket: only `sock_recv`, a read like
//!   `fd_read`, which the host granted by making it the guest's input. The host may share
//!   that descriptor with other runs and with itself, and gave it as an input only, so
//!   the guest may not write to it (`sock_send` is `badf`, as `fd_write` on stdin), shut
//!   it down or accept connections on it (`notsup`). A host wanting replies on the same
//!   socket makes it the guest's stdout too.
//! - anything else: `notsock` (after `badf` for a descriptor not open), as Wasmtime 48,
//!   which answers `notsock` for every descriptor.
//!
//! `sock_recv` honours `recv_peek` and `recv_waitall` (on a stream socket: waiting,
//! interruptibly, until the buffers are full or the peer shuts down; with `recv_peek`, or
//! on a datagram socket, it returns what one receive gets) and
//! reports `recv_data_truncated` for a datagram longer than the buffers; control messages
//! are discarded (file descriptors sent over a Unix socket are closed by the kernel).
//! `sock_send` never raises `SIGPIPE` (`MSG_NOSIGNAL`; a closed peer is `pipe`). One call
//! moves at most [`MAX_IO`] bytes through at most [`MAX_IOVECS`] buffers (`inval` past
//! that many buffers, as `readv`/`writev`).

use std::borrow::Cow;
use std::os::fd::{AsFd, BorrowedFd};

use rustix::event::PollFlags;
use rustix::net::{RecvAncillaryBuffer, RecvFlags, ReturnFlags, SendFlags, Shutdown, SocketFlags};
use wasmtime_wasi::p1::types::{self, Errno, Fdflags, Riflags, Roflags, Sdflags};
use wiggle::GuestMemory;

use super::{Ctx, errno};
use crate::io::{Descriptor, FileDesc, FileKind, InputStream};

/// Most bytes one call receives or sends (as `fd_read`/`fd_write`).
pub(super) const MAX_IO: u32 = 16 << 20;

/// Most buffers in one call's iovec array (`IOV_MAX`).
pub(super) const MAX_IOVECS: u32 = 1024;

/// The socket a call works on, and whether the guest asked not to wait.
struct Sock<'a> {
    fd: BorrowedFd<'a>,
    nonblock: bool,
}

/// The socket file behind `desc`, checking the direction the descriptor was opened for.
fn socket_file(desc: &Descriptor, write: bool) -> Result<&FileDesc, types::Error> {
    match desc {
        Descriptor::File(f) if f.kind == FileKind::Socket => {
            if (write && !f.writable) || (!write && !f.readable) {
                return Err(Errno::Badf.into());
            }
            Ok(f)
        }
        _ => Err(Errno::Notsock.into()),
    }
}

/// Waits until `fd` is ready for `flags`, or fails with `again` when the guest asked not
/// to wait; a run ending meanwhile is a trap.
fn wait(ctx: &Ctx<'_>, sock: &Sock<'_>, flags: PollFlags) -> Result<(), types::Error> {
    if sock.nonblock {
        return Err(Errno::Again.into());
    }
    ctx.group.teardown.wait_fd(sock.fd, flags, None).map_err(errno::trap)?;
    Ok(())
}

/// The total length of the buffers of an iovec array, capped at [`MAX_IO`].
fn total_len<T: wiggle::GuestType>(memory: &GuestMemory<'_>, iovs: wiggle::GuestPtr<[T]>, len: impl Fn(&T) -> u32) -> Result<u32, types::Error> {
    if iovs.len() > MAX_IOVECS {
        return Err(Errno::Inval.into());
    }
    let mut total = 0u32;
    for iov in iovs.iter() {
        let iov = memory.read(iov?)?;
        total = total.saturating_add(len(&iov)).min(MAX_IO);
    }
    Ok(total)
}

pub(super) fn sock_recv(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, fd: types::Fd, ri_data: types::IovecArray, ri_flags: types::Riflags) -> Result<(types::Size, types::Roflags), types::Error> {
    let desc = ctx.descriptor(fd)?;
    let sock = match &*desc {
        Descriptor::Stdin => match (&ctx.group.stdio.stdin, ctx.group.stdio.stdin.fd()) {
            // Whether it is a socket, the host says: `recvmsg` fails with `notsock`.
            (InputStream::Fd(_), Some(fd)) => Sock { fd, nonblock: false },
            _ => return Err(Errno::Notsock.into()),
        },
        other => {
            let f = socket_file(other, false)?;
            Sock { fd: f.file.as_fd(), nonblock: f.is_nonblock() }
        }
    };
    let peek = ri_flags.contains(Riflags::RECV_PEEK);
    // Waiting for all applies to byte streams only (datagrams are never joined), and not
    // to a peek (which would see the same bytes again).
    let waitall = ri_flags.contains(Riflags::RECV_WAITALL)
        && !peek
        && rustix::net::sockopt::socket_type(sock.fd).is_ok_and(|t| t == rustix::net::SocketType::STREAM);
    let mut flags = RecvFlags::DONTWAIT | RecvFlags::CMSG_CLOEXEC;
    if peek {
        flags |= RecvFlags::PEEK;
    }

    let total = total_len(memory, ri_data, |iov: &types::Iovec| iov.buf_len)?;
    let mut buf = vec![0u8; total as usize];
    let mut filled = 0usize;
    let mut truncated = false;
    loop {
        let mut iov = [std::io::IoSliceMut::new(&mut buf[filled..])];
        let mut control = RecvAncillaryBuffer::new(&mut []);
        match rustix::net::recvmsg(sock.fd, &mut iov, &mut control, flags) {
            Ok(got) => {
                let n = got.bytes.min(buf.len() - filled);
                filled += n;
                truncated |= got.flags.contains(ReturnFlags::TRUNC);
                if !waitall || n == 0 || filled == buf.len() {
                    break;
                }
            }
            Err(rustix::io::Errno::INTR) => {}
            // Waiting for the rest: a guest that asked not to wait gets what came.
            Err(rustix::io::Errno::AGAIN) if filled > 0 && sock.nonblock => break,
            Err(rustix::io::Errno::AGAIN) => wait(ctx, &sock, PollFlags::IN)?,
            Err(_) if filled > 0 => break,
            Err(e) => return Err(errno::sys(e)),
        }
    }

    // Scatter into the guest's buffers, in order.
    let mut rest = &buf[..filled];
    for iov in ri_data.iter() {
        if rest.is_empty() {
            break;
        }
        let iov = memory.read(iov?)?;
        let k = rest.len().min(iov.buf_len as usize);
        memory.copy_from_slice(&rest[..k], iov.buf.as_array(k as u32))?;
        rest = &rest[k..];
    }
    let n = u32::try_from(filled - rest.len()).map_err(|_| Errno::Overflow)?;
    Ok((n, if truncated { Roflags::RECV_DATA_TRUNCATED } else { Roflags::empty() }))
}

pub(super) fn sock_send(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, fd: types::Fd, si_data: types::CiovecArray, _si_flags: types::Siflags) -> Result<types::Size, types::Error> {
    let desc = ctx.descriptor(fd)?;
    let sock = match &*desc {
        Descriptor::Stdin => return Err(Errno::Badf.into()),
        other => {
            let f = socket_file(other, true)?;
            Sock { fd: f.file.as_fd(), nonblock: f.is_nonblock() }
        }
    };

    // Gather: one buffer is sent from guest memory as it is (or a copy of it, for shared
    // memory); several are copied into one host buffer, at most MAX_IO bytes in all.
    let total = total_len(memory, si_data, |iov: &types::Ciovec| iov.buf_len)?;
    let mut data: Cow<'_, [u8]> = Cow::Borrowed(&[]);
    let mut left = total;
    for iov in si_data.iter() {
        let iov = memory.read(iov?)?;
        let k = iov.buf_len.min(left);
        if k == 0 {
            continue;
        }
        let part = memory.as_cow(iov.buf.as_array(k))?;
        if data.is_empty() {
            data = part;
        } else {
            let buf = data.to_mut();
            buf.reserve_exact((left) as usize);
            buf.extend_from_slice(&part);
        }
        left -= k;
    }

    let flags = SendFlags::DONTWAIT | SendFlags::NOSIGNAL;
    let mut sent = 0usize;
    loop {
        match rustix::net::send(sock.fd, &data[sent..], flags) {
            Ok(n) => {
                sent += n;
                // A guest that asked not to wait gets a short count, as from POSIX `send`.
                if sent >= data.len() || sock.nonblock {
                    break;
                }
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) if sent > 0 && sock.nonblock => break,
            Err(rustix::io::Errno::AGAIN) => wait(ctx, &sock, PollFlags::OUT)?,
            Err(_) if sent > 0 => break,
            Err(e) => return Err(errno::sys(e)),
        }
    }
    u32::try_from(sent).map_err(|_| Errno::Overflow.into())
}

pub(super) fn sock_shutdown(ctx: &mut Ctx<'_>, _memory: &mut GuestMemory<'_>, fd: types::Fd, how: types::Sdflags) -> Result<(), types::Error> {
    let desc = ctx.descriptor(fd)?;
    let f = match &*desc {
        Descriptor::Stdin => return Err(Errno::Notsup.into()),
        Descriptor::File(f) if f.kind == FileKind::Socket => f,
        _ => return Err(Errno::Notsock.into()),
    };
    let how = match (how.contains(Sdflags::RD), how.contains(Sdflags::WR)) {
        (true, true) => Shutdown::Both,
        (true, false) => Shutdown::Read,
        (false, true) => Shutdown::Write,
        (false, false) => return Err(Errno::Inval.into()),
    };
    rustix::net::shutdown(&f.file, how).map_err(errno::sys)
}

pub(super) fn sock_accept(ctx: &mut Ctx<'_>, _memory: &mut GuestMemory<'_>, fd: types::Fd, flags: types::Fdflags) -> Result<types::Fd, types::Error> {
    let desc = ctx.descriptor(fd)?;
    let listener = match &*desc {
        Descriptor::Stdin => return Err(Errno::Notsup.into()),
        other => socket_file(other, false)?,
    };
    // As wasi-common: the new socket's flags may only be `nonblock`.
    if !(flags - Fdflags::NONBLOCK).is_empty() {
        return Err(Errno::Inval.into());
    }
    let sock = Sock { fd: listener.file.as_fd(), nonblock: listener.is_nonblock() };
    let conn = loop {
        match rustix::net::accept_with(sock.fd, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC) {
            Ok(conn) => break conn,
            Err(rustix::io::Errno::INTR | rustix::io::Errno::CONNABORTED) => {}
            Err(rustix::io::Errno::AGAIN) => wait(ctx, &sock, PollFlags::IN)?,
            Err(e) => return Err(errno::sys(e)),
        }
    };
    let file = FileDesc::new(std::fs::File::from(conn), FileKind::Socket, true, true, false, flags.contains(Fdflags::NONBLOCK));
    // A full table drops (closes) the new connection.
    let fd = ctx.group.fds.insert(Descriptor::File(file)).map_err(errno::fd)?;
    Ok(types::Fd::from(fd))
}
