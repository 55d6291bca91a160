//! The WASI functions served by `wasmtime-wasi` itself, one locked call each.

use wasmtime::{Caller, Linker};
use wasmtime_wasi::p1::wasi_snapshot_preview1 as snapshot;
use wasmtime_wasi::runtime::in_tokio;

use super::P1_MODULE;
use super::memory::with_ctx;
use crate::group::StoreData;

/// Defines `name(args) -> errno` as a locked call of the wiggle entry point of that name.
/// `async` entry points are driven to completion on this thread.
macro_rules! delegate {
    ($linker:ident; $($mode:ident $name:ident($($arg:ident: $ty:ty),*);)*) => {
        /// Every preview 1 function name this crate defines.
        pub(crate) const P1_FUNCTIONS: &[&str] = &[
            $(stringify!($name),)* "fd_read", "fd_write", "fd_close", "fd_renumber", "poll_oneoff", "proc_exit", "sched_yield",
        ];
        pub(super) fn add_to_linker($linker: &mut Linker<StoreData>) -> anyhow::Result<()> {
            $(
                $linker.func_wrap(
                    P1_MODULE,
                    stringify!($name),
                    |mut caller: Caller<'_, StoreData>, $($arg: $ty),*| -> wasmtime::Result<i32> {
                        with_ctx(&mut caller, |ctx, mem| delegate!(@call $mode $name(ctx, mem, $($arg),*)))
                    },
                )?;
            )*
            Ok(())
        }
    };
    (@call sync $name:ident($($a:ident),*)) => { snapshot::$name($($a),*) };
    (@call async $name:ident($($a:ident),*)) => { in_tokio(snapshot::$name($($a),*)) };
}

delegate! { linker;
    sync args_get(a: i32, b: i32);
    sync args_sizes_get(a: i32, b: i32);
    sync environ_get(a: i32, b: i32);
    sync environ_sizes_get(a: i32, b: i32);
    sync clock_res_get(a: i32, b: i32);
    sync clock_time_get(a: i32, b: i64, c: i32);
    async fd_advise(a: i32, b: i64, c: i64, d: i32);
    sync fd_allocate(a: i32, b: i64, c: i64);
    async fd_datasync(a: i32);
    async fd_fdstat_get(a: i32, b: i32);
    sync fd_fdstat_set_flags(a: i32, b: i32);
    sync fd_fdstat_set_rights(a: i32, b: i64, c: i64);
    async fd_filestat_get(a: i32, b: i32);
    async fd_filestat_set_size(a: i32, b: i64);
    async fd_filestat_set_times(a: i32, b: i64, c: i64, d: i32);
    async fd_pread(a: i32, b: i32, c: i32, d: i64, e: i32);
    sync fd_prestat_get(a: i32, b: i32);
    sync fd_prestat_dir_name(a: i32, b: i32, c: i32);
    async fd_pwrite(a: i32, b: i32, c: i32, d: i64, e: i32);
    async fd_readdir(a: i32, b: i32, c: i32, d: i64, e: i32);
    async fd_seek(a: i32, b: i64, c: i32, d: i32);
    async fd_sync(a: i32);
    sync fd_tell(a: i32, b: i32);
    async path_create_directory(a: i32, b: i32, c: i32);
    async path_filestat_get(a: i32, b: i32, c: i32, d: i32, e: i32);
    async path_filestat_set_times(a: i32, b: i32, c: i32, d: i32, e: i64, f: i64, g: i32);
    async path_link(a: i32, b: i32, c: i32, d: i32, e: i32, f: i32, g: i32);
    async path_open(a: i32, b: i32, c: i32, d: i32, e: i32, f: i64, g: i64, h: i32, i: i32);
    async path_readlink(a: i32, b: i32, c: i32, d: i32, e: i32, f: i32);
    async path_remove_directory(a: i32, b: i32, c: i32);
    async path_rename(a: i32, b: i32, c: i32, d: i32, e: i32, f: i32);
    async path_symlink(a: i32, b: i32, c: i32, d: i32, e: i32);
    async path_unlink_file(a: i32, b: i32, c: i32);
    sync proc_raise(a: i32);
    sync random_get(a: i32, b: i32);
    sync sock_accept(a: i32, b: i32, c: i32);
    sync sock_recv(a: i32, b: i32, c: i32, d: i32, e: i32, f: i32);
    sync sock_send(a: i32, b: i32, c: i32, d: i32, e: i32);
    sync sock_shutdown(a: i32, b: i32);
}

/// The entry points for calls that `stdio.rs` and `poll.rs` hand back to the context.
pub(super) use snapshot::{fd_close, fd_read, fd_renumber, fd_write, poll_oneoff};
