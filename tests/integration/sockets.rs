//! Preopened listening sockets and threaded guest servers: a C server (clang from
//! PyPI's `ziglang`, threaded wasi-libc, a pthread per connection) and a Rust `std::net`
//! server (a `std::thread` per connection) serve 64 concurrent clients over loopback,
//! every byte checked, then are stopped with connections open and threads blocked in
//! `accept`, `recv` and `send`; what a guest sees at its socket descriptors; the fd cap
//! on accepted connections; `wt-run --tcplisten` and `--listenfd`. Everything binds
//! 127.0.0.1 with port 0 and reads the port back.

use std::io::{BufRead, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasithreads::{ExitKind, Module, Preopen, PreopenSocket, Run, RunConfig, RunExit};

use crate::common::{self, c_guest, within, Capture};

/// A config for `argv` with one listener on 127.0.0.1 (a free port) and stdout captured;
/// returns the config, the address and the capture.
fn server_config(argv: &[&str]) -> (RunConfig, SocketAddr, Capture) {
    let listener = PreopenSocket::bind_tcp("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let out = Capture::default();
    let mut c = RunConfig::default();
    c.args = argv.iter().copied().map(String::from).collect();
    c.sockets.push(listener);
    c.stdout = out.output();
    (c, addr, out)
}

/// Waits (at most 60 s: a liveness check) until the guest printed `line`.
fn wait_for(out: &Capture, line: &str) {
    let until = Instant::now() + Duration::from_secs(60);
    while !out.text().lines().any(|l| l == line) {
        assert!(Instant::now() < until, "the guest never printed {line:?}: {:?}", out.text());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A client socket that cannot hang the test: every read and write gives up after 60 s.
fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// `clients` connections at once, each sending 20 messages of varied sizes (1 byte to
/// 8 KiB, its own bytes) and checking that every byte comes back; then each shuts down
/// its side and sees the server close. Returns the bytes echoed.
fn echo_clients(addr: SocketAddr, clients: u64) -> u64 {
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            std::thread::spawn(move || {
                let mut s = connect(addr);
                let mut total = 0u64;
                for round in 0..20u64 {
                    let len = 1 + ((c * 131 + round * 977) % 8192) as usize;
                    let msg: Vec<u8> = (0..len).map(|i| (i as u64 * 7 + c * 13 + round) as u8).collect();
                    s.write_all(&msg).unwrap();
                    let mut back = vec![0u8; len];
                    s.read_exact(&mut back).unwrap();
                    assert!(back == msg, "client {c} round {round}: the echo differs");
                    total += len as u64;
                }
                s.shutdown(Shutdown::Write).unwrap();
                let mut rest = Vec::new();
                s.read_to_end(&mut rest).unwrap();
                assert!(rest.is_empty(), "client {c}: {} bytes after the echo", rest.len());
                total
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).sum()
}

/// Connections that keep server threads blocked: `idle` connections whose thread waits
/// in `recv` (after one echoed byte proves it runs), and one whose thread waits in
/// `send` (its client writes and never reads, until both socket buffers are full).
struct Blocked {
    idle: Vec<TcpStream>,
    flood: std::thread::JoinHandle<()>,
}

fn block_server_threads(addr: SocketAddr, idle: usize) -> Blocked {
    let idle = (0..idle)
        .map(|_| {
            let mut s = connect(addr);
            s.write_all(b"x").unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).unwrap();
            s
        })
        .collect();
    let sent = Arc::new(AtomicU64::new(0));
    let mut s = connect(addr);
    // Short writes, so that a stalled writer shows.
    s.set_write_timeout(Some(Duration::from_millis(200))).unwrap();
    let counter = sent.clone();
    let flood = std::thread::spawn(move || {
        let chunk = vec![7u8; 65536];
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            match s.write(&chunk) {
                Ok(n) => {
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                // The server closed the connection: the run ended.
                Err(_) => return,
            }
        }
        panic!("the flooded connection was never closed");
    });
    // Stalled: nothing more goes out, so the server's echo send is blocked.
    let mut last = u64::MAX;
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = sent.load(Ordering::Relaxed);
        if now == last && now > 0 {
            break;
        }
        last = now;
    }
    Blocked { idle, flood }
}

/// Cancels `run` and returns its exit and how long the cancel took.
fn cancel(run: Run) -> (RunExit, Duration) {
    let t = Instant::now();
    run.cancel();
    let exit = run.wait();
    (exit, t.elapsed())
}

/// Every idle client sees its connection closed (EOF or reset), not a timeout.
fn assert_closed(idle: Vec<TcpStream>) {
    for mut s in idle {
        let mut b = [0u8; 16];
        match s.read(&mut b) {
            Ok(0) => {}
            Ok(n) => panic!("{n} bytes after the run ended"),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        }
    }
}

/// Serves 64 clients, then stops with a thread in `accept`, threads in `recv` and one in
/// `send`: every thread stops, the peers see the close, the host's listener stays open.
fn serve_then_stop(module: Module, argv: &'static [&'static str]) {
    within(Duration::from_secs(300), move || {
        let (config, addr, out) = server_config(argv);
        let run = Run::start(&module, &config).unwrap();
        wait_for(&out, "listening");
        assert_eq!(
            echo_clients(addr, 64),
            (0..64u64).map(|c| (0..20u64).map(|r| 1 + (c * 131 + r * 977) % 8192).sum::<u64>()).sum()
        );
        let blocked = block_server_threads(addr, 4);
        let (exit, took) = cancel(run);
        assert_eq!(exit.kind, ExitKind::Cancelled, "{exit:?}");
        assert!(exit.unstopped.is_empty(), "threads not stopped: {:?}", exit.unstopped);
        eprintln!("{argv:?}: stopped with accept, 4 recv and 1 send blocked in {took:?}");
        assert_closed(blocked.idle);
        blocked.flood.join().unwrap();
        // The listener is the host's (the config's): still open, still listening.
        drop(TcpStream::connect(addr).unwrap());
        drop(config);
    });
}

#[test]
fn c_server_serves_64_clients_and_stops_with_connections_open() {
    let module = Module::new(&common::engine(), c_guest::server()).unwrap();
    serve_then_stop(module, &["server", "echo"]);
}

/// The same server waiting in `poll()` before each accept and recv, on non-blocking
/// descriptors (`poll_oneoff` fd subscriptions, `fd_fdstat_set_flags`).
#[test]
fn c_server_with_poll_serves_64_clients_and_stops_with_connections_open() {
    let module = Module::new(&common::engine(), c_guest::server()).unwrap();
    serve_then_stop(module, &["server", "poll"]);
}

/// A Rust `std::net` server (`TcpListener::from_raw_fd(3)`, `incoming`, a `std::thread`
/// per connection reading and writing with `fd_read`/`fd_write`).
#[test]
fn rust_std_net_server_serves_64_clients_and_stops_with_connections_open() {
    let module = Module::new(&common::engine(), common::rust_guest()).unwrap();
    serve_then_stop(module, &["rust-threads", "serve"]);
}

/// A guest blocked in `accept` with no client ends at its timeout.
#[test]
fn a_guest_waiting_in_accept_ends_at_its_timeout() {
    let module = Module::new(&common::engine(), c_guest::server()).unwrap();
    let (mut config, _addr, out) = server_config(&["server", "echo"]);
    config.timeout = Some(Duration::from_millis(300));
    let (exit, _) = common::run_watched(&module, &config);
    assert_eq!(exit.kind, ExitKind::Timeout, "{exit:?}");
    assert!(exit.unstopped.is_empty());
    assert_eq!(out.text(), "listening\n");
}

/// Sockets come after stdio and before the directories, in the order given; each is a
/// blocking (for the guest) listening `socket_stream`.
#[test]
fn sockets_are_fds_3_and_up_before_the_directories() {
    let module = Module::new(&common::engine(), c_guest::server()).unwrap();
    let (mut config, _addr, out) = server_config(&["server", "probe", "4"]);
    config.sockets.push(PreopenSocket::bind_tcp("127.0.0.1:0").unwrap());
    config.preopens.push(Preopen { host: std::env::temp_dir(), guest: "/tmp".into(), read_only: true });
    let (exit, _) = common::run_watched(&module, &config);
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 0), "{exit:?}");
    assert_eq!(
        out.text(),
        "fd 3: socket nonblock=0 accept=EAGAIN\n\
         fd 4: socket nonblock=0 accept=EAGAIN\n\
         fd 5: dir nonblock=0\n\
         fd 6: Bad file descriptor\n"
    );
}

/// Accepted connections count against the descriptor limit: once the table is full,
/// `accept` fails with EMFILE at once (as Linux's does, waiting for no connection; the
/// server says so and ends), and the run's end closes the connections it accepted.
#[test]
fn accepting_past_the_descriptor_limit_is_emfile() {
    let module = Module::new(&common::engine(), c_guest::server()).unwrap();
    within(Duration::from_secs(120), move || {
        let (mut config, addr, out) = server_config(&["server", "echo"]);
        // stdio, the listener and two connections.
        config.limits.max_fds = 6;
        let run = Run::start(&module, &config).unwrap();
        let held: Vec<_> = (0..2).map(|_| connect(addr)).collect();
        let exit = run.wait();
        assert_eq!((exit.kind, exit.code), (ExitKind::Code, 3), "{exit:?}");
        assert_eq!(out.text(), "listening\naccept: EMFILE\n");
        assert_closed(held);
    });
}

/// wt-run, built from examples-c/wt-run.c against this build.
fn wt_run() -> std::path::PathBuf {
    common::c::compile_with("cc", "-std=c11", "examples-c/wt-run.c", "wt-run", &[])
}

/// Echo clients against a wt-run child, then the child is killed (it serves forever).
fn check_and_kill(mut child: std::process::Child, addr: SocketAddr) {
    let echoed = std::panic::catch_unwind(|| echo_clients(addr, 16));
    let _ = child.kill();
    let _ = child.wait();
    assert!(echoed.unwrap() > 0);
}

/// `wt-run --tcplisten 127.0.0.1:0` (and Wasmtime's `-S tcplisten=`) runs the C server;
/// port 0 is reported on stderr.
#[test]
fn wt_run_tcplisten_serves() {
    let server = c_guest::build("tests/guests/c-server/server.c", "server-wt-run");
    let wt_run = wt_run();
    for spelling in [&["--tcplisten", "127.0.0.1:0"][..], &["-S", "tcplisten=127.0.0.1:0,threads=y"][..]] {
        let mut child = std::process::Command::new(&wt_run)
            .args(spelling)
            .arg("--no-cache")
            .arg(&server)
            .arg("echo")
            .env("LD_LIBRARY_PATH", common::c::lib_dir())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let port: u16 = line.trim().rsplit(' ').next().unwrap().parse().unwrap_or_else(|_| panic!("{line:?}"));
        check_and_kill(child, SocketAddr::from(([127, 0, 0, 1], port)));
    }
}

/// `wt-run --listenfd` takes the listener a socket-activating parent passes at fd 3
/// (`LISTEN_FDS=1`, `LISTEN_PID` = wt-run's pid) and passes `LISTEN_FDS` on to the guest.
#[test]
fn wt_run_listenfd_serves_the_inherited_listener() {
    let server = c_guest::build("tests/guests/c-server/server.c", "server-listenfd");
    let wt_run = wt_run();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fd = listener.as_raw_fd();
    let mut cmd = std::process::Command::new("sh");
    // `exec` keeps the shell's pid, so `$$` is wt-run's.
    cmd.arg("-c")
        .arg("LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" --listenfd --no-cache \"$1\" echo")
        .arg(&wt_run)
        .arg(&server)
        .env("LD_LIBRARY_PATH", common::c::lib_dir())
        .stdout(std::process::Stdio::null());
    common::pass_as_fd3(&mut cmd, fd);
    let child = cmd.spawn().unwrap();
    drop(listener);
    check_and_kill(child, addr);
}
