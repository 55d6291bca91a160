//! Requests per second of a threaded echo server (tests/guests/c-server/server.c: a
//! pthread per connection) with 1, 2 and 16 concurrent clients: the same module under
//! wasithreads (in-process, a preopened listener) and under the Wasmtime 46 CLI
//! (`-S tcplisten`, `-S threads`) when WASMTIME46 points at it, and the same C built
//! natively, measured in the same run, interleaved. A request is 64 bytes sent and the
//! same 64 bytes read back on a connection the client keeps (ping-pong, TCP_NODELAY), so
//! the figure is the round-trip rate through the guest's `recv`/`send` (and `poll` in
//! the poll mode) and the host's thread wake-ups.
//!
//!   cargo bench --bench sock            (WT_BENCH_REPS=3 runs each, median;
//!                                        WT_BENCH_SECS=2 seconds per run;
//!                                        WT_BENCH_MODES=poll,echo the server modes)
//!
//! Modes: `poll` waits in `poll()` before each accept and recv on non-blocking
//! descriptors; `echo` blocks in `accept` and `recv`. Wasmtime 46 gives the guest its
//! listener non-blocking, so in `echo` mode its accept loop spins on EAGAIN (a core
//! busy for nothing); the `poll` mode is the fair comparison.
//! Needs PyPI's `ziglang` (clang + wasm-ld) and `cc`. Clients and servers use 127.0.0.1.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasithreads::io::Output;
use wasithreads::{Engine, EngineConfig, Module, PreopenSocket, Run, RunConfig};

/// A server under test, started for one measurement.
enum Server {
    Ours(Run),
    Process(Child),
}

impl Server {
    fn stop(self) {
        match self {
            Server::Ours(run) => {
                run.cancel();
                let _ = run.wait();
            }
            Server::Process(mut child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Round trips per second of `clients` connections for `secs` seconds, after a warm-up.
fn measure(addr: SocketAddr, clients: usize, secs: f64) -> f64 {
    let go = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let (go, stop, count) = (go.clone(), stop.clone(), count.clone());
            std::thread::spawn(move || {
                let mut s = connect(addr);
                let msg = [c as u8; 64];
                let mut back = [0u8; 64];
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    s.write_all(&msg).unwrap();
                    s.read_exact(&mut back).unwrap();
                    assert_eq!(back, msg);
                    if go.load(Ordering::Relaxed) {
                        n += 1;
                    }
                }
                count.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    go.store(true, Ordering::Relaxed);
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    let elapsed = t.elapsed().as_secs_f64();
    for h in handles {
        h.join().unwrap();
    }
    count.load(Ordering::Relaxed) as f64 / elapsed
}

/// Connects, retrying for up to 30 s while a server process starts.
fn connect(addr: SocketAddr) -> TcpStream {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        match TcpStream::connect(addr) {
            Ok(s) => {
                s.set_nodelay(true).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                return s;
            }
            Err(e) if Instant::now() < until => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("connecting to {addr}: {e}"),
        }
    }
}

/// Runs `cmd` with `listener` at its fd 3.
fn spawn_with_fd3(mut cmd: Command, listener: &TcpListener) -> Child {
    common::pass_as_fd3(&mut cmd, listener.as_raw_fd());
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let reps: usize = std::env::var("WT_BENCH_REPS").ok().and_then(|s| s.parse().ok()).unwrap_or(3).max(1);
    let secs: f64 = std::env::var("WT_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let modes = std::env::var("WT_BENCH_MODES").unwrap_or_else(|_| "poll,echo".into());
    let peer = std::env::var_os("WASMTIME46").map(std::path::PathBuf::from);

    let wasm = common::c_guest::build("tests/guests/c-server/server.c", "server-bench");
    let native = wasm.with_file_name("server-native");
    let root = env!("CARGO_MANIFEST_DIR");
    let status = Command::new("cc")
        .args(["-O2", "-pthread", "-o"])
        .arg(&native)
        .arg(format!("{root}/tests/guests/c-server/server.c"))
        .status()
        .unwrap();
    assert!(status.success(), "cc server.c");
    let engine = Engine::new(&EngineConfig::default()).unwrap();
    let module = Module::new(&engine, &std::fs::read(&wasm).unwrap()).unwrap();

    println!("| mode | clients | wasithreads req/s | Wasmtime 46 req/s | native req/s | ours / 46 | ours / native |");
    println!("|---|---|---|---|---|---|---|");
    for mode in modes.split(',') {
        for clients in [1usize, 2, 16] {
            let (mut ours, mut theirs, mut nat) = (vec![], vec![], vec![]);
            for _ in 0..reps {
                // wasithreads, in-process.
                let listener = PreopenSocket::bind_tcp("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().unwrap();
                let mut config = RunConfig::default();
                config.args = vec!["server".into(), mode.into()];
                config.sockets.push(listener);
                config.stdout = Output::Null;
                let server = Server::Ours(Run::start(&module, &config).unwrap());
                ours.push(measure(addr, clients, secs));
                server.stop();

                // Wasmtime 46: a port picked free just before (its -S tcplisten binds).
                if let Some(cli) = &peer {
                    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
                    let mut cmd = Command::new(cli);
                    cmd.args(["run", "-W", "threads=y,shared-memory=y", "-S", "threads=y"])
                        .arg("-S")
                        .arg(format!("tcplisten=127.0.0.1:{port}"))
                        .arg(&wasm)
                        .arg(mode);
                    let server = Server::Process(cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
                    theirs.push(measure(SocketAddr::from(([127, 0, 0, 1], port)), clients, secs));
                    server.stop();
                }

                // Native, the listener at fd 3.
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().unwrap();
                let mut cmd = Command::new(&native);
                cmd.args([mode, "3"]);
                let server = Server::Process(spawn_with_fd3(cmd, &listener));
                drop(listener);
                nat.push(measure(addr, clients, secs));
                server.stop();
            }
            let (o, n) = (median(ours), median(nat));
            let (t, ratio) = if theirs.is_empty() {
                ("-".to_string(), "-".to_string())
            } else {
                let t = median(theirs);
                (format!("{t:.0}"), format!("{:.2}", o / t))
            };
            println!("| {mode} | {clients} | {o:.0} | {t} | {n:.0} | {ratio} | {:.2} |", o / n);
        }
    }
}
