//! The calls under a directory descriptor other than `path_open` (`open.rs`) and
//! `fd_readdir` (`readdir.rs`): `path_filestat_get`, `path_filestat_set_times`,
//! `path_create_directory`, `path_remove_directory`, `path_unlink_file`, `path_rename`,
//! `path_link`, `path_symlink`, `path_readlink`; and what every path call shares: the
//! directory descriptor, the path argument, the read-only check.
//!
//! Every path resolves through `cap-primitives` from the directory descriptor's host
//! directory, so `..`, absolute paths and symlinks that would leave it are refused
//! (`perm`, as Wasmtime 48 reports them). `Lookupflags::SYMLINK_FOLLOW` decides whether
//! a symlink in the last component is followed. A `read_only` preopen, and every
//! directory opened beneath it, refuses whatever would create, change or remove
//! anything (`perm`, as Wasmtime 48).
//!
//! `path_create_directory`, `path_symlink` and `path_link` each create one file under
//! the run's cap on files created ([`Limits::max_files_created`](crate::Limits)): past it
//! they fail with `dquot`; a creation that fails counts nothing.
//!
//! `path_filestat_set_times` never opens the file for reading or writing (which is how
//! cap-primitives' `set_times` works, and would block on a FIFO): it opens an `O_PATH`
//! handle and uses `utimensat(AT_EMPTY_PATH)`. Link contents in `path_readlink` are passed
//! as the host's bytes (Wasmtime 48 refuses non-UTF-8 with `ilseq`); `ino`/`dev` are the
//! host's (as `stat.rs`).

use std::path::Path;

use cap_primitives::fs::{DirOptions, FollowSymlinks, OpenOptions, OpenOptionsExt as _};
use rustix::fs::{AtFlags, OFlags};
use wasmtime_wasi::p1::types::{self, Errno, Lookupflags};
use wiggle::{GuestMemory, GuestPtr};

use super::descriptor::{Descriptor, DirDesc};
use super::fds::OpenFd;
use super::{errno, stat, Call};

/// The directory descriptor `fd`: `badf` for anything else (as Wasmtime 48).
pub(super) fn dir_desc(call: &Call<'_>, fd: types::Fd) -> Result<std::sync::Arc<OpenFd>, types::Error> {
    let d = call.descriptor(fd)?;
    match &**d {
        Descriptor::Dir(_) => Ok(d),
        _ => Err(Errno::Badf.into()),
    }
}

/// The `DirDesc` inside a descriptor returned by [`dir_desc`].
pub(super) fn as_dir(d: &Descriptor) -> Result<&DirDesc, types::Error> {
    match d {
        Descriptor::Dir(dir) => Ok(dir),
        _ => Err(Errno::Badf.into()),
    }
}

/// Refuses any change under a read-only preopen.
pub(super) fn writable(d: &DirDesc) -> Result<(), types::Error> {
    if d.read_only {
        Err(Errno::Perm.into())
    } else {
        Ok(())
    }
}

/// Whether a symlink in the last component of a path is followed.
pub(super) fn follow(flags: Lookupflags) -> FollowSymlinks {
    if flags.contains(Lookupflags::SYMLINK_FOLLOW) {
        FollowSymlinks::Yes
    } else {
        FollowSymlinks::No
    }
}

/// Longest path (and symlink target) a call may pass, as Linux's `PATH_MAX`: longer ones
/// fail with `nametoolong` before anything is copied into host memory.
const PATH_MAX: u32 = 4096;

/// A path argument from guest memory, refused over [`PATH_MAX`] bytes.
pub(super) fn read_path<'m>(
    memory: &'m GuestMemory<'_>,
    path: GuestPtr<str>,
) -> Result<std::borrow::Cow<'m, str>, types::Error> {
    if path.len() > PATH_MAX {
        // A path that does not even fit in guest memory traps, as any bad pointer. (Not
        // `as_bytes().get(..)`: wiggle panics when the end passes 4 GiB.)
        let (start, len) = path.offset();
        let last = start.checked_add(len - 1).ok_or(wiggle::GuestError::PtrOverflow)?;
        memory.read(GuestPtr::<u8>::new(last))?;
        return Err(Errno::Nametoolong.into());
    }
    Ok(memory.as_cow_str(path)?)
}

/// Runs `op` on the directory descriptor `dirfd` and the path beneath it, checked in the
/// order of every path call: the descriptor (`badf`), the path (a trap or
/// `nametoolong`), then, for a call that changes something (`change`), a read-only
/// preopen (`perm`).
fn beneath<T>(
    call: &Call<'_>,
    memory: &GuestMemory<'_>,
    dirfd: types::Fd,
    path: GuestPtr<str>,
    change: bool,
    op: impl FnOnce(&DirDesc, &Path) -> Result<T, types::Error>,
) -> Result<T, types::Error> {
    let desc = dir_desc(call, dirfd)?;
    let d = as_dir(&desc)?;
    let path = read_path(memory, path)?;
    if change {
        writable(d)?;
    }
    op(d, Path::new(&*path))
}

/// Runs `create`, which creates one file, within the run's cap on files created: `dquot`
/// when none is left; counted when it succeeds.
fn creating(call: &Call<'_>, create: impl FnOnce() -> Result<(), types::Error>) -> Result<(), types::Error> {
    let unit = call.wasi.quota.reserve_file();
    if unit.units == 0 {
        return Err(Errno::Dquot.into());
    }
    create()?;
    unit.spend(1);
    Ok(())
}

pub(super) fn path_filestat_get(
    call: &Call<'_>,
    memory: &mut GuestMemory<'_>,
    dirfd: types::Fd,
    flags: Lookupflags,
    path: GuestPtr<str>,
) -> Result<types::Filestat, types::Error> {
    beneath(call, memory, dirfd, path, false, |d, path| {
        let m = cap_primitives::fs::stat(&d.dir, path, follow(flags)).map_err(errno::io)?;
        Ok(stat::filestat(&m))
    })
}

#[allow(clippy::too_many_arguments, reason = "the parameters of preview 1's path_filestat_set_times")]
pub(super) fn path_filestat_set_times(
    call: &Call<'_>,
    memory: &mut GuestMemory<'_>,
    dirfd: types::Fd,
    flags: Lookupflags,
    path: GuestPtr<str>,
    atim: types::Timestamp,
    mtim: types::Timestamp,
    fst_flags: types::Fstflags,
) -> Result<(), types::Error> {
    let times = stat::timestamps(atim, mtim, fst_flags)?;
    // An O_PATH handle opens nothing (no FIFO wait, no device open, no access needed);
    // with O_NOFOLLOW it is the symlink itself.
    let mut opts = OpenOptions::new();
    opts.read(true)._cap_fs_ext_follow(follow(flags)).custom_flags(OFlags::PATH.bits() as i32);
    let handle = beneath(call, memory, dirfd, path, true, |d, path| {
        cap_primitives::fs::open(&d.dir, path, &opts).and_then(crate::hostfd::above_stdio).map_err(errno::io)
    })?;
    match rustix::fs::utimensat(&handle, c"", &times, AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW) {
        Ok(()) => Ok(()),
        // Kernels before 5.8 have no AT_EMPTY_PATH for utimensat: the /proc magic link
        // of the handle reaches the same file (not followed further: the handle is it).
        Err(rustix::io::Errno::INVAL) => {
            let link = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&handle));
            rustix::fs::utimensat(rustix::fs::CWD, link.as_str(), &times, AtFlags::empty()).map_err(errno::sys)
        }
        Err(e) => Err(errno::sys(e)),
    }
}

pub(super) fn path_create_directory(
    call: &Call<'_>,
    memory: &mut GuestMemory<'_>,
    dirfd: types::Fd,
    path: GuestPtr<str>,
) -> Result<(), types::Error> {
    beneath(call, memory, dirfd, path, true, |d, path| {
        creating(call, || cap_primitives::fs::create_dir(&d.dir, path, &DirOptions::new()).map_err(errno::io))
    })
}

pub(super) fn path_remove_directory(
    call: &Call<'_>,
    memory: &mut GuestMemory<'_>,
    dirfd: types::Fd,
    path: GuestPtr<str>,
) -> Result<(), types::Error> {
    beneath(call, memory, dirfd, path, true, |d, path| cap_primitives::fs::remove_dir(&d.dir, path).map_err(errno::io))
}

pub(super) fn path_unlink_file(
    call: &Call<'_>,
    memory: &mut GuestMemory<'_>,
    dirfd: types::Fd,
    path: GuestPtr<str>,
) -> Result<(), types::Error> {
    beneath(call, memory, dirfd, path, true, |d, path| cap_primitives::fs::remove_file(&d.dir, path).map_err(errno::io))
}

pub(super) fn path_rename(
    call: &Call<'_>,
    memory: &mut GuestMemory<'_>,
    src_fd: types::Fd,
    src_path: GuestPtr<str>,
    dest_fd: types::Fd,
    dest_path: GuestPtr<str>,
) -> Result<(), types::Error> {
    let src = dir_desc(call, src_fd)?;
    let dest = dir_desc(call, dest_fd)?;
    let (src, dest) = (as_dir(&src)?, as_dir(&dest)?);
    let src_path = read_path(memory, src_path)?;
    let dest_path = read_path(memory, dest_path)?;
    writable(src)?;
    writable(dest)?;
    cap_primitives::fs::rename(&src.dir, Path::new(&*src_path), &dest.dir, Path::new(&*dest_path)).map_err(errno::io)
}

pub(super) fn path_link(
    call: &Call<'_>,
    memory: &mut GuestMemory<'_>,
    src_fd: types::Fd,
    src_flags: Lookupflags,
    src_path: GuestPtr<str>,
    target_fd: types::Fd,
    target_path: GuestPtr<str>,
) -> Result<(), types::Error> {
    let src = dir_desc(call, src_fd)?;
    let target = dir_desc(call, target_fd)?;
    let (src, target) = (as_dir(&src)?, as_dir(&target)?);
    let src_path = read_path(memory, src_path)?;
    let target_path = read_path(memory, target_path)?;
    writable(src)?;
    writable(target)?;
    // A link to what a symlink points at is not offered (as Wasmtime 48): it could name
    // a file outside the sandbox.
    if src_flags.contains(Lookupflags::SYMLINK_FOLLOW) {
        return Err(Errno::Inval.into());
    }
    creating(call, || {
        cap_primitives::fs::hard_link(&src.dir, Path::new(&*src_path), &target.dir, Path::new(&*target_path))
            .map_err(errno::io)
    })
}

pub(super) fn path_symlink(
    call: &Call<'_>,
    memory: &mut GuestMemory<'_>,
    src_path: GuestPtr<str>,
    dirfd: types::Fd,
    dest_path: GuestPtr<str>,
) -> Result<(), types::Error> {
    let desc = dir_desc(call, dirfd)?;
    let d = as_dir(&desc)?;
    let target = read_path(memory, src_path)?;
    let dest_path = read_path(memory, dest_path)?;
    writable(d)?;
    // The link keeps its relative contents; an absolute target is refused (`perm`, as
    // Wasmtime 48). Following it later resolves inside the sandbox like any path.
    creating(call, || {
        cap_primitives::fs::symlink(Path::new(&*target), &d.dir, Path::new(&*dest_path)).map_err(errno::io)
    })
}

pub(super) fn path_readlink(
    call: &Call<'_>,
    memory: &mut GuestMemory<'_>,
    dirfd: types::Fd,
    path: GuestPtr<str>,
    buf: GuestPtr<u8>,
    buf_len: types::Size,
) -> Result<types::Size, types::Error> {
    let link = beneath(call, memory, dirfd, path, false, |d, path| {
        cap_primitives::fs::read_link(&d.dir, path).map_err(errno::io)
    })?;
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(link.as_os_str());
    // Silently truncated to the buffer, as readlink(2) and Wasmtime 48.
    let n = bytes.len().min(buf_len as usize);
    let n32 = u32::try_from(n).map_err(|_| Errno::Overflow)?;
    memory.copy_from_slice(&bytes[..n], buf.as_array(n32))?;
    Ok(n32)
}
