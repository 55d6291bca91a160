//! A std::thread guest for the wasithreads test suite. The first argument picks a scenario.

use std::fs::File;
use std::io::Write;
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        // Four threads print ten lines each; main prints a total after joining them.
        Some("print") => {
            let handles: Vec<_> = (0..4)
                .map(|t| {
                    thread::spawn(move || {
                        for i in 0..10 {
                            println!("thread {t} line {i}");
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
            println!("done");
        }
        // Main opens a file; eight threads write through the same descriptor.
        Some("shared-fd") => {
            let path = args.get(2).expect("path");
            let file = Arc::new(Mutex::new(File::create(path).unwrap()));
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let file = file.clone();
                    thread::spawn(move || {
                        for i in 0..25 {
                            writeln!(file.lock().unwrap(), "t{t} {i}").unwrap();
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
        }
        // A thread calls exit(42) while main is blocked in join on a thread that never ends.
        Some("exit-while-join") => {
            let forever = thread::spawn(|| loop {
                thread::sleep(Duration::from_secs(3600));
            });
            thread::spawn(|| {
                thread::sleep(Duration::from_millis(20));
                std::process::exit(42);
            });
            forever.join().unwrap();
            println!("unreachable: join returned");
        }
        // Channel + mutex arithmetic: exit code 0 when the sums agree.
        Some("sum") => {
            let (tx, rx) = mpsc::channel();
            let total = Arc::new(Mutex::new(0u64));
            let handles: Vec<_> = (0..16u64)
                .map(|t| {
                    let (tx, total) = (tx.clone(), total.clone());
                    thread::spawn(move || {
                        let part: u64 = (t * 1000..(t + 1) * 1000).sum();
                        *total.lock().unwrap() += part;
                        tx.send(part).unwrap();
                    })
                })
                .collect();
            drop(tx);
            let via_channel: u64 = rx.iter().sum();
            for h in handles {
                h.join().unwrap();
            }
            let expected: u64 = (0..16_000).sum();
            let ok = via_channel == expected && *total.lock().unwrap() == expected;
            std::process::exit(if ok { 0 } else { 1 });
        }
        // ROUNDS rounds of 4 threads spawned and joined: under a thread limit of 4, every
        // spawn must succeed (a joined thread no longer counts). Exit 0 when all ran.
        Some("rounds") => {
            let rounds: u64 = args[2].parse().unwrap();
            let ran = Arc::new(Mutex::new(0u64));
            for _ in 0..rounds {
                let handles: Vec<_> = (0..4)
                    .map(|_| {
                        let ran = ran.clone();
                        thread::spawn(move || *ran.lock().unwrap() += 1)
                    })
                    .collect();
                for h in handles {
                    h.join().unwrap();
                }
            }
            std::process::exit(if *ran.lock().unwrap() == rounds * 4 { 0 } else { 1 });
        }
        // A thread panics: with panic=abort this is a trap in that thread.
        Some("panic-in-thread") => {
            let h = thread::spawn(|| panic!("boom in a thread"));
            let _ = h.join();
            thread::sleep(Duration::from_secs(3600));
        }
        // Copies stdin to stdout.
        Some("echo") => {
            std::io::copy(&mut std::io::stdin().lock(), &mut std::io::stdout().lock()).unwrap();
        }
        // Prints the environment, sorted, one KEY=VALUE a line.
        Some("env") => {
            let mut vars: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
            vars.sort();
            for v in vars {
                println!("{v}");
            }
        }
        // Tries file-system operations given as arguments; prints "ok OP" or "err OP".
        Some("fs") => {
            for op in &args[2..] {
                let (kind, path) = op.split_once(':').expect("OP:PATH");
                let r = match kind {
                    "read" => std::fs::read_to_string(path).map(drop),
                    "write" => std::fs::write(path, b"x"),
                    "mkdir" => std::fs::create_dir(path),
                    "remove" => std::fs::remove_file(path),
                    _ => panic!("unknown op {kind}"),
                };
                println!("{} {op}", if r.is_ok() { "ok" } else { "err" });
            }
        }
        // A std::net echo server on the preopened listener at fd 3: every connection gets
        // its own thread, which echoes what it reads until the peer shuts down.
        Some("serve") => {
            use std::io::Read;
            use std::os::wasi::io::FromRawFd;
            // SAFETY: the run gives the guest a listening socket at fd 3, owned by nothing else here.
            let listener = unsafe { std::net::TcpListener::from_raw_fd(3) };
            println!("listening");
            for conn in listener.incoming() {
                let mut conn = conn.expect("accept");
                thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    loop {
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if conn.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = conn.shutdown(std::net::Shutdown::Write);
                });
            }
        }
        _ => {
            eprintln!(
                "usage: rust-threads print|shared-fd PATH|exit-while-join|sum|panic-in-thread|echo|env|fs OP:PATH...|serve"
            );
            std::process::exit(2);
        }
    }
}
