//! Fan-out: a guest starts N threads that each count themselves in and block, main waits
//! until all N are there, then calls `proc_exit(0)`, which ends the run and every thread.
//! Measured for threads blocked in an atomic wait, sleeping in `poll_oneoff` and spinning,
//! at N = 100, 1 000 and 10 000, against native pthreads doing the same
//! (`benches/fanout.c`, built with `cc`) and, with `WASMTIME46`, the Wasmtime 46 CLI.
//!
//!   cargo bench --bench fanout     (median of WT_BENCH_REPS runs, default 3;
//!                                   WT_BENCH_ONLY=wait|sleep|busy: one kind;
//!                                   WT_FANOUT_N=100,1000: other sizes; by default
//!                                   spinning threads only up to 1 000)
//!
//! Columns: *live*, from the start to the N-th thread running (wasithreads: `Run::start` to
//! the N-th thread-start callback; native: measured by the program from `main`); *end*,
//! from then to the run's `wait` returning with every thread joined (main noticing,
//! `proc_exit`, stopping and joining the N threads; native: the process's remaining wall
//! time, the kernel ending its threads in `exit`); *total*, wasithreads: `Run::start` to
//! `wait` returning, in this process (engine and module reused, as a host would), with no
//! idle pool thread left from earlier runs (*cold*: every OS thread is made, as in a
//! fresh process); native and Wasmtime 46: the process's wall time minus that of the same
//! process with N = 0 (process start-up and, for Wasmtime, compilation); *warm*: the
//! total of a second run right after the first, whose pool threads take its jobs. No run
//! starts while threads of an earlier one are still leaving. Per thread: what N live
//! threads add to RSS, address space (VmSize) and mappings, over a run (or process) with
//! one thread.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasithreads::{Engine, EngineConfig, ExitKind, Module, Run, RunConfig};

fn reps() -> usize {
    std::env::var("WT_BENCH_REPS").ok().and_then(|s| s.parse().ok()).unwrap_or(3).max(1)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn fmt_ms(s: f64) -> String {
    if s.is_nan() {
        "—".into()
    } else if s < 0.1 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{:.0} ms", s * 1e3)
    }
}

/// How the spawned threads block: the spawn argument of the guest, the native mode.
#[derive(Clone, Copy)]
enum Kind {
    Wait,
    Sleep,
    Busy,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Wait => "wait",
            Kind::Sleep => "sleep",
            Kind::Busy => "busy",
        }
    }
    fn what(self) -> &'static str {
        match self {
            Kind::Wait => "`memory.atomic.wait32` forever",
            Kind::Sleep => "`poll_oneoff` sleep of an hour",
            Kind::Busy => "spinning (after main's go)",
        }
    }
    fn mode(self) -> i32 {
        match self {
            Kind::Wait => 1,
            Kind::Sleep => 2,
            Kind::Busy => 0,
        }
    }
}

/// The guest: `_start` spawns `n` threads with argument `mode`, waits until all have
/// counted themselves in (word 0), sets "go" (word 4) and wakes its waiters, then exits.
/// A spawned thread counts itself in and wakes main, then: mode 1 waits forever on word 8,
/// mode 2 sleeps an hour in `poll_oneoff` (a subscription of its own at 64 + 64 * (tid %
/// 1000)), mode 0 waits for "go" and spins. A failed spawn exits with 9.
fn guest(n: u32, mode: i32) -> String {
    format!(
        r#"(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "env" "memory" (memory 2 2 shared))
  (export "memory" (memory 0))
  (func (export "wasi_thread_start") (param $tid i32) (param $mode i32)
    (local $sub i32)
    (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))
    (drop (memory.atomic.notify (i32.const 0) (i32.const 1)))
    (if (i32.eq (local.get $mode) (i32.const 1)) (then
      (loop $w (drop (memory.atomic.wait32 (i32.const 8) (i32.const 0) (i64.const -1))) (br $w))))
    (if (i32.eq (local.get $mode) (i32.const 2)) (then
      (local.set $sub (i32.add (i32.const 64) (i32.mul (i32.const 64) (i32.rem_u (local.get $tid) (i32.const 1000)))))
      (i64.store (local.get $sub) (i64.const 0))
      (i32.store8 offset=8 (local.get $sub) (i32.const 0))
      (i32.store offset=16 (local.get $sub) (i32.const 1))
      (i64.store offset=24 (local.get $sub) (i64.const 3600000000000))
      (i64.store offset=32 (local.get $sub) (i64.const 0))
      (i32.store16 offset=40 (local.get $sub) (i32.const 0))
      (loop $s
        (drop (call $poll (local.get $sub) (i32.add (i32.const 65536) (local.get $sub)) (i32.const 1) (i32.const 12)))
        (br $s))))
    (block $go (loop $l
      (br_if $go (i32.atomic.load (i32.const 4)))
      (drop (memory.atomic.wait32 (i32.const 4) (i32.const 0) (i64.const -1)))
      (br $l)))
    (loop $spin (br $spin)))
  (func (export "_start")
    (local $i i32) (local $seen i32)
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get $i) (i32.const {n})))
      (if (i32.lt_s (call $spawn (i32.const {mode})) (i32.const 0)) (then (call $proc_exit (i32.const 9))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (block $all (loop $l
      (local.set $seen (i32.atomic.load (i32.const 0)))
      (br_if $all (i32.ge_u (local.get $seen) (i32.const {n})))
      (drop (memory.atomic.wait32 (i32.const 0) (local.get $seen) (i64.const -1)))
      (br $l)))
    (i32.atomic.store (i32.const 4) (i32.const 1))
    (drop (memory.atomic.notify (i32.const 4) (i32.const -1)))
    (call $proc_exit (i32.const 0))))"#
    )
}

/// (live, end, total) seconds of one run of `module` under wasithreads.
fn ours(module: &Module, n: u32) -> (f64, f64, f64) {
    let started = Arc::new(AtomicUsize::new(0));
    let live_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let mut c = RunConfig::default();
    c.limits.max_threads = n;
    let (count, stamp) = (started.clone(), live_at.clone());
    c.hooks.on_thread_start = Some(Arc::new(move |tid| {
        if tid != 0 && count.fetch_add(1, Ordering::SeqCst) + 1 == n as usize {
            *stamp.lock().unwrap() = Some(Instant::now());
        }
    }));
    let t0 = Instant::now();
    let exit = Run::start(module, &c).unwrap().wait();
    let end = Instant::now();
    assert_eq!((exit.kind, exit.code, exit.tid), (ExitKind::Code, 0, 0), "{exit:?}");
    let live = live_at.lock().unwrap().unwrap_or(t0);
    ((live - t0).as_secs_f64(), (end - live).as_secs_f64(), (end - t0).as_secs_f64())
}

/// The number of threads of this process.
fn threads() -> u64 {
    status_kib("Threads:")
}

/// What /proc/self/status says `key` is (KiB), and the number of mappings.
fn status_kib(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(key)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn mappings() -> u64 {
    std::fs::read_to_string("/proc/self/maps").unwrap().lines().count() as u64
}

/// Waits until this process is back to `idle_threads` threads: the pool's idle threads
/// of earlier runs leave after 500 ms. Before a cold run (the pool must make every
/// thread) and before a native run (threads leaving here would slow it down).
fn settle(idle_threads: u64) {
    let give_up = Instant::now() + Duration::from_secs(20);
    while threads() > idle_threads && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// (RSS KiB, VmSize KiB, mappings) of this process while `n` threads of `module` live.
fn our_memory(module: &Module, n: u32, idle_threads: u64) -> (u64, u64, u64) {
    settle(idle_threads);
    let during: Arc<Mutex<Option<(u64, u64, u64)>>> = Arc::default();
    let started = Arc::new(AtomicUsize::new(0));
    let mut c = RunConfig::default();
    c.limits.max_threads = n;
    let sample = during.clone();
    c.hooks.on_thread_start = Some(Arc::new(move |tid| {
        if tid != 0 && started.fetch_add(1, Ordering::SeqCst) + 1 == n as usize {
            *sample.lock().unwrap() = Some((status_kib("VmRSS:"), status_kib("VmSize:"), mappings()));
        }
    }));
    let exit = Run::start(module, &c).unwrap().wait();
    assert_eq!(exit.code, 0, "{exit:?}");
    let sampled = *during.lock().unwrap();
    sampled.expect("sampled")
}

/// Wall seconds of a process, and what it printed.
fn process(cmd: &mut Command) -> (f64, String) {
    let t = Instant::now();
    let out = cmd.output().unwrap();
    let took = t.elapsed().as_secs_f64();
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    (took, String::from_utf8(out.stdout).unwrap())
}

fn build_native(dir: &Path) -> PathBuf {
    let exe = dir.join("fanout-native");
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/fanout.c");
    let status = Command::new("cc")
        .args(["-O2", "-std=c11", "-pthread", src, "-o"])
        .arg(&exe)
        .status()
        .expect("running cc for benches/fanout.c");
    assert!(status.success(), "building benches/fanout.c failed");
    exe
}

struct Figures {
    live: f64,
    end: f64,
    total: f64,
    /// Total of a run right after another (wasithreads: the pool's threads are there).
    warm: f64,
    per_thread: (f64, f64, f64),
}

fn main() {
    let reps = reps();
    let only = std::env::var("WT_BENCH_ONLY").ok();
    let sizes: Vec<u32> = std::env::var("WT_FANOUT_N")
        .ok()
        .map(|s| s.split(',').map(|n| n.trim().parse().expect("WT_FANOUT_N: numbers")).collect())
        .unwrap_or_else(|| vec![100, 1000, 10_000]);
    let dir = std::env::temp_dir().join(format!("wt-fanout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let native = build_native(&dir);
    let peer = std::env::var_os("WASMTIME46").map(PathBuf::from);
    let engine = Engine::new(&EngineConfig::default()).unwrap();
    let idle_threads = threads();
    let kinds = [Kind::Wait, Kind::Sleep, Kind::Busy];
    println!(
        "\n| threads block in | N | wasithreads live / end / total | native live / end / total | ratio (total) | wasithreads warm, ratio | Wasmtime 46 total | per thread: RSS, address space, mappings (wasithreads; native) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for kind in kinds.into_iter().filter(|k| only.as_deref().is_none_or(|o| o == k.name())) {
        settle(idle_threads);
        let empty_native =
            median((0..reps).map(|_| process(Command::new(&native).args([kind.name(), "0"])).0).collect());
        let peer_module = |n: u32| {
            let path = dir.join(format!("{}-{n}.wat", kind.name()));
            std::fs::write(&path, guest(n, kind.mode())).unwrap();
            path
        };
        let peer_run = |path: &Path| {
            let mut cmd = Command::new(peer.as_ref().unwrap());
            cmd.args(["run", "-W", "threads=y,shared-memory=y", "-S", "threads=y"]).arg(path);
            // A run the CLI does not survive (it aborts past ~3 500 threads) has no figure.
            let t = Instant::now();
            let out = cmd.output().unwrap();
            out.status.success().then(|| t.elapsed().as_secs_f64())
        };
        let empty_peer = peer.as_ref().map(|_| {
            let path = peer_module(0);
            median((0..reps).map(|_| peer_run(&path).expect("wasmtime 46 runs the empty guest")).collect())
        });
        for &n in &sizes {
            // Ending 10 000 spinning threads on a small machine takes minutes (each must
            // be scheduled to reach its interruption point) and starves every other
            // process meanwhile: only when asked for by WT_FANOUT_N.
            if matches!(kind, Kind::Busy) && n > 1000 && std::env::var_os("WT_FANOUT_N").is_none() {
                continue;
            }
            eprintln!("{} x{n} ...", kind.name());
            let module = Module::new(&engine, guest(n, kind.mode()).as_bytes()).unwrap();
            let (mut live, mut end, mut total) = (vec![], vec![], vec![]);
            let (mut nlive, mut ntotal, mut ptotal) = (vec![], vec![], vec![]);
            let peer_path = peer.as_ref().map(|_| peer_module(n));
            let mut warm = vec![];
            for _ in 0..reps {
                settle(idle_threads);
                let (l, e, t) = ours(&module, n);
                live.push(l);
                end.push(e);
                total.push(t);
                // Again at once: the pool's threads of the first run take the jobs.
                warm.push(ours(&module, n).2);
                settle(idle_threads);
                let (wall, out) = process(Command::new(&native).args([kind.name(), &n.to_string()]));
                nlive.push(out.trim().parse::<f64>().unwrap() / 1e9);
                ntotal.push(wall - empty_native);
                if let Some(p) = &peer_path {
                    ptotal.push(peer_run(p).map_or(f64::NAN, |w| w - empty_peer.unwrap()));
                }
            }
            let one = Module::new(&engine, guest(1, kind.mode()).as_bytes()).unwrap();
            let (m1, mn) = (our_memory(&one, 1, idle_threads), our_memory(&module, n, idle_threads));
            let per = |a: u64, b: u64| (a as f64 - b as f64) / f64::from(n - 1);
            let ours = Figures {
                live: median(live),
                end: median(end),
                total: median(total),
                warm: median(warm),
                per_thread: (per(mn.0, m1.0), per(mn.1, m1.1), per(mn.2, m1.2)),
            };
            let (_, out) = process(Command::new(&native).args([kind.name(), &n.to_string(), "mem"]));
            let (_, base) = process(Command::new(&native).args([kind.name(), "1", "mem"]));
            let field = |s: &str, i: usize| s.split_whitespace().nth(i).unwrap().parse::<f64>().unwrap();
            let per = |i| (field(&out, i) - field(&base, i)) / f64::from(n - 1);
            let nat_total = median(ntotal);
            let nat_live = median(nlive);
            let nat = Figures {
                live: nat_live,
                end: nat_total - nat_live,
                total: nat_total,
                warm: f64::NAN,
                per_thread: (per(1), per(2), per(3)),
            };
            let peer_total = (!ptotal.is_empty()).then(|| {
                // Any failed run means the CLI does not survive this size.
                if ptotal.iter().any(|t| t.is_nan()) {
                    f64::NAN
                } else {
                    median(ptotal)
                }
            });
            print_row(kind, n, &ours, &nat, peer_total);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn print_row(kind: Kind, n: u32, ours: &Figures, nat: &Figures, peer: Option<f64>) {
    let (r, v, m) = ours.per_thread;
    let (nr, nv, nm) = nat.per_thread;
    println!(
        "| {} | {n} | {} / {} / {} | {} / {} / {} | {:.2}× | {}, {:.2}× | {} | {r:.1} KiB, {:.2} MiB, {m:.1}; {nr:.1} KiB, {:.2} MiB, {nm:.1} |",
        kind.what(),
        fmt_ms(ours.live),
        fmt_ms(ours.end),
        fmt_ms(ours.total),
        fmt_ms(nat.live),
        fmt_ms(nat.end),
        fmt_ms(nat.total),
        ours.total / nat.total,
        fmt_ms(ours.warm),
        ours.warm / nat.total,
        peer.map_or("—".into(), |p| if p.is_nan() { "fails".into() } else { fmt_ms(p) }),
        v / 1024.0,
        nv / 1024.0,
    );
}
