//! WASI errors from host errors: `std::io::Error` (by its OS error number), descriptor
//! table errors, and a run that ended while the call waited; and the one way system
//! calls here retry `EINTR`.

use wasmtime_wasi::p1::types::{self, Errno};

use super::fds::FdError;

/// The WASI errno for a host I/O error.
pub(super) fn of_io(e: &std::io::Error) -> Errno {
    let Some(code) = e.raw_os_error() else {
        // cap-primitives reports a path that would leave its directory as
        // `PermissionDenied` without an OS error number.
        return match e.kind() {
            std::io::ErrorKind::PermissionDenied => Errno::Perm,
            std::io::ErrorKind::NotFound => Errno::Noent,
            std::io::ErrorKind::AlreadyExists => Errno::Exist,
            std::io::ErrorKind::InvalidInput => Errno::Inval,
            std::io::ErrorKind::WouldBlock => Errno::Again,
            std::io::ErrorKind::Interrupted => Errno::Intr,
            std::io::ErrorKind::BrokenPipe => Errno::Pipe,
            std::io::ErrorKind::Unsupported => Errno::Notsup,
            _ => Errno::Io,
        };
    };
    match code {
        libc::E2BIG => Errno::TooBig,
        libc::EACCES => Errno::Acces,
        libc::EADDRINUSE => Errno::Addrinuse,
        libc::EADDRNOTAVAIL => Errno::Addrnotavail,
        libc::EAGAIN => Errno::Again,
        libc::EALREADY => Errno::Already,
        libc::EBADF => Errno::Badf,
        libc::EBUSY => Errno::Busy,
        libc::ECONNABORTED => Errno::Connaborted,
        libc::ECONNREFUSED => Errno::Connrefused,
        libc::ECONNRESET => Errno::Connreset,
        libc::EDEADLK => Errno::Deadlk,
        libc::EDQUOT => Errno::Dquot,
        libc::EEXIST => Errno::Exist,
        libc::EFAULT => Errno::Fault,
        libc::EFBIG => Errno::Fbig,
        libc::EHOSTUNREACH => Errno::Hostunreach,
        libc::EILSEQ => Errno::Ilseq,
        libc::EINPROGRESS => Errno::Inprogress,
        libc::EINTR => Errno::Intr,
        libc::EINVAL => Errno::Inval,
        libc::EIO => Errno::Io,
        libc::EISCONN => Errno::Isconn,
        libc::EISDIR => Errno::Isdir,
        libc::ELOOP => Errno::Loop,
        libc::EMFILE => Errno::Mfile,
        libc::EMLINK => Errno::Mlink,
        libc::EMSGSIZE => Errno::Msgsize,
        libc::ENAMETOOLONG => Errno::Nametoolong,
        libc::ENETDOWN => Errno::Netdown,
        libc::ENETRESET => Errno::Netreset,
        libc::ENETUNREACH => Errno::Netunreach,
        libc::ENFILE => Errno::Nfile,
        libc::ENOBUFS => Errno::Nobufs,
        libc::ENODEV => Errno::Nodev,
        libc::ENOENT => Errno::Noent,
        libc::ENOEXEC => Errno::Noexec,
        libc::ENOLCK => Errno::Nolck,
        libc::ENOMEM => Errno::Nomem,
        libc::ENOSPC => Errno::Nospc,
        libc::ENOSYS => Errno::Nosys,
        libc::ENOTCONN => Errno::Notconn,
        libc::ENOTDIR => Errno::Notdir,
        libc::ENOTEMPTY => Errno::Notempty,
        libc::ENOTSOCK => Errno::Notsock,
        libc::EOPNOTSUPP => Errno::Notsup,
        libc::ENOTTY => Errno::Notty,
        libc::ENXIO => Errno::Nxio,
        libc::EOVERFLOW => Errno::Overflow,
        libc::EPERM => Errno::Perm,
        libc::EPIPE => Errno::Pipe,
        libc::ERANGE => Errno::Range,
        libc::EROFS => Errno::Rofs,
        libc::ESPIPE => Errno::Spipe,
        libc::ESRCH => Errno::Srch,
        libc::ETIMEDOUT => Errno::Timedout,
        libc::ETXTBSY => Errno::Txtbsy,
        libc::EXDEV => Errno::Xdev,
        _ => Errno::Io,
    }
}

/// The WASI error for a host I/O error.
pub(super) fn io(e: std::io::Error) -> types::Error {
    of_io(&e).into()
}

/// The WASI error for a `rustix` call that failed.
pub(super) fn sys(e: rustix::io::Errno) -> types::Error {
    io(e.into())
}

impl From<FdError> for Errno {
    fn from(e: FdError) -> Errno {
        match e {
            FdError::BadFd => Errno::Badf,
            FdError::TooMany => Errno::Mfile,
        }
    }
}

/// The error for a table lookup that failed.
pub(super) fn fd(e: FdError) -> types::Error {
    Errno::from(e).into()
}

/// Passes a host error (above all `Terminated`: the run ended while the call waited) up
/// as a trap, which ends the calling thread.
pub(super) fn trap(e: wasmtime::Error) -> types::Error {
    types::Error::trap(e)
}

/// Runs `op` again while it fails with `EINTR`.
pub(super) fn retry_intr<T>(mut op: impl FnMut() -> rustix::io::Result<T>) -> rustix::io::Result<T> {
    loop {
        match op() {
            Err(rustix::io::Errno::INTR) => continue,
            r => return r,
        }
    }
}
