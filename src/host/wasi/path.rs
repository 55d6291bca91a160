//! (stub)

use wasmtime_wasi::p1::types;
use wiggle::{GuestMemory, GuestPtr};

use super::Ctx;

pub(super) fn fd_readdir(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, fd: types::Fd, buf: GuestPtr<u8>, buf_len: types::Size, cookie: types::Dircookie) -> Result<types::Size, types::Error> {
    let _ = fd;
    let _ = buf;
    let _ = buf_len;
    let _ = cookie;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn path_create_directory(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, dirfd: types::Fd, path: GuestPtr<str>) -> Result<(), types::Error> {
    let _ = dirfd;
    let _ = path;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn path_filestat_get(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, dirfd: types::Fd, flags: types::Lookupflags, path: GuestPtr<str>) -> Result<types::Filestat, types::Error> {
    let _ = dirfd;
    let _ = flags;
    let _ = path;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn path_filestat_set_times(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, dirfd: types::Fd, flags: types::Lookupflags, path: GuestPtr<str>, atim: types::Timestamp, mtim: types::Timestamp, fst_flags: types::Fstflags) -> Result<(), types::Error> {
    let _ = dirfd;
    let _ = flags;
    let _ = path;
    let _ = atim;
    let _ = mtim;
    let _ = fst_flags;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn path_link(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, src_fd: types::Fd, src_flags: types::Lookupflags, src_path: GuestPtr<str>, target_fd: types::Fd, target_path: GuestPtr<str>) -> Result<(), types::Error> {
    let _ = src_fd;
    let _ = src_flags;
    let _ = src_path;
    let _ = target_fd;
    let _ = target_path;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn path_open(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, dirfd: types::Fd, dirflags: types::Lookupflags, path: GuestPtr<str>, oflags: types::Oflags, fs_rights_base: types::Rights, fs_rights_inheriting: types::Rights, fdflags: types::Fdflags) -> Result<types::Fd, types::Error> {
    let _ = dirfd;
    let _ = dirflags;
    let _ = path;
    let _ = oflags;
    let _ = fs_rights_base;
    let _ = fs_rights_inheriting;
    let _ = fdflags;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn path_readlink(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, dirfd: types::Fd, path: GuestPtr<str>, buf: GuestPtr<u8>, buf_len: types::Size) -> Result<types::Size, types::Error> {
    let _ = dirfd;
    let _ = path;
    let _ = buf;
    let _ = buf_len;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn path_remove_directory(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, dirfd: types::Fd, path: GuestPtr<str>) -> Result<(), types::Error> {
    let _ = dirfd;
    let _ = path;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn path_rename(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, src_fd: types::Fd, src_path: GuestPtr<str>, dest_fd: types::Fd, dest_path: GuestPtr<str>) -> Result<(), types::Error> {
    let _ = src_fd;
    let _ = src_path;
    let _ = dest_fd;
    let _ = dest_path;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn path_symlink(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, src_path: GuestPtr<str>, dirfd: types::Fd, dest_path: GuestPtr<str>) -> Result<(), types::Error> {
    let _ = src_path;
    let _ = dirfd;
    let _ = dest_path;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn path_unlink_file(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, dirfd: types::Fd, path: GuestPtr<str>) -> Result<(), types::Error> {
    let _ = dirfd;
    let _ = path;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}
