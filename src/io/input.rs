//! The live stdin of a run.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use anyhow::{Context, Result};
use parking_lot::Mutex;

use super::{Input, Ready};

/// Live stdin of a run.
pub(crate) enum InputStream {
    /// A descriptor to poll and read; `None` is the host's fd 0.
    Fd(Option<Arc<File>>),
    Bytes { data: Arc<[u8]>, pos: Mutex<usize> },
    Null,
}

impl InputStream {
    pub(super) fn open(spec: &Input) -> Result<InputStream> {
        Ok(match spec {
            Input::Inherit => InputStream::Fd(None),
            Input::Null => InputStream::Null,
            Input::Bytes(b) => InputStream::Bytes { data: b.clone(), pos: Mutex::new(0) },
            Input::Path(p) => InputStream::Fd(Some(Arc::new(
                File::open(p).with_context(|| format!("opening {} as the guest's stdin", p.display()))?,
            ))),
            Input::File(f) => InputStream::Fd(Some(f.clone())),
        })
    }

    /// The descriptor to wait on, or `None` when reads never block (bytes, null).
    pub(crate) fn fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            InputStream::Fd(None) => Some(rustix::stdio::stdin()),
            InputStream::Fd(Some(f)) => Some(f.as_fd()),
            InputStream::Bytes { .. } | InputStream::Null => None,
        }
    }

    /// Reads into `buf`, each attempt after `ready` saw the descriptor readable, so a
    /// reader blocked on an empty pipe still stops when its run ends (`ready` fails then).
    /// The inner result is the I/O error to report to the guest.
    pub(crate) fn read(&self, buf: &mut [u8], ready: Ready<'_>) -> wasmtime::Result<std::io::Result<usize>> {
        let fd = match self {
            InputStream::Null => return Ok(Ok(0)),
            InputStream::Bytes { data, pos } => {
                let mut pos = pos.lock();
                let n = buf.len().min(data.len() - *pos);
                buf[..n].copy_from_slice(&data[*pos..*pos + n]);
                *pos += n;
                return Ok(Ok(n));
            }
            InputStream::Fd(None) => rustix::stdio::stdin(),
            InputStream::Fd(Some(f)) => f.as_fd(),
        };
        loop {
            ready(fd)?;
            match rustix::io::read(fd, &mut *buf) {
                Ok(n) => return Ok(Ok(n)),
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => continue,
                Err(e) => return Ok(Err(e.into())),
            }
        }
    }
}
