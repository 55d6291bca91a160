//! Sockets handed to the guest: `sock_recv`, `sock_send`, `sock_shutdown`, `sock_accept`,
//! on the calling thread, never blocking in a system call: each attempt is non-blocking
//! (`MSG_DONTWAIT`, or a non-blocking host descriptor) and a wait for readiness goes
//! through the run's signal, unless the guest set `fdflags::nonblock` (then `again`).
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
//! `sock_send` never raises `SIGPIPE` (`MSG_NOSIGNAL`; a closed peer is `pipe`). The
//! bytes go through a host copy buffer bounded as for `fd_read`/`fd_write` (`iovec.rs`:
//! at most 1024 buffers, 16 MiB per call, within the run's copy budget; a short count
//! otherwise).
//!
//! `sock_accept` counts the new connection against the run's descriptor limit: at the
//! limit it fails with `mfile` and leaves the connection in the listener's backlog. The
//! connections a run accepted are closed when the run ends (their peers see the close at
//! once); the listener given by the host stays open (each run has its own duplicate).

use std::os::fd::{AsFd, BorrowedFd};

use rustix::event::PollFlags;
use rustix::net::{RecvAncillaryBuffer, RecvFlags, ReturnFlags, SendFlags, Shutdown, SocketFlags};
use wasmtime_wasi::p1::types::{self, Errno, Fdflags, Riflags, Roflags, Sdflags};
use wiggle::GuestMemory;

use super::descriptor::{Descriptor, FileDesc};
use super::input::InputStream;
use super::stat::FileKind;
use super::{errno, iovec, Call};

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

pub(super) fn sock_recv(
    call: &Call<'_>,
    memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    ri_data: types::IovecArray,
    ri_flags: Riflags,
) -> Result<(types::Size, Roflags), types::Error> {
    let desc = call.descriptor(fd)?;
    let sock = match &**desc {
        Descriptor::Stdin => match (&call.wasi.stdio.stdin, call.wasi.stdio.stdin.fd()) {
            // Whether it is a socket, the host says: `recvmsg` fails with `notsock`.
            (InputStream::Fd { .. }, Some(fd)) => Sock { fd, nonblock: false },
            (InputStream::Closed, _) => return Err(Errno::Badf.into()),
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

    let grant = iovec::reserve(&call.wasi.copy_budget, iovec::capacity(memory, ri_data)?);
    let mut buf = vec![0u8; grant.len];
    let mut filled = 0usize;
    let mut truncated = false;
    loop {
        let got = errno::retry_intr(|| {
            let mut iov = [std::io::IoSliceMut::new(&mut buf[filled..])];
            let mut control = RecvAncillaryBuffer::new(&mut []);
            rustix::net::recvmsg(sock.fd, &mut iov, &mut control, flags)
        });
        match got {
            Ok(got) => {
                let n = got.bytes.min(buf.len() - filled);
                filled += n;
                truncated |= got.flags.contains(ReturnFlags::TRUNC);
                if !waitall || n == 0 || filled == buf.len() {
                    break;
                }
            }
            // Waiting for the rest: a guest that asked not to wait gets what came.
            Err(rustix::io::Errno::AGAIN) if filled > 0 && sock.nonblock => break,
            Err(rustix::io::Errno::AGAIN) => call.wait_ready(sock.fd, PollFlags::IN, sock.nonblock)?,
            Err(_) if filled > 0 => break,
            Err(e) => return Err(errno::sys(e)),
        }
    }

    iovec::scatter(memory, ri_data, &buf[..filled])?;
    let n = u32::try_from(filled).map_err(|_| Errno::Overflow)?;
    Ok((n, if truncated { Roflags::RECV_DATA_TRUNCATED } else { Roflags::empty() }))
}

pub(super) fn sock_send(
    call: &Call<'_>,
    memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    si_data: types::CiovecArray,
    _si_flags: types::Siflags,
) -> Result<types::Size, types::Error> {
    let desc = call.descriptor(fd)?;
    let sock = match &**desc {
        Descriptor::Stdin => return Err(Errno::Badf.into()),
        other => {
            let f = socket_file(other, true)?;
            Sock { fd: f.file.as_fd(), nonblock: f.is_nonblock() }
        }
    };

    let grant = iovec::reserve(&call.wasi.copy_budget, iovec::total(memory, si_data)?);
    let data = iovec::gather(memory, si_data, grant.len)?;

    let flags = SendFlags::DONTWAIT | SendFlags::NOSIGNAL;
    let mut sent = 0usize;
    loop {
        match errno::retry_intr(|| rustix::net::send(sock.fd, &data[sent..], flags)) {
            Ok(n) => {
                sent += n;
                // A guest that asked not to wait gets a short count, as from POSIX `send`.
                if sent >= data.len() || sock.nonblock {
                    break;
                }
            }
            Err(rustix::io::Errno::AGAIN) if sent > 0 && sock.nonblock => break,
            Err(rustix::io::Errno::AGAIN) => call.wait_ready(sock.fd, PollFlags::OUT, sock.nonblock)?,
            Err(_) if sent > 0 => break,
            Err(e) => return Err(errno::sys(e)),
        }
    }
    u32::try_from(sent).map_err(|_| Errno::Overflow.into())
}

pub(super) fn sock_shutdown(
    call: &Call<'_>,
    _memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    how: Sdflags,
) -> Result<(), types::Error> {
    let desc = call.descriptor(fd)?;
    let f = match &**desc {
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

pub(super) fn sock_accept(
    call: &Call<'_>,
    _memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    flags: Fdflags,
) -> Result<types::Fd, types::Error> {
    let desc = call.descriptor(fd)?;
    let listener = match &**desc {
        Descriptor::Stdin => return Err(Errno::Notsup.into()),
        other => socket_file(other, false)?,
    };
    // As wasi-common: the new socket's flags may only be `nonblock`.
    if !(flags - Fdflags::NONBLOCK).is_empty() {
        return Err(Errno::Inval.into());
    }
    let sock = Sock { fd: listener.file.as_fd(), nonblock: listener.is_nonblock() };
    let conn = loop {
        // A run at its descriptor limit leaves the connection waiting in the backlog (for
        // another thread or run, or for this guest once it closed something).
        if call.wasi.fds.is_full() {
            return Err(Errno::Mfile.into());
        }
        match errno::retry_intr(|| rustix::net::accept_with(sock.fd, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC)) {
            Ok(conn) => break crate::hostfd::above_stdio(conn).map_err(errno::io)?,
            // The connection went before it was accepted: try the next.
            Err(rustix::io::Errno::CONNABORTED) => {}
            Err(rustix::io::Errno::AGAIN) => call.wait_ready(sock.fd, PollFlags::IN, sock.nonblock)?,
            Err(e) => return Err(errno::sys(e)),
        }
    };
    let file = FileDesc::new(
        std::fs::File::from(conn),
        FileKind::Socket,
        true,
        true,
        false,
        flags.contains(Fdflags::NONBLOCK),
    );
    // A table filled meanwhile by another thread drops (closes) the new connection.
    let fd = call.wasi.fds.insert(Descriptor::File(file)).map_err(errno::fd)?;
    Ok(types::Fd::from(fd))
}
