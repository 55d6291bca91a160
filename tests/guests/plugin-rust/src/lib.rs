//! plugin-rust: a threaded Rust "reactor" module for the plugin tests, the Rust
//! counterpart of tests/guests/plugin-c/plugin.c (same names and results where both have
//! an export).
//!
//! A `cdylib` for `wasm32-wasip1-threads`: rustc links it with wasi-libc's
//! `crt1-reactor.o`, so the module exports `_initialize` (and no `_start`), imports its
//! shared memory as `env.memory` and exports `wasi_thread_start` (wasi-libc's, pulled in by
//! `pthread_create`, which `std::thread::spawn` calls). build.rs exports `malloc`/`free`.
//! It imports no host function (beyond WASI and `wasi.thread-spawn`).
//!
//! Exports and what each one exercises:
//! - `add(a, b) -> a + b`: a trivial call.
//! - `spin(n) -> i32`: CPU-bound, n rounds of xorshift32 (the C plugin's, same results).
//! - `stack_sum(n) -> i32`: a stack array whose address escapes (`black_box`), filled with
//!   `n * i` for i < 256, re-read after a yield; the sum, or -1 if it changed under it.
//! - `tls_counter_bump() -> i32`, `tls_counter_get() -> i32`: a `thread_local!` counter
//!   (1, 2, 3, ... per guest thread).
//! - `mutex_add(n) -> i32`, `mutex_counter() -> i32`: adds 1, n times, to a counter in a
//!   `static Mutex<i32>`; 0, or -1 if the mutex was poisoned.
//! - `parallel_sum(ptr, len, nthreads) -> i64`: sums `len` u32 at `ptr` (written by the
//!   host) with `nthreads` threads from `std::thread::spawn` inside the call, joined before
//!   it returns; -1 for a bad argument, -2 if a thread could not be spawned.
//! - `spawn_names(n) -> i32`: n named `std::thread::Builder` threads each check
//!   `thread::current().name()` and bump their own `thread_local!` counter once; returns
//!   how many saw their own name and a counter of 1 (n when all did).
//! - `crash(code) -> i32`: 0 returns 0; 1 panics (a trap: panics abort on this target);
//!   2 a spawned thread panics while the call joins it; 3 `std::process::exit(3)`;
//!   anything else -1.
//! - `start_workers(n) -> i32`, `stop_workers() -> i32`, `worker_count() -> i64`: n
//!   background threads increment an atomic counter every millisecond (`thread::sleep`)
//!   until `stop_workers()`, which joins them and returns how many it joined; they keep
//!   running between calls. `start_workers` returns 0, or -16 (EBUSY) if already started.
//! - `print_line(n) -> i32`: `println!("plugin line {n}")` (std's stdout lock); returns 0.

use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Mutex;
use std::thread::{self, JoinHandle};
use std::time::Duration;

#[no_mangle]
pub extern "C" fn add(a: i32, b: i32) -> i32 {
    a.wrapping_add(b)
}

#[no_mangle]
pub extern "C" fn spin(n: i32) -> i32 {
    let mut x = 2463534242u32 ^ n as u32;
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
    }
    x as i32
}

#[no_mangle]
pub extern "C" fn stack_sum(n: i32) -> i32 {
    let mut buf = [0i32; 256];
    for (i, v) in black_box(&mut buf).iter_mut().enumerate() {
        *v = n.wrapping_mul(i as i32);
    }
    thread::yield_now();
    let buf = black_box(&buf);
    let mut sum = 0i32;
    for (i, v) in buf.iter().enumerate() {
        if *v != n.wrapping_mul(i as i32) {
            return -1;
        }
        sum = sum.wrapping_add(*v);
    }
    sum
}

thread_local! {
    static TLS_COUNTER: Cell<i32> = const { Cell::new(0) };
}

#[no_mangle]
pub extern "C" fn tls_counter_bump() -> i32 {
    TLS_COUNTER.with(|c| {
        c.set(c.get() + 1);
        c.get()
    })
}

#[no_mangle]
pub extern "C" fn tls_counter_get() -> i32 {
    TLS_COUNTER.with(Cell::get)
}

static COUNTER: Mutex<i32> = Mutex::new(0);

#[no_mangle]
pub extern "C" fn mutex_add(n: i32) -> i32 {
    for _ in 0..n {
        match COUNTER.lock() {
            Ok(mut c) => *c += 1,
            Err(_) => return -1,
        }
    }
    0
}

#[no_mangle]
pub extern "C" fn mutex_counter() -> i32 {
    COUNTER.lock().map_or(-1, |c| *c)
}

#[no_mangle]
pub extern "C" fn parallel_sum(ptr: *const u32, len: i32, nthreads: i32) -> i64 {
    if ptr.is_null() || len < 0 || !(1..=64).contains(&nthreads) {
        return -1;
    }
    let (len, n) = (len as usize, nthreads as usize);
    let base = ptr as usize;
    let mut threads = Vec::with_capacity(n);
    for i in 0..n {
        let (from, to) = (len * i / n, len * (i + 1) / n);
        let t = thread::Builder::new().spawn(move || {
            // SAFETY: the host wrote `len` u32 at `ptr` and keeps them until this call,
            // which joins every thread, returns; [from, to) is within them.
            let part = unsafe { std::slice::from_raw_parts((base as *const u32).add(from), to - from) };
            part.iter().map(|&v| u64::from(v)).sum::<u64>()
        });
        match t {
            Ok(t) => threads.push(t),
            Err(_) => {
                threads.into_iter().for_each(|t| drop(t.join()));
                return -2;
            }
        }
    }
    threads.into_iter().map(|t| t.join().unwrap_or(0)).sum::<u64>() as i64
}

#[no_mangle]
pub extern "C" fn spawn_names(n: i32) -> i32 {
    let threads: Vec<_> = (0..n.max(0))
        .filter_map(|i| {
            thread::Builder::new()
                .name(format!("plugin-{i}"))
                .spawn(move || {
                    let named = thread::current().name() == Some(format!("plugin-{i}").as_str());
                    named && tls_counter_bump() == 1
                })
                .ok()
        })
        .collect();
    threads.into_iter().map(|t| i32::from(t.join().unwrap_or(false))).sum()
}

#[no_mangle]
pub extern "C" fn crash(code: i32) -> i32 {
    match code {
        0 => 0,
        1 => panic!("crash(1) asked for a panic"),
        2 => {
            let t = thread::spawn(|| panic!("crash(2): a spawned thread panics"));
            let _ = t.join();
            -2
        }
        3 => std::process::exit(3),
        _ => -1,
    }
}

static WORKERS_STOP: AtomicBool = AtomicBool::new(false);
static WORKERS_COUNTER: AtomicI64 = AtomicI64::new(0);
static WORKERS: Mutex<Vec<JoinHandle<()>>> = Mutex::new(Vec::new());

#[no_mangle]
pub extern "C" fn start_workers(n: i32) -> i32 {
    let Ok(mut workers) = WORKERS.lock() else { return -1 };
    if !workers.is_empty() {
        return -16;
    }
    WORKERS_STOP.store(false, Ordering::SeqCst);
    for _ in 0..n {
        match thread::Builder::new().spawn(|| {
            while !WORKERS_STOP.load(Ordering::SeqCst) {
                WORKERS_COUNTER.fetch_add(1, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(1));
            }
        }) {
            Ok(t) => workers.push(t),
            Err(_) => return -11,
        }
    }
    0
}

#[no_mangle]
pub extern "C" fn stop_workers() -> i32 {
    let Ok(mut workers) = WORKERS.lock() else { return -1 };
    WORKERS_STOP.store(true, Ordering::SeqCst);
    let n = workers.len() as i32;
    workers.drain(..).for_each(|t| drop(t.join()));
    n
}

#[no_mangle]
pub extern "C" fn worker_count() -> i64 {
    WORKERS_COUNTER.load(Ordering::SeqCst)
}

#[no_mangle]
pub extern "C" fn print_line(n: i32) -> i32 {
    println!("plugin line {n}");
    0
}

/// The exports called as plain functions from a command (the test harness), threads and
/// all: `CARGO_TARGET_WASM32_WASIP1_THREADS_RUNNER=wt-run cargo test --target
/// wasm32-wasip1-threads` in this directory (a check of the plugin itself, without the
/// instance API).
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_behave() {
        assert_eq!(add(2, 3), 5);
        assert_eq!(spin(1000), -1638522991); // the C plugin's value
        assert_eq!(stack_sum(7), 7 * (255 * 256 / 2));
        assert_eq!((tls_counter_bump(), tls_counter_bump()), (1, 2));
        let threads: Vec<_> =
            (0..8).map(|_| thread::spawn(|| (mutex_add(1000), (0..100).map(|_| tls_counter_bump()).last()))).collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), (0, Some(100)));
        }
        assert_eq!(mutex_counter(), 8000);
        assert_eq!(tls_counter_get(), 2);
        let buf: Vec<u32> = (0..100_000u32).map(|i| 0xffff_fff0 + i % 17).collect();
        let want: u64 = buf.iter().map(|&v| u64::from(v)).sum();
        for n in 1..=8 {
            assert_eq!(parallel_sum(buf.as_ptr(), buf.len() as i32, n), want as i64);
        }
        assert_eq!(spawn_names(5), 5);
        assert_eq!((start_workers(3), start_workers(1)), (0, -16));
        while worker_count() < 30 {
            thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(stop_workers(), 3);
        let c = worker_count();
        assert_eq!((stop_workers(), worker_count()), (0, c));
        assert_eq!((crash(0), crash(9), print_line(1)), (0, -1, 0));
    }
}
