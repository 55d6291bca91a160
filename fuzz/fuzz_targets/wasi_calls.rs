//! Drives WASI preview 1 calls with arbitrary arguments from several guest threads at
//! once, in a preopened directory holding files, a subdirectory, a symlink and a FIFO
//! whose writer stays silent. Two runs of the program go on at once in the process, over
//! the same directory; for some inputs the host's fds 0, 1 and 2 are closed meanwhile and
//! the second run inherits them (closed for the guest too). Each run has a 100 ms
//! timeout; whatever the calls do, each run must end with one result within a bound (no
//! thread left unstopped), the process must survive, no descriptor of the library may
//! land on 0, 1 or 2, and every descriptor the runs opened must be closed afterwards.
#![no_main]

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::arbitrary::{self, Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use wasithreads::io::{Input, Output};
use wasithreads::{Engine, EngineConfig, ExitKind, Module, Preopen, Run, RunConfig};

/// (name, parameter types) of every preview 1 function but `proc_exit` (one thread in
/// eight ends with it instead).
const FUNCS: &[(&str, &str)] = &[
    ("args_get", "ii"),
    ("args_sizes_get", "ii"),
    ("environ_get", "ii"),
    ("environ_sizes_get", "ii"),
    ("clock_res_get", "ii"),
    ("clock_time_get", "iIi"),
    ("fd_advise", "iIIi"),
    ("fd_allocate", "iII"),
    ("fd_close", "i"),
    ("fd_datasync", "i"),
    ("fd_fdstat_get", "ii"),
    ("fd_fdstat_set_flags", "ii"),
    ("fd_fdstat_set_rights", "iII"),
    ("fd_filestat_get", "ii"),
    ("fd_filestat_set_size", "iI"),
    ("fd_filestat_set_times", "iIIi"),
    ("fd_pread", "iiiIi"),
    ("fd_prestat_get", "ii"),
    ("fd_prestat_dir_name", "iii"),
    ("fd_pwrite", "iiiIi"),
    ("fd_read", "iiii"),
    ("fd_readdir", "iiiIi"),
    ("fd_renumber", "ii"),
    ("fd_seek", "iIii"),
    ("fd_sync", "i"),
    ("fd_tell", "ii"),
    ("fd_write", "iiii"),
    ("path_create_directory", "iii"),
    ("path_filestat_get", "iiiii"),
    ("path_filestat_set_times", "iiiiIIi"),
    ("path_link", "iiiiiii"),
    ("path_open", "iiiiiIIii"),
    ("path_readlink", "iiiiii"),
    ("path_remove_directory", "iii"),
    ("path_rename", "iiiiii"),
    ("path_symlink", "iiiii"),
    ("path_unlink_file", "iii"),
    ("poll_oneoff", "iiii"),
    ("proc_raise", "i"),
    ("random_get", "ii"),
    ("sched_yield", ""),
    ("sock_accept", "iii"),
    ("sock_recv", "iiiiii"),
    ("sock_send", "iiiii"),
    ("sock_shutdown", "ii"),
];

/// An argument: mostly small numbers (fds, lengths, flags) and addresses inside the
/// first pages, where the guest keeps names, iovecs and subscriptions; sometimes anything.
#[derive(Arbitrary, Debug)]
enum Arg {
    Small(u8),
    Addr(u16),
    Any(i64),
}

#[derive(Arbitrary, Debug)]
struct Call {
    func: u8,
    args: [Arg; 9],
}

#[derive(Arbitrary, Debug)]
struct Program {
    /// Calls of each of up to four threads (main is thread 0).
    threads: Vec<Vec<Call>>,
    /// Bytes the guest's memory starts with (names, iovecs, subscriptions).
    memory: Vec<u8>,
    exit_thread: u8,
    stdin: Vec<u8>,
    /// Close the host's fds 0, 1 and 2 while the runs go on.
    closed_stdio: bool,
}

fn value(a: &Arg, ty: char) -> String {
    let v: i64 = match a {
        Arg::Small(n) => i64::from(*n % 16),
        Arg::Addr(n) => i64::from(*n),
        Arg::Any(n) => *n,
    };
    if ty == 'I' { format!("(i64.const {v})") } else { format!("(i32.const {})", v as i32) }
}

fn wat(p: &Program) -> String {
    let mut w = String::from("(module\n  (import \"wasi\" \"thread-spawn\" (func $spawn (param i32) (result i32)))\n");
    w.push_str("  (import \"wasi_snapshot_preview1\" \"proc_exit\" (func $proc_exit (param i32)))\n");
    for (name, params) in FUNCS {
        let ps: String = params.chars().map(|c| if c == 'I' { " i64" } else { " i32" }).collect();
        let result = if *name == "sched_yield" || !params.is_empty() { " (result i32)" } else { "" };
        let _ = writeln!(w, "  (import \"wasi_snapshot_preview1\" \"{name}\" (func ${name} (param{ps}){result}))");
    }
    w.push_str("  (import \"env\" \"memory\" (memory 2 2 shared))\n  (export \"memory\" (memory 0))\n");
    let bytes: String = p.memory.iter().take(4096).map(|b| format!("\\{b:02x}")).collect();
    let _ = writeln!(w, "  (data (i32.const 0) \"{bytes}\")");
    let threads = p.threads.len().clamp(1, 4);
    for (t, calls) in p.threads.iter().take(threads).enumerate() {
        let _ = writeln!(w, "  (func $t{t}");
        for c in calls.iter().take(32) {
            let (name, params) = FUNCS[c.func as usize % FUNCS.len()];
            let args: String = params.chars().zip(&c.args).map(|(ty, a)| value(a, ty)).collect::<Vec<_>>().join(" ");
            let _ = writeln!(w, "    (drop (call ${name} {args}))");
        }
        if usize::from(p.exit_thread) % 8 == t {
            w.push_str("    (call $proc_exit (i32.const 3))\n");
        }
        w.push_str("  )\n");
    }
    w.push_str("  (func (export \"wasi_thread_start\") (param $tid i32) (param $arg i32)\n");
    for t in 1..threads {
        let _ = writeln!(w, "    (if (i32.eq (local.get $arg) (i32.const {t})) (then (call $t{t})))");
    }
    w.push_str("  )\n  (func (export \"_start\")\n");
    for t in 1..threads {
        let _ = writeln!(w, "    (drop (call $spawn (i32.const {t})))");
    }
    w.push_str("    (call $t0))\n)\n");
    w
}

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new(&EngineConfig { max_wasm_stack: 256 << 10, ..Default::default() }).unwrap())
}

/// A fresh directory for one input: files, a subdirectory, a symlink, a FIFO.
fn fixture() -> (PathBuf, std::fs::File) {
    let dir = std::env::temp_dir().join(format!("wasithreads-fuzz-wasi-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("a"), b"hello").unwrap();
    std::fs::write(dir.join("sub/b"), vec![1u8; 70000]).unwrap();
    std::os::unix::fs::symlink("a", dir.join("link")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.join("out")).unwrap();
    let fifo = std::ffi::CString::new(dir.join("fifo").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) };
    // Keep the FIFO's writer open and silent (a reader of our own lets the open succeed).
    let keep = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join("fifo"))
        .unwrap();
    (dir, keep)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only reads the descriptor table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// The host's fds 0, 1 and 2 closed until dropped (copies kept at 10 and above).
struct ClosedStdio([i32; 3]);

impl ClosedStdio {
    fn new() -> ClosedStdio {
        // SAFETY: duplicating and closing the process's own standard descriptors; they
        // come back in `drop`.
        ClosedStdio([0, 1, 2].map(|fd| unsafe {
            let saved = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10);
            assert!(saved >= 10);
            libc::close(fd);
            saved
        }))
    }
}

impl Drop for ClosedStdio {
    fn drop(&mut self) {
        for (fd, saved) in self.0.iter().enumerate() {
            // SAFETY: the copies made in `new`, put back where they were.
            unsafe {
                libc::dup2(*saved, fd as i32);
                libc::close(*saved);
            }
        }
    }
}

/// What one run came to: its exit and how long it took.
fn finish(run: Run, start: Instant) -> (wasithreads::RunExit, Duration) {
    let exit = run.wait();
    let took = start.elapsed();
    drop(run);
    (exit, took)
}

fuzz_target!(|data: &[u8]| {
    let Ok(program) = Program::arbitrary(&mut Unstructured::new(data)) else { return };
    let Ok(module) = Module::new(engine(), wat(&program).as_bytes()) else { return };
    let (dir, keep) = fixture();
    let before = open_fds();
    let mut c = RunConfig::default();
    c.timeout = Some(Duration::from_millis(100));
    c.limits.max_threads = 4;
    c.limits.max_fds = 32;
    c.stdout = Output::Null;
    c.stderr = Output::Null;
    c.stdin = Input::Bytes(program.stdin.clone().into());
    c.preopens.push(Preopen { host: dir.clone(), guest: "/".into(), read_only: false });
    // The second run inherits the host's stdio when it is closed, and discards otherwise
    // (its output would go to the fuzzer's own).
    let mut second = c.clone();
    if program.closed_stdio {
        second.stdin = Input::Inherit;
        second.stdout = Output::Inherit;
        second.stderr = Output::Inherit;
    }
    let closed = program.closed_stdio.then(ClosedStdio::new);
    let start = Instant::now();
    let first = Run::start_background(&module, &c);
    let other = Run::start_background(&module, &second);
    let results: Vec<_> = [first, other].into_iter().flatten().map(|run| finish(run, start)).collect();
    // None of the library's descriptors took the closed numbers.
    let stdio_stayed_closed = closed.as_ref().map(|_| [0, 1, 2].map(|fd| !is_open(fd)));
    drop(closed);
    for (exit, took) in &results {
        assert!(matches!(exit.kind, ExitKind::Code | ExitKind::Trap | ExitKind::Timeout), "{exit:?}");
        assert!(exit.unstopped.is_empty(), "threads did not stop: {exit:?}");
        assert!(*took < Duration::from_secs(3), "the run took {took:?}");
    }
    if let Some(closed) = stdio_stayed_closed {
        assert_eq!(closed, [true; 3], "a descriptor of the library landed on 0, 1 or 2");
    }
    assert_eq!(open_fds(), before, "descriptors leaked by the runs");
    drop(keep);
    let _ = std::fs::remove_dir_all(&dir);
});
