//! Descriptors the library opens never take 0, 1 or 2.
//!
//! A host that closed its stdin, stdout or stderr (daemons do) leaves those numbers free,
//! and `open`, `eventfd`, `dup` and friends return the lowest free number. A descriptor of
//! the library landing there would become "the host's stdout" for anything that writes fd
//! 1 by number: the guest's inherited stdout, the host's own logging, a later run. So
//! every descriptor the library keeps goes through [`above_stdio`] right after it is
//! opened, and a run treats a host fd 0, 1 or 2 that is closed when it starts as closed
//! ([`is_open`]).

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

/// The lowest descriptor number the library keeps.
pub(crate) const LOWEST: RawFd = 3;

/// `fd`, moved to a number of at least [`LOWEST`] (close-on-exec) when it is below it;
/// the original number is closed then.
pub(crate) fn above_stdio<T: AsFd + From<OwnedFd>>(fd: T) -> std::io::Result<T> {
    if fd.as_fd().as_raw_fd() >= LOWEST {
        return Ok(fd);
    }
    let moved = rustix::io::fcntl_dupfd_cloexec(fd.as_fd(), LOWEST)?;
    drop(fd);
    Ok(T::from(moved))
}

/// True when the process has descriptor `fd` open.
pub(crate) fn is_open(fd: RawFd) -> bool {
    // SAFETY: `fcntl(F_GETFD)` only reads the descriptor table; a closed number yields
    // EBADF and changes nothing.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    flags != -1 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EBADF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn high_descriptors_stay_and_low_ones_move() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let n = f.as_raw_fd();
        assert!(n >= LOWEST, "the test process has its stdio open");
        assert_eq!(above_stdio(f).unwrap().as_raw_fd(), n);
        assert!(!is_open(-1));
        assert!(!is_open(1 << 20));
    }
}
