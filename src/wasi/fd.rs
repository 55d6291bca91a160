//! A descriptor as a handle: `fd_close`, `fd_renumber`, `fd_seek`, `fd_tell`,
//! `fd_advise`, `fd_allocate`, `fd_sync`, `fd_datasync`.
//!
//! `fd_sync` and `fd_datasync`, which can block in the kernel for as long as the storage
//! takes, run on a pool thread holding its own reference to the descriptor while the
//! calling thread waits through the run's signal ([`Call::run_blocking`]), so the run can
//! end while a sync is in flight (it then finishes on its own).
//!
//! Errno choices follow Wasmtime 48's preview 1: `fd_seek`/`fd_tell` on stdio are `spipe`,
//! on a directory `badf`; `fd_allocate` is `notsup`; `fd_renumber` needs both descriptors
//! open.

use wasmtime_wasi::p1::types::{self, Errno};
use wiggle::GuestMemory;

use super::descriptor::{Descriptor, FileDesc};
use super::{errno, Call};

/// The file behind `fd`, or `badf` for stdio and directories (Wasmtime's `get_file`).
pub(super) fn file_of(d: &Descriptor) -> Result<&FileDesc, types::Error> {
    match d {
        Descriptor::File(f) => Ok(f),
        _ => Err(Errno::Badf.into()),
    }
}

/// The file behind a descriptor that has a position: stdio has none (`spipe`), a
/// directory is not a file (`badf`).
fn seekable(d: &Descriptor) -> Result<&FileDesc, types::Error> {
    match d {
        Descriptor::File(f) => Ok(f),
        Descriptor::Stdin | Descriptor::Output(_) => Err(Errno::Spipe.into()),
        Descriptor::Dir(_) => Err(Errno::Badf.into()),
    }
}

/// Removes `fd` from the table; any descriptor may be closed (stdio, preopens). The host
/// descriptor closes when no other thread still uses it.
pub(super) fn fd_close(call: &Call<'_>, _memory: &mut GuestMemory<'_>, fd: types::Fd) -> Result<(), types::Error> {
    let d = call.wasi.fds.remove(u32::from(fd)).map_err(errno::fd)?;
    drop(d);
    Ok(())
}

/// Moves `from` to `to`, closing what `to` was, atomically in the table. Both must be
/// open (as Wasmtime 48); a failure changes nothing.
pub(super) fn fd_renumber(
    call: &Call<'_>,
    _memory: &mut GuestMemory<'_>,
    from_fd: types::Fd,
    to_fd: types::Fd,
) -> Result<(), types::Error> {
    call.wasi.fds.renumber(u32::from(from_fd), u32::from(to_fd)).map_err(errno::fd)
}

pub(super) fn fd_seek(
    call: &Call<'_>,
    _memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    offset: types::Filedelta,
    whence: types::Whence,
) -> Result<types::Filesize, types::Error> {
    let d = call.descriptor(fd)?;
    let f = seekable(&d)?;
    let to = match whence {
        types::Whence::Set => rustix::fs::SeekFrom::Start(u64::try_from(offset).map_err(|_| Errno::Inval)?),
        types::Whence::Cur => rustix::fs::SeekFrom::Current(offset),
        types::Whence::End => rustix::fs::SeekFrom::End(offset),
    };
    let _pos = call.position(f)?;
    rustix::fs::seek(&f.file, to).map_err(errno::sys)
}

pub(super) fn fd_tell(
    call: &Call<'_>,
    _memory: &mut GuestMemory<'_>,
    fd: types::Fd,
) -> Result<types::Filesize, types::Error> {
    let d = call.descriptor(fd)?;
    let f = seekable(&d)?;
    rustix::fs::tell(&f.file).map_err(errno::sys)
}

pub(super) fn fd_advise(
    call: &Call<'_>,
    _memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    offset: types::Filesize,
    len: types::Filesize,
    advice: types::Advice,
) -> Result<(), types::Error> {
    let d = call.descriptor(fd)?;
    let f = file_of(&d)?;
    use rustix::fs::Advice as A;
    let advice = match advice {
        types::Advice::Normal => A::Normal,
        types::Advice::Sequential => A::Sequential,
        types::Advice::Random => A::Random,
        types::Advice::Willneed => A::WillNeed,
        types::Advice::Dontneed => A::DontNeed,
        types::Advice::Noreuse => A::NoReuse,
    };
    rustix::fs::fadvise(&f.file, offset, std::num::NonZeroU64::new(len), advice).map_err(errno::sys)
}

/// Wasmtime 48 does not implement it (`notsup` for any file).
pub(super) fn fd_allocate(
    call: &Call<'_>,
    _memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    _offset: types::Filesize,
    _len: types::Filesize,
) -> Result<(), types::Error> {
    let d = call.descriptor(fd)?;
    file_of(&d)?;
    Err(Errno::Notsup.into())
}

pub(super) fn fd_sync(call: &Call<'_>, _memory: &mut GuestMemory<'_>, fd: types::Fd) -> Result<(), types::Error> {
    sync(call, fd, |f| rustix::fs::fsync(f))
}

pub(super) fn fd_datasync(call: &Call<'_>, _memory: &mut GuestMemory<'_>, fd: types::Fd) -> Result<(), types::Error> {
    sync(call, fd, |f| rustix::fs::fdatasync(f))
}

/// `fd_sync` / `fd_datasync`: `how` (`fsync`, `fdatasync`) runs on a pool thread that
/// holds its own reference to the descriptor, while this thread waits through the
/// run's signal; a run that ends meanwhile stops the thread at once, and the sync
/// finishes on its own and then lets go of the descriptor (closing it if the guest did).
fn sync(call: &Call<'_>, fd: types::Fd, how: fn(&std::fs::File) -> rustix::io::Result<()>) -> Result<(), types::Error> {
    let d = call.descriptor(fd)?;
    file_of(&d)?;
    let result = call.run_blocking(move || {
        let Descriptor::File(f) = &**d else { unreachable!("checked by file_of") };
        errno::retry_intr(|| how(&f.file))
    });
    result?.map_err(errno::sys)
}
