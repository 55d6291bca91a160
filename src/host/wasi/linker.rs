//! Registers every WASI preview 1 function: each one decodes its arguments through the
//! wiggle entry point of that name (generated from the witx in `wasmtime-wasi`) and runs
//! it on the calling thread with a [`Ctx`](super::Ctx) of the caller's group. No lock is taken here.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use wasmtime::{Caller, Linker};
use wasmtime_wasi::p1::wasi_snapshot_preview1 as snapshot;

use super::memory::with_memory;
use crate::group::StoreData;

/// The import module of WASI preview 1.
pub(crate) const P1_MODULE: &str = "wasi_snapshot_preview1";

/// Runs a future that never waits (every implementation here is synchronous; some
/// entry points are `async` only because `wasmtime-wasi`'s witx declares them so).
fn ready_now<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        // Not reached: nothing here returns `Pending`. Yield rather than spin if it did.
        std::thread::yield_now();
    }
}

/// Defines `name(args) -> result` for each function, as a call of the wiggle entry point
/// of that name with a [`Ctx`] for the calling thread.
macro_rules! define {
    ($linker:ident; $($mode:ident $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        /// Every preview 1 function name this crate defines.
        pub(crate) const P1_FUNCTIONS: &[&str] = &[$(stringify!($name),)*];

        /// Defines all WASI preview 1 functions.
        pub(crate) fn add_to_linker($linker: &mut Linker<StoreData>) -> anyhow::Result<()> {
            $(
                $linker.func_wrap(
                    P1_MODULE,
                    stringify!($name),
                    |mut caller: Caller<'_, StoreData>, $($arg: $ty),*| -> wasmtime::Result<$ret> {
                        with_memory(&mut caller, |mem, ctx| define!(@call $mode $name(ctx, mem, $($arg),*)))
                    },
                )?;
            )*
            Ok(())
        }
    };
    (@call sync $name:ident($($a:expr),* $(,)?)) => { snapshot::$name($($a),*) };
    (@call async $name:ident($($a:expr),* $(,)?)) => { ready_now(snapshot::$name($($a),*)) };
}

define! { linker;
    sync args_get(a: i32, b: i32) -> i32;
    sync args_sizes_get(a: i32, b: i32) -> i32;
    sync environ_get(a: i32, b: i32) -> i32;
    sync environ_sizes_get(a: i32, b: i32) -> i32;
    sync clock_res_get(a: i32, b: i32) -> i32;
    sync clock_time_get(a: i32, b: i64, c: i32) -> i32;
    async fd_advise(a: i32, b: i64, c: i64, d: i32) -> i32;
    sync fd_allocate(a: i32, b: i64, c: i64) -> i32;
    async fd_close(a: i32) -> i32;
    async fd_datasync(a: i32) -> i32;
    async fd_fdstat_get(a: i32, b: i32) -> i32;
    sync fd_fdstat_set_flags(a: i32, b: i32) -> i32;
    sync fd_fdstat_set_rights(a: i32, b: i64, c: i64) -> i32;
    async fd_filestat_get(a: i32, b: i32) -> i32;
    async fd_filestat_set_size(a: i32, b: i64) -> i32;
    async fd_filestat_set_times(a: i32, b: i64, c: i64, d: i32) -> i32;
    async fd_pread(a: i32, b: i32, c: i32, d: i64, e: i32) -> i32;
    sync fd_prestat_get(a: i32, b: i32) -> i32;
    sync fd_prestat_dir_name(a: i32, b: i32, c: i32) -> i32;
    async fd_pwrite(a: i32, b: i32, c: i32, d: i64, e: i32) -> i32;
    async fd_read(a: i32, b: i32, c: i32, d: i32) -> i32;
    async fd_readdir(a: i32, b: i32, c: i32, d: i64, e: i32) -> i32;
    async fd_renumber(a: i32, b: i32) -> i32;
    async fd_seek(a: i32, b: i64, c: i32, d: i32) -> i32;
    async fd_sync(a: i32) -> i32;
    sync fd_tell(a: i32, b: i32) -> i32;
    async fd_write(a: i32, b: i32, c: i32, d: i32) -> i32;
    async path_create_directory(a: i32, b: i32, c: i32) -> i32;
    async path_filestat_get(a: i32, b: i32, c: i32, d: i32, e: i32) -> i32;
    async path_filestat_set_times(a: i32, b: i32, c: i32, d: i32, e: i64, f: i64, g: i32) -> i32;
    async path_link(a: i32, b: i32, c: i32, d: i32, e: i32, f: i32, g: i32) -> i32;
    async path_open(a: i32, b: i32, c: i32, d: i32, e: i32, f: i64, g: i64, h: i32, i: i32) -> i32;
    async path_readlink(a: i32, b: i32, c: i32, d: i32, e: i32, f: i32) -> i32;
    async path_remove_directory(a: i32, b: i32, c: i32) -> i32;
    async path_rename(a: i32, b: i32, c: i32, d: i32, e: i32, f: i32) -> i32;
    async path_symlink(a: i32, b: i32, c: i32, d: i32, e: i32) -> i32;
    async path_unlink_file(a: i32, b: i32, c: i32) -> i32;
    async poll_oneoff(a: i32, b: i32, c: i32, d: i32) -> i32;
    sync proc_exit(a: i32) -> ();
    sync proc_raise(a: i32) -> i32;
    sync random_get(a: i32, b: i32) -> i32;
    sync sched_yield() -> i32;
    sync sock_accept(a: i32, b: i32, c: i32) -> i32;
    sync sock_recv(a: i32, b: i32, c: i32, d: i32, e: i32, f: i32) -> i32;
    sync sock_send(a: i32, b: i32, c: i32, d: i32, e: i32) -> i32;
    sync sock_shutdown(a: i32, b: i32) -> i32;
}
