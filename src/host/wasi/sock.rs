//! (stub)

use wasmtime_wasi::p1::types;
use wiggle::{GuestMemory, GuestPtr};

use super::Ctx;

pub(super) fn sock_accept(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, fd: types::Fd, flags: types::Fdflags) -> Result<types::Fd, types::Error> {
    let _ = fd;
    let _ = flags;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn sock_recv(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, fd: types::Fd, ri_data: types::IovecArray, ri_flags: types::Riflags) -> Result<(types::Size, types::Roflags), types::Error> {
    let _ = fd;
    let _ = ri_data;
    let _ = ri_flags;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn sock_send(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, fd: types::Fd, si_data: types::CiovecArray, si_flags: types::Siflags) -> Result<types::Size, types::Error> {
    let _ = fd;
    let _ = si_data;
    let _ = si_flags;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}

pub(super) fn sock_shutdown(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, fd: types::Fd, how: types::Sdflags) -> Result<(), types::Error> {
    let _ = fd;
    let _ = how;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}
