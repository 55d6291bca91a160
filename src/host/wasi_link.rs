//! Links WASI preview 1 (`crate::wasi`) into a store: registers every function, each of
//! which decodes its arguments through the wiggle entry point of that name (generated
//! from the witx in `wasmtime-wasi`) and runs it on the calling thread with a
//! [`Call`] made from the caller's store: its group's WASI state and signal, its thread
//! id and wait slot. No lock is taken here, and no call starts after the run ended.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use wasmtime::{Caller, Extern, Linker};
use wasmtime_wasi::p1::wasi_snapshot_preview1 as snapshot;
use wiggle::GuestMemory;

use crate::group::{Group, StoreData};
use crate::wait::WaitSlot;
use crate::wasi::Call;

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
/// of that name with a [`Call`] for the calling thread.
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
                        with_call(&mut caller, |mem, call| define!(@call $mode $name(call, mem, $($arg),*)))
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

/// The call context of thread `tid` of `group`.
fn call_of<'a>(group: &'a Group, tid: i32, slot: &'a WaitSlot) -> Call<'a> {
    Call { wasi: &group.wasi, signal: &group.teardown.signal, pool: group.pool(), tid, slot }
}

/// Calls `f` with the guest memory of the caller and a [`Call`] of its thread.
fn with_call<R>(
    caller: &mut Caller<'_, StoreData>,
    f: impl FnOnce(&mut GuestMemory<'_>, &mut Call<'_>) -> wasmtime::Result<R>,
) -> wasmtime::Result<R> {
    // Borrowed, not cloned: an `Arc` clone per call makes every thread of the run write
    // one cache line, and tiny calls (`clock_time_get`) then scale negatively.
    let data = caller.data();
    // No call starts once the run has ended (a thread between the end and its next
    // interruption point would otherwise still begin I/O).
    data.group.teardown.signal.bail_if_ending()?;
    if let Some(shared) = &data.group.memory {
        let mut call = call_of(&data.group, data.tid, data.waiter.slot());
        return f(&mut GuestMemory::Shared(shared.data()), &mut call);
    }
    // A module without a shared memory has one thread: the clones cost nothing there.
    let (group, tid, slot): (_, _, Arc<WaitSlot>) = (data.group.clone(), data.tid, data.waiter.slot().clone());
    let mut call = call_of(&group, tid, &slot);
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => f(&mut GuestMemory::Unshared(m.data_mut(&mut *caller)), &mut call),
        Some(Extern::SharedMemory(m)) => f(&mut GuestMemory::Shared(m.data()), &mut call),
        // No memory exported: calls that need none (`proc_exit`, `sched_yield`, ...) work;
        // any access to guest memory is out of bounds, as WASI says.
        _ => f(&mut GuestMemory::Unshared(&mut []), &mut call),
    }
}
