//! Benchmark workloads, identical in wasm and native builds. Each prints one number.
//!
//!   spawn N                 spawn and join N threads with empty bodies, one after another
//!   checksum T MIB ROUNDS   checksum a MIB-MiB buffer ROUNDS times split over T threads;
//!                           prints the nanoseconds the computation took
//!   pingpong N              two threads hand a token back and forth N times with
//!                           thread::park/unpark (memory.atomic.wait32/notify in wasm, the
//!                           futex syscall natively); prints nanoseconds
//!   idle N                  park N threads forever, print "ready", wait

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

fn arg(args: &[String], i: usize) -> u64 {
    args.get(i).and_then(|s| s.parse().ok()).expect("numeric argument")
}

fn checksum(data: &[u8]) -> u64 {
    // FNV-1a over 8-byte words: cheap per byte, hard to vectorise away.
    let mut h: u64 = 0xcbf29ce484222325;
    for chunk in data.chunks_exact(8) {
        h ^= u64::from_le_bytes(chunk.try_into().unwrap());
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("spawn") => {
            for _ in 0..arg(&args, 2) {
                thread::spawn(|| {}).join().unwrap();
            }
            println!("0");
        }
        Some("checksum") => {
            let (threads, mib, rounds) = (arg(&args, 2) as usize, arg(&args, 3) as usize, arg(&args, 4));
            let data: Arc<Vec<u8>> = Arc::new((0..mib << 20).map(|i| (i * 7 + i / 256) as u8).collect());
            let start = Instant::now();
            let part = data.len() / threads;
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let data = data.clone();
                    thread::spawn(move || {
                        let mut acc = 0u64;
                        for _ in 0..rounds {
                            acc ^= checksum(&data[t * part..(t + 1) * part]);
                        }
                        acc
                    })
                })
                .collect();
            let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).fold(0, |a, b| a ^ b);
            let ns = start.elapsed().as_nanos();
            eprintln!("checksum {total:x}");
            println!("{ns}");
        }
        Some("pingpong") => {
            let n = arg(&args, 2) as u32;
            // token: odd = the other thread's turn, even = main's turn
            let token = Arc::new(AtomicU32::new(0));
            let main = thread::current();
            let t2 = token.clone();
            let other = thread::spawn(move || {
                for i in 0..n {
                    while t2.load(Ordering::Acquire) != 2 * i + 1 {
                        thread::park();
                    }
                    t2.store(2 * i + 2, Ordering::Release);
                    main.unpark();
                }
            });
            let start = Instant::now();
            for i in 0..n {
                token.store(2 * i + 1, Ordering::Release);
                other.thread().unpark();
                while token.load(Ordering::Acquire) != 2 * i + 2 {
                    thread::park();
                }
            }
            let ns = start.elapsed().as_nanos();
            other.join().unwrap();
            println!("{ns}");
        }
        Some("idle") => {
            let n = arg(&args, 2);
            let parked = Arc::new(AtomicU32::new(0));
            for _ in 0..n {
                let parked = parked.clone();
                thread::spawn(move || {
                    parked.fetch_add(1, Ordering::SeqCst);
                    loop {
                        thread::park();
                    }
                });
            }
            while parked.load(Ordering::SeqCst) < n as u32 {
                thread::yield_now();
            }
            println!("ready");
            loop {
                thread::park();
            }
        }
        _ => {
            eprintln!("usage: bench-guest spawn N | checksum T MIB ROUNDS | pingpong N | idle N");
            std::process::exit(2);
        }
    }
}
