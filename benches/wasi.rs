//! WASI call throughput, 1 thread against 2 (each thread does the same number of calls:
//! speed-up = 2 x T1 / T2, ideal 2 on a 2-core machine), beside the same loop done
//! natively (the machine's own speed-up at that moment), and 1 thread against the
//! Wasmtime 46 CLI when WASMTIME46 points at it. The guest times its own loop with
//! clock_time_get (so the peer's process start is not counted) and prints nanoseconds.
//!
//!   cargo bench --bench wasi            (WT_BENCH_REPS=5 runs each, median;
//!                                        WT_BENCH_ONLY=text runs the kinds whose name has it;
//!                                        WT_BENCH_THREADS=1 or 2 runs only that many, for
//!                                        profiling: the other columns then repeat it)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use wasithreads::io::Output;
use wasithreads::{Engine, EngineConfig, Module, Preopen, Run, RunConfig};

/// `_start` spawns THREADS threads (THREADS - 1 for 1: main does the work itself then),
/// each running WORK ITERS times; main waits for all, prints the elapsed ns.
const GUEST: &str = r#"(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_pread" (func $fd_pread (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_get" (func $fstat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_readdir" (func $readdir (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "env" "memory" (memory 64 64 shared))
  (export "memory" (memory 0))
  ;; 0: threads done; 8: shared fd; 64..: names "data", "out0", "out1", "f00".."f99", "dir".
  (data (i32.const 64) "data")
  (data (i32.const 72) "out0out1")
  (data (i32.const 80) "dir")
  (func $now (result i64)
    (drop (call $clock (i32.const 1) (i64.const 0) (i32.const 16)))
    (i64.load (i32.const 16)))
  ;; Opens `len` bytes of name at `name` under the preopen (fd 3); returns the fd.
  (func $open_at (param $name i32) (param $len i32) (param $oflags i32) (param $rights i64) (param $slot i32) (result i32)
    (if (call $open (i32.const 3) (i32.const 0) (local.get $name) (local.get $len) (local.get $oflags)
                    (local.get $rights) (local.get $rights) (i32.const 0) (local.get $slot))
      (then (call $exit (i32.const 90))))
    (i32.load (local.get $slot)))
  ;; Per-thread scratch at 65536 * (1 + $t).
  (func $work (param $t i32)
    (local $i i32) (local $buf i32) (local $fd i32) (local $cookie i64) (local $n i32)
    (local.set $buf (i32.mul (i32.add (local.get $t) (i32.const 1)) (i32.const 262144)))
    WORK_SETUP
    (loop $l
      WORK_BODY
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const ITERS)))))
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (call $work (local.get $arg))
    (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))
    (drop (memory.atomic.notify (i32.const 0) (i32.const 1))))
  ;; Prints $v in decimal and a newline.
  (func $print (param $v i64)
    (local $p i32)
    (local.set $p (i32.const 63))
    (i32.store8 (local.get $p) (i32.const 10))
    (loop $d
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p) (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $v) (i64.const 10)))))
      (local.set $v (i64.div_u (local.get $v) (i64.const 10)))
      (br_if $d (i64.ne (local.get $v) (i64.const 0))))
    (i32.store (i32.const 24) (local.get $p))
    (i32.store (i32.const 28) (i32.sub (i32.const 64) (local.get $p)))
    (drop (call $fd_write (i32.const 1) (i32.const 24) (i32.const 1) (i32.const 32))))
  (func (export "_start")
    (local $t0 i64) (local $i i32) (local $seen i32)
    MAIN_SETUP
    (local.set $t0 (call $now))
    (if (i32.eq (i32.const THREADS) (i32.const 1))
      (then (call $work (i32.const 0)))
      (else
        (loop $s
          (drop (call $spawn (local.get $i)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $s (i32.lt_u (local.get $i) (i32.const THREADS))))
        (block $done (loop $w
          (local.set $seen (i32.atomic.load (i32.const 0)))
          (br_if $done (i32.ge_u (local.get $seen) (i32.const THREADS)))
          (drop (memory.atomic.wait32 (i32.const 0) (local.get $seen) (i64.const -1)))
          (br $w)))))
    (call $print (i64.sub (call $now) (local.get $t0)))))"#;

struct Kind {
    name: &'static str,
    iters: u32,
    main_setup: &'static str,
    setup: &'static str,
    body: &'static str,
    /// The same work done natively by thread `t` (the machine's own ceiling for the
    /// speed-up): `native(dir, t, iters)`.
    native: fn(&Path, u32, u32),
}

// ---- the native versions of each kind's loop ----

fn native_clock(_: &Path, _: u32, iters: u32) {
    for _ in 0..iters {
        std::hint::black_box(rustix::time::clock_gettime(rustix::time::ClockId::Monotonic));
    }
}

fn native_random(_: &Path, _: u32, iters: u32) {
    use rand::Rng as _;
    let mut buf = [0u8; 8];
    for _ in 0..iters {
        rand::rng().fill_bytes(&mut buf);
        std::hint::black_box(&buf);
    }
}

fn native_pread(dir: &Path, _: u32, iters: u32) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(dir.join("data")).unwrap();
    let mut buf = vec![0u8; 65536];
    for _ in 0..iters {
        f.read_at(&mut buf, 0).unwrap();
    }
}

fn native_write(dir: &Path, t: u32, iters: u32) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join(format!("native-out{t}"))).unwrap();
    let buf = vec![0u8; 4096];
    for _ in 0..iters {
        f.write_all(&buf).unwrap();
    }
}

fn native_small_files(dir: &Path, t: u32, iters: u32) {
    use rustix::fs::{Mode, OFlags};
    let d = rustix::fs::open(dir, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()).unwrap();
    let mut buf = vec![0u8; 4096];
    for i in 0..iters {
        let n = (i + 50 * t) % 100;
        let name = format!("f{n:02}");
        let fd =
            rustix::fs::openat(&d, name.as_str(), OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY, Mode::empty())
                .unwrap();
        std::hint::black_box(rustix::fs::fstat(&fd).unwrap());
        rustix::io::read(&fd, &mut buf).unwrap();
    }
}

fn native_readdir(dir: &Path, _: u32, iters: u32) {
    for _ in 0..iters {
        std::hint::black_box(std::fs::read_dir(dir.join("dir")).unwrap().count());
    }
}

/// Wall and CPU time of `threads` native threads each running the kind's loop.
fn native(kind: &Kind, dir: &Path, threads: u32) -> (f64, f64) {
    let (t0, cpu) = (std::time::Instant::now(), cpu_seconds());
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || (kind.native)(dir, t, kind.iters));
        }
    });
    (t0.elapsed().as_secs_f64(), cpu_seconds() - cpu)
}

/// Per-thread setup of the small-file kinds: the read iovec, and "f" in `$buf[0]`.
const SMALL_FILES_SETUP: &str = "(i32.store (i32.add (local.get $buf) (i32.const 131072)) (i32.add (local.get $buf) (i32.const 1024))) (i32.store (i32.add (local.get $buf) (i32.const 131076)) (i32.const 4096)) (i32.store8 (local.get $buf) (i32.const 102))";

/// One round of the small-file kinds: the name "fNN" built in `$buf[0..3]` from
/// `($i + 50 * thread) % 100` (threads open different files, as a parallel tree walk
/// does), then open, fstat, read, close.
const SMALL_FILES_BODY: &str = "(local.set $n (i32.rem_u (i32.add (local.get $i) (i32.mul (local.get $t) (i32.const 50))) (i32.const 100))) (i32.store8 (i32.add (local.get $buf) (i32.const 1)) (i32.add (i32.const 48) (i32.div_u (local.get $n) (i32.const 10)))) (i32.store8 (i32.add (local.get $buf) (i32.const 2)) (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10)))) (local.set $fd (call $open_at (local.get $buf) (i32.const 3) (i32.const 0) (i64.const 2097154) (i32.add (local.get $buf) (i32.const 16)))) (drop (call $fstat (local.get $fd) (i32.add (local.get $buf) (i32.const 512)))) (drop (call $fd_read (local.get $fd) (i32.add (local.get $buf) (i32.const 131072)) (i32.const 1) (i32.add (local.get $buf) (i32.const 131080)))) (drop (call $fd_close (local.get $fd)))";

fn kinds() -> Vec<Kind> {
    vec![
        Kind { name: "clock_time_get", iters: 1_000_000, main_setup: "", setup: "", body: "(drop (call $clock (i32.const 1) (i64.const 0) (local.get $buf)))", native: native_clock },
        Kind { name: "random_get 8 B", iters: 1_000_000, main_setup: "", setup: "", body: "(drop (call $random (local.get $buf) (i32.const 8)))", native: native_random },
        Kind {
            name: "fd_pread 64 KiB, one shared fd",
            // 20 000, not the 4000 of the issue: since reads go straight into guest memory
            // 4000 take 8 ms, and starting the second thread (~1 ms) would weigh in.
            iters: 20000,
            // rights: fd_read (2) | fd_seek (4)
            main_setup: "(drop (call $open_at (i32.const 64) (i32.const 4) (i32.const 0) (i64.const 6) (i32.const 8)))",
            setup: "(local.set $fd (i32.load (i32.const 8))) (i32.store (i32.add (local.get $buf) (i32.const 131072)) (local.get $buf)) (i32.store (i32.add (local.get $buf) (i32.const 131076)) (i32.const 65536))",
            body: "(drop (call $fd_pread (local.get $fd) (i32.add (local.get $buf) (i32.const 131072)) (i32.const 1) (i64.const 0) (i32.add (local.get $buf) (i32.const 131080))))", native: native_pread,
        },
        Kind {
            name: "fd_write 4 KiB, one file per thread",
            iters: 20000,
            main_setup: "",
            // oflags creat|trunc (1|8), rights fd_write (64)
            setup: "(local.set $fd (call $open_at (i32.add (i32.const 72) (i32.mul (local.get $t) (i32.const 4))) (i32.const 4) (i32.const 9) (i64.const 64) (local.get $buf))) (i32.store (i32.add (local.get $buf) (i32.const 131072)) (local.get $buf)) (i32.store (i32.add (local.get $buf) (i32.const 131076)) (i32.const 4096))",
            body: "(drop (call $fd_write (local.get $fd) (i32.add (local.get $buf) (i32.const 131072)) (i32.const 1) (i32.add (local.get $buf) (i32.const 131080))))", native: native_write,
        },
        Kind {
            name: "open + fstat + read + close, small files",
            iters: 20000,
            main_setup: "",
            setup: SMALL_FILES_SETUP,
            body: SMALL_FILES_BODY,
            native: native_small_files,
        },
        Kind {
            name: "the same, with 200 directories open",
            iters: 20000,
            // "dir" opened 200 times (oflags directory, rights fd_readdir) before the clock
            // starts: a table that is far from empty, as in a tree walk.
            main_setup: "(loop $o (drop (call $open_at (i32.const 80) (i32.const 3) (i32.const 2) (i64.const 16384) (i32.const 12))) (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $o (i32.lt_u (local.get $i) (i32.const 200)))) (local.set $i (i32.const 0))",
            setup: SMALL_FILES_SETUP,
            body: SMALL_FILES_BODY,
            native: native_small_files,
        },
        Kind {
            name: "fd_readdir, 10 000 entries, 4 KiB buffer",
            iters: 20,
            main_setup: "",
            // oflags directory (2), rights fd_readdir (16384)
            setup: "",
            body: "(local.set $fd (call $open_at (i32.const 80) (i32.const 3) (i32.const 2) (i64.const 16384) (i32.add (local.get $buf) (i32.const 16)))) (local.set $cookie (i64.const 0)) (block $end (loop $more (drop (call $readdir (local.get $fd) (i32.add (local.get $buf) (i32.const 1024)) (i32.const 4096) (local.get $cookie) (i32.add (local.get $buf) (i32.const 32)))) (local.set $n (i32.load (i32.add (local.get $buf) (i32.const 32)))) (br_if $end (i32.lt_u (local.get $n) (i32.const 4096))) (local.set $cookie (call $last_cookie (i32.add (local.get $buf) (i32.const 1024)) (local.get $n))) (br $more))) (drop (call $fd_close (local.get $fd)))", native: native_readdir,
        },
    ]
}

/// A guest helper for fd_readdir: the d_next of the last whole entry in a buffer.
const LAST_COOKIE: &str = r#"
  (func $last_cookie (param $p i32) (param $n i32) (result i64)
    (local $end i32) (local $next i64)
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (block $out (loop $l
      (br_if $out (i32.gt_u (i32.add (local.get $p) (i32.const 24)) (local.get $end)))
      (br_if $out (i32.gt_u (i32.add (i32.add (local.get $p) (i32.const 24)) (i32.load (i32.add (local.get $p) (i32.const 16)))) (local.get $end)))
      (local.set $next (i64.load (local.get $p)))
      (local.set $p (i32.add (i32.add (local.get $p) (i32.const 24)) (i32.load (i32.add (local.get $p) (i32.const 16)))))
      (br $l)))
    (local.get $next))"#;

fn guest(kind: &Kind, threads: u32) -> String {
    GUEST
        .replace("WORK_SETUP", kind.setup)
        .replace("WORK_BODY", kind.body)
        .replace("MAIN_SETUP", kind.main_setup)
        .replace("ITERS", &kind.iters.to_string())
        .replace("THREADS", &threads.to_string())
        .replace("  (func $now", &format!("{LAST_COOKIE}\n  (func $now"))
}

/// The directory the guests see as fd 3: "data" (64 KiB), f00..f99 (1 KiB), dir/ with
/// 10 000 entries.
fn fixture() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wasithreads-wasi-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("dir")).unwrap();
    std::fs::write(dir.join("data"), vec![7u8; 65536]).unwrap();
    for i in 0..100 {
        std::fs::write(dir.join(format!("f{i:02}")), vec![1u8; 1024]).unwrap();
    }
    for i in 0..10_000 {
        std::fs::write(dir.join("dir").join(format!("entry-{i:05}")), b"").unwrap();
    }
    dir
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// CPU time this process has used so far (all threads, user and system), in seconds.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid rusage to fill.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// One run of `wat`: the guest's own time of its loop, and the CPU time the whole run
/// took (start to end; a little more than the loop).
fn ours(engine: &Engine, wat: &str, dir: &Path) -> (f64, f64) {
    let module = Module::new(engine, wat.as_bytes()).unwrap();
    let out = Arc::new(Mutex::new(Vec::new()));
    let o = out.clone();
    let mut c = RunConfig::default();
    c.stdout = Output::Callback(Arc::new(move |_, d| o.lock().unwrap().extend_from_slice(d)));
    c.preopens.push(Preopen { host: dir.to_path_buf(), guest: "/".into(), read_only: false });
    let cpu = cpu_seconds();
    let exit = Run::start(&module, &c).unwrap().wait();
    let cpu = cpu_seconds() - cpu;
    assert_eq!(exit.code, 0, "{exit:?}");
    let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
    (text.trim().parse::<f64>().unwrap_or_else(|_| panic!("guest printed {text:?}")) / 1e9, cpu)
}

fn peer(cli: &Path, wat: &str, dir: &Path) -> f64 {
    let file = dir.join("guest.wat");
    std::fs::write(&file, wat).unwrap();
    let out = Command::new(cli)
        .args(["run", "-W", "threads=y,shared-memory=y", "-S", "threads=y", "--dir"])
        .arg(format!("{}::/", dir.display()))
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "wasmtime 46: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse::<f64>().unwrap() / 1e9
}

fn main() {
    let reps: usize = std::env::var("WT_BENCH_REPS").ok().and_then(|s| s.parse().ok()).unwrap_or(5).max(1);
    let peer_cli = std::env::var_os("WASMTIME46").map(PathBuf::from);
    let engine = Engine::new(&EngineConfig::default()).unwrap();
    let dir = fixture();
    // The CPU column is CPU time per call with 2 threads over that with 1 (ideal 1.00):
    // above 1 means the threads slow each other down (contention); near 1 with a low
    // speed-up means the cores were busy with something else (a loaded machine).
    // The native column is the same loop as host code (std/rustix), 2 threads vs 1,
    // measured alongside: the most the machine (cores, kernel) gives at that moment.
    println!("| calls (per thread) | 1 thread | 2 threads | speed-up (ideal 2) | CPU per call, 2 vs 1 thread | native: speed-up, CPU per call | Wasmtime 46, 1 thread | ours / Wasmtime 46 |");
    println!("|---|---|---|---|---|---|---|---|");
    let only = std::env::var("WT_BENCH_ONLY").unwrap_or_default();
    for kind in kinds().into_iter().filter(|k| k.name.contains(only.as_str())) {
        let (one, two) = (guest(&kind, 1), guest(&kind, 2));
        let (mut t1, mut t2, mut c1, mut c2) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut n1, mut n2, mut nc1, mut nc2) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let one_run = |wat: &str, t: &mut Vec<f64>, c: &mut Vec<f64>| {
            let (time, cpu) = ours(&engine, wat, &dir);
            t.push(time);
            c.push(cpu);
        };
        let mut tp = Vec::new();
        let only_threads = std::env::var("WT_BENCH_THREADS").unwrap_or_default();
        for _ in 0..reps {
            match only_threads.as_str() {
                "1" => one_run(&one, &mut t1, &mut c1),
                "2" => one_run(&two, &mut t2, &mut c2),
                _ => {
                    one_run(&one, &mut t1, &mut c1);
                    one_run(&two, &mut t2, &mut c2);
                }
            }
            for (threads, wall, cpu) in [(1, &mut n1, &mut nc1), (2, &mut n2, &mut nc2)] {
                let (w, c) = native(&kind, &dir, threads);
                wall.push(w);
                cpu.push(c);
            }
            if let Some(cli) = &peer_cli {
                tp.push(peer(cli, &one, &dir));
            }
        }
        let (t1, t2, c1, c2) = match (t1.is_empty(), t2.is_empty()) {
            (true, _) => (median(t2.clone()), median(t2), median(c2.clone()), median(c2)),
            (_, true) => (median(t1.clone()), median(t1), median(c1.clone()), median(c1)),
            _ => (median(t1), median(t2), median(c1), median(c2)),
        };
        let peer_cell = if tp.is_empty() {
            ("-".to_string(), "-".to_string())
        } else {
            let p = median(tp);
            (format!("{:.1} ms", p * 1e3), format!("{:.2}x", t1 / p))
        };
        let native_cell = format!("{:.2}x, {:.2}", 2.0 * median(n1) / median(n2), median(nc2) / (2.0 * median(nc1)));
        println!(
            "| {} x{} | {:.1} ms | {:.1} ms | {:.2}x | {:.2} | {} | {} | {} |",
            kind.name,
            kind.iters,
            t1 * 1e3,
            t2 * 1e3,
            2.0 * t1 / t2,
            c2 / (2.0 * c1),
            native_cell,
            peer_cell.0,
            peer_cell.1
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
