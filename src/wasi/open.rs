//! `path_open`. Nothing here blocks outside the run's signal:
//! - every `open(2)` is `O_NONBLOCK`, so that a FIFO never waits in the kernel for its
//!   other end. Regular files, directories and block devices get a blocking descriptor
//!   back at once (one `F_SETFL`); FIFOs, character devices and sockets keep a
//!   non-blocking host descriptor, whose reads and writes wait through the signal
//!   (`read.rs`, `write.rs`);
//! - opening a FIFO for writing only while it has no reader fails with `ENXIO` when
//!   non-blocking. POSIX's blocking open waits for a reader instead, and so do we unless
//!   the guest asked for `fdflags::nonblock` (then it gets `nxio`, as POSIX): the open is
//!   retried after a short sleep (1 ms, doubling up to 50 ms) through
//!   [`Signal::sleep_until`](crate::wait::Signal::sleep_until), so the call ends
//!   as soon as a reader appears or the run ends;
//! - opening a FIFO for reading returns at once, with or without a writer (as POSIX's
//!   non-blocking open); a read then waits through the signal (`read.rs`).
//!
//! Under a cap on files created ([`Limits::max_files_created`](crate::Limits)),
//! `oflags::creat` creates with `O_EXCL` so that it knows whether it created: a file
//! that exists is then opened as it is (no creation counted), and a creation past the
//! cap fails with `dquot`. Without the cap the open is the plain `O_CREAT` one.
//!
//! Where this is more than Wasmtime 48: `fdflags::{dsync, rsync, sync}` are honoured
//! (`O_DSYNC`, `O_RSYNC`, `O_SYNC`) where Wasmtime 48 and 46 return `notsup`.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use cap_primitives::fs::{FileTypeExt as _, FollowSymlinks, OpenOptions, OpenOptionsExt as _};
use rustix::fs::OFlags;
use wasmtime_wasi::p1::types::{self, Errno, Lookupflags, Oflags, Rights};
use wiggle::{GuestMemory, GuestPtr};

use super::descriptor::{Descriptor, DirDesc, FileDesc};
use super::path::{follow, read_path};
use super::stat::FileKind;
use super::{errno, Call};

/// Longest sleep between two attempts to open a FIFO for writing that has no reader.
const FIFO_RETRY_MAX: Duration = Duration::from_millis(50);

#[allow(clippy::too_many_arguments, reason = "the parameters of preview 1's path_open")]
pub(super) fn path_open(
    call: &Call<'_>,
    memory: &mut GuestMemory<'_>,
    dirfd: types::Fd,
    dirflags: Lookupflags,
    path: GuestPtr<str>,
    oflags: Oflags,
    fs_rights_base: Rights,
    _fs_rights_inheriting: Rights,
    fdflags: types::Fdflags,
) -> Result<types::Fd, types::Error> {
    let desc = call.descriptor(dirfd)?;
    let parent = match &**desc {
        Descriptor::Dir(d) => d,
        Descriptor::File(_) => return Err(Errno::Notdir.into()),
        _ => return Err(Errno::Badf.into()),
    };
    let path = read_path(memory, path)?;
    let path = Path::new(&*path);

    let creat = oflags.contains(Oflags::CREAT);
    let excl = oflags.contains(Oflags::EXCL);
    let trunc = oflags.contains(Oflags::TRUNC);
    let directory = oflags.contains(Oflags::DIRECTORY);
    if directory && (creat || excl || trunc) {
        return Err(Errno::Inval.into());
    }
    // Access as Wasmtime 48 decides it: creating or truncating writes; without the
    // write right the file is opened for reading (so the OS lets it be opened at all).
    let want_write = fs_rights_base.contains(Rights::FD_WRITE);
    let write = want_write || creat || trunc;
    let read = fs_rights_base.contains(Rights::FD_READ) || !want_write;
    if parent.read_only && write {
        return Err(Errno::Perm.into());
    }
    // Fail before creating or opening anything when the table is full.
    if call.wasi.fds.is_full() {
        return Err(Errno::Mfile.into());
    }

    let append = fdflags.contains(types::Fdflags::APPEND);
    let nonblock = fdflags.contains(types::Fdflags::NONBLOCK);
    let mut flags = OFlags::NONBLOCK | OFlags::NOCTTY;
    if directory {
        flags |= OFlags::DIRECTORY;
    }
    // O_APPEND through the custom flags: cap-primitives refuses `append` with `truncate`,
    // which POSIX allows. A descriptor that cannot write needs no host O_APPEND.
    let host_append = append && write;
    if host_append {
        flags |= OFlags::APPEND;
    }
    if fdflags.contains(types::Fdflags::SYNC) {
        flags |= OFlags::SYNC;
    }
    if fdflags.contains(types::Fdflags::DSYNC) {
        flags |= OFlags::DSYNC;
    }
    if fdflags.contains(types::Fdflags::RSYNC) {
        flags |= OFlags::RSYNC;
    }
    let mut opts = OpenOptions::new();
    opts.read(read).write(write)._cap_fs_ext_follow(follow(dirflags)).custom_flags(flags.bits() as i32);
    if creat {
        if excl {
            opts.create_new(true);
        } else {
            opts.create(true);
        }
    }
    if trunc {
        opts.truncate(true);
    }

    let wait_for_reader = write && !read && !nonblock;
    let file = if creat && call.wasi.quota.counts_files() {
        open_counted(call, parent, path, &opts, excl, wait_for_reader, dirflags)?
    } else {
        open_interruptibly(call, parent, path, &opts, wait_for_reader, dirflags)?
    };
    let meta = file.metadata().map_err(errno::io)?;
    let d = if meta.is_dir() {
        // A directory: blocking mode (it has no use for O_NONBLOCK anyway).
        rustix::fs::fcntl_setfl(&file, OFlags::empty()).map_err(errno::sys)?;
        Descriptor::Dir(DirDesc::new(file, None, parent.read_only))
    } else if directory {
        return Err(Errno::Notdir.into());
    } else {
        let kind = FileKind::of_mode(meta.mode());
        if !kind.may_block() {
            // Regular files and block devices are read and written directly.
            let keep = if host_append { OFlags::APPEND } else { OFlags::empty() };
            rustix::fs::fcntl_setfl(&file, keep).map_err(errno::sys)?;
        }
        Descriptor::File(FileDesc::new(file, kind, read, write, append, nonblock))
    };
    // On failure (the limit reached meanwhile) `d` is dropped here, closing the file.
    let fd = call.wasi.fds.insert(d).map_err(errno::fd)?;
    Ok(types::Fd::from(fd))
}

/// Most times [`open_counted`] retries a file that disappears or appears between its
/// attempts (another thread or process removing and creating it).
const CREATE_ATTEMPTS: usize = 8;

/// Opens `path` under `parent` as `opts` (with `O_CREAT`) says, counting a file it
/// creates against the run's cap on files created: a new file is made with `O_EXCL`; one
/// that exists is opened as it is (unless `excl`: `exist`). Past the cap, only a file
/// that exists is opened, else `dquot`.
fn open_counted(
    call: &Call<'_>,
    parent: &DirDesc,
    path: &Path,
    opts: &OpenOptions,
    excl: bool,
    wait_for_reader: bool,
    dirflags: Lookupflags,
) -> Result<std::fs::File, types::Error> {
    let unit = call.wasi.quota.reserve_file();
    let mut new = opts.clone();
    new.create_new(true);
    let mut existing = opts.clone();
    existing.create(false).create_new(false);
    for _ in 0..CREATE_ATTEMPTS {
        if unit.units > 0 {
            match cap_primitives::fs::open(&parent.dir, path, &new) {
                Ok(f) => {
                    unit.spend(1);
                    return crate::hostfd::above_stdio(f).map_err(errno::io);
                }
                Err(e) if excl || e.raw_os_error() != Some(libc::EEXIST) => return Err(errno::io(e)),
                Err(_) => {}
            }
        } else if excl {
            // As a full file system answers: `exist` for what exists (a dangling symlink
            // included), else no room.
            let exists = cap_primitives::fs::stat(&parent.dir, path, FollowSymlinks::No).is_ok();
            return Err(if exists { Errno::Exist } else { Errno::Dquot }.into());
        }
        match open_interruptibly(call, parent, path, &existing, wait_for_reader, dirflags) {
            Err(e) if e.downcast_ref() == Some(&Errno::Noent) => {
                if unit.units == 0 {
                    return Err(Errno::Dquot.into());
                }
            }
            r => return r,
        }
    }
    // It kept appearing and disappearing: as if the last attempt lost the race.
    Err(Errno::Noent.into())
}

/// Opens `path` under `parent` (always `O_NONBLOCK`). With `wait_for_reader` (a
/// write-only open the guest wants blocking), a FIFO without a reader is retried until
/// one appears, sleeping through the run's signal in between.
fn open_interruptibly(
    call: &Call<'_>,
    parent: &DirDesc,
    path: &Path,
    opts: &OpenOptions,
    wait_for_reader: bool,
    dirflags: Lookupflags,
) -> Result<std::fs::File, types::Error> {
    let mut delay = Duration::from_millis(1);
    let mut is_fifo = None;
    loop {
        let e = match cap_primitives::fs::open(&parent.dir, path, opts) {
            Ok(f) => return crate::hostfd::above_stdio(f).map_err(errno::io),
            Err(e) => e,
        };
        if !wait_for_reader || e.raw_os_error() != Some(libc::ENXIO) {
            return Err(errno::io(e));
        }
        // ENXIO is also what a socket or a device without a driver gives: only a FIFO
        // waits for its other end.
        let fifo = *is_fifo.get_or_insert_with(|| {
            cap_primitives::fs::stat(&parent.dir, path, follow(dirflags)).is_ok_and(|m| m.file_type().is_fifo())
        });
        if !fifo {
            return Err(errno::io(e));
        }
        call.signal.sleep_until(call.slot, Some(Instant::now() + delay)).map_err(errno::trap)?;
        delay = (delay * 2).min(FIFO_RETRY_MAX);
    }
}
