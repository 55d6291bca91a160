//! (stub)

use wasmtime_wasi::p1::types;
use wiggle::{GuestMemory, GuestPtr};

use super::Ctx;

pub(super) fn fd_advise(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, fd: types::Fd, offset: types::Filesize, len: types::Filesize, advice: types::Advice) -> Result<(), types::Error> {
    let _ = fd;
    let _ = offset;
    let _ = len;
    let _ = advice;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn fd_allocate(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, fd: types::Fd, offset: types::Filesize, len: types::Filesize) -> Result<(), types::Error> {
    let _ = fd;
    let _ = offset;
    let _ = len;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn fd_close(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, fd: types::Fd) -> Result<(), types::Error> {
    let _ = fd;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn fd_datasync(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, fd: types::Fd) -> Result<(), types::Error> {
    let _ = fd;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn fd_fdstat_get(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, fd: types::Fd) -> Result<types::Fdstat, types::Error> {
    let _ = fd;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn fd_fdstat_set_flags(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, fd: types::Fd, flags: types::Fdflags) -> Result<(), types::Error> {
    let _ = fd;
    let _ = flags;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn fd_fdstat_set_rights(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, fd: types::Fd, fs_rights_base: types::Rights, fs_rights_inheriting: types::Rights) -> Result<(), types::Error> {
    let _ = fd;
    let _ = fs_rights_base;
    let _ = fs_rights_inheriting;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn fd_filestat_get(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, fd: types::Fd) -> Result<types::Filestat, types::Error> {
    let _ = fd;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn fd_filestat_set_size(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, fd: types::Fd, size: types::Filesize) -> Result<(), types::Error> {
    let _ = fd;
    let _ = size;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn fd_filestat_set_times(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, fd: types::Fd, atim: types::Timestamp, mtim: types::Timestamp, fst_flags: types::Fstflags) -> Result<(), types::Error> {
    let _ = fd;
    let _ = atim;
    let _ = mtim;
    let _ = fst_flags;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn fd_read(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, fd: types::Fd, iovs: types::IovecArray) -> Result<types::Size, types::Error> {
    let _ = fd;
    let _ = iovs;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn fd_pread(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, fd: types::Fd, iovs: types::IovecArray, offset: types::Filesize) -> Result<types::Size, types::Error> {
    let _ = fd;
    let _ = iovs;
    let _ = offset;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn fd_write(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, fd: types::Fd, ciovs: types::CiovecArray) -> Result<types::Size, types::Error> {
    let _ = fd;
    let _ = ciovs;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn fd_pwrite(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, fd: types::Fd, ciovs: types::CiovecArray, offset: types::Filesize) -> Result<types::Size, types::Error> {
    let _ = fd;
    let _ = ciovs;
    let _ = offset;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn fd_prestat_get(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, fd: types::Fd) -> Result<types::Prestat, types::Error> {
    let _ = fd;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn fd_prestat_dir_name(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, fd: types::Fd, path: GuestPtr<u8>, path_max_len: types::Size) -> Result<(), types::Error> {
    let _ = fd;
    let _ = path;
    let _ = path_max_len;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn fd_renumber(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, from_fd: types::Fd, to_fd: types::Fd) -> Result<(), types::Error> {
    let _ = from_fd;
    let _ = to_fd;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn fd_seek(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, fd: types::Fd, offset: types::Filedelta, whence: types::Whence) -> Result<types::Filesize, types::Error> {
    let _ = fd;
    let _ = offset;
    let _ = whence;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn fd_sync(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, fd: types::Fd) -> Result<(), types::Error> {
    let _ = fd;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn fd_tell(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, fd: types::Fd) -> Result<types::Filesize, types::Error> {
    let _ = fd;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}
