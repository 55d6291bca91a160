//! The plugin guests (`tests/guests/plugin-c`, `tests/guests/plugin-rust`; built by
//! `common::plugin`): each is a threaded WASI reactor of the shape the plugin tests rely
//! on; and each served as a long-lived [`Instance`] through the Rust API: calls from 8
//! host threads at once with every result checked, the instance's end by a crash, a
//! cancel or the timeout, background threads joined by close. The same through the C API
//! is `tests/c/plugin_real.c`; hand-written WAT plugins are in `plugin.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::common::child::isolated;
use crate::common::plugin::{c_plugin_bytes, rust_plugin_bytes};
use crate::common::*;
use wasithreads::{
    CallMode, ErrorKind, ExitKind, HostFunc, Instance, InstanceEnded, Module, RunConfig, RunExit, Val, ValKind,
};
use wasmparser::{ExternalKind, KnownCustom, Name, Parser, Payload, TypeRef};

/// What a module declares, read from its bytes: function signatures as `(i32, i32) -> (i64)`.
#[derive(Default, Debug)]
struct Declared {
    /// `module::name` -> signature, or `memory shared max=N` for a memory.
    imports: BTreeMap<String, String>,
    /// name -> signature, or `memory` for a memory.
    exports: BTreeMap<String, String>,
    /// The start function's name (from the name section).
    start: Option<String>,
    /// The names the name section gives functions and globals.
    functions: Vec<String>,
    globals: Vec<String>,
}

fn signature(ty: &wasmparser::FuncType) -> String {
    let list = |v: &[wasmparser::ValType]| v.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    format!("({}) -> ({})", list(ty.params()), list(ty.results()))
}

fn declared(bytes: &[u8]) -> Declared {
    let mut d = Declared::default();
    let mut types = Vec::new();
    let mut funcs = Vec::new(); // type index of every function, imports first
    let mut exports = Vec::new();
    let mut start = None;
    let mut functions = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.unwrap() {
            Payload::TypeSection(r) => types.extend(r.into_iter_err_on_gc_types().map(Result::unwrap)),
            Payload::ImportSection(r) => {
                for imp in r.into_imports() {
                    let imp = imp.unwrap();
                    let what = match imp.ty {
                        TypeRef::Func(t) => {
                            funcs.push(t);
                            signature(&types[t as usize])
                        }
                        TypeRef::Memory(m) => {
                            format!("memory{} max={:?}", if m.shared { " shared" } else { "" }, m.maximum)
                        }
                        other => format!("{other:?}"),
                    };
                    d.imports.insert(format!("{}::{}", imp.module, imp.name), what);
                }
            }
            Payload::FunctionSection(r) => funcs.extend(r.into_iter().map(Result::unwrap)),
            Payload::ExportSection(r) => exports.extend(r.into_iter().map(|e| {
                let e = e.unwrap();
                (e.name.to_string(), e.kind, e.index)
            })),
            Payload::StartSection { func, .. } => start = Some(func),
            Payload::CustomSection(c) => {
                if let KnownCustom::Name(names) = c.as_known() {
                    for n in names {
                        let named = |map: wasmparser::NameMap| -> Vec<(u32, String)> {
                            map.into_iter().map(|n| n.map(|n| (n.index, n.name.to_string())).unwrap()).collect()
                        };
                        match n.unwrap() {
                            Name::Function(map) => functions = named(map),
                            Name::Global(map) => d.globals = named(map).into_iter().map(|(_, n)| n).collect(),
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    d.start = start.and_then(|s| functions.iter().find(|(i, _)| *i == s)).map(|(_, n)| n.clone());
    d.functions = functions.into_iter().map(|(_, n)| n).collect();
    for (name, kind, index) in exports {
        let what = match kind {
            ExternalKind::Func => signature(&types[funcs[index as usize] as usize]),
            ExternalKind::Memory => "memory".into(),
            other => format!("{other:?}"),
        };
        d.exports.insert(name, what);
    }
    d
}

/// The exports both plugins have, with the same types (and meaning).
const BOTH_EXPORT: &[(&str, &str)] = &[
    ("memory", "memory"),
    ("_initialize", "() -> ()"),
    ("wasi_thread_start", "(i32, i32) -> ()"),
    ("malloc", "(i32) -> (i32)"),
    ("free", "(i32) -> ()"),
    ("add", "(i32, i32) -> (i32)"),
    ("spin", "(i32) -> (i32)"),
    ("stack_sum", "(i32) -> (i32)"),
    ("tls_counter_bump", "() -> (i32)"),
    ("tls_counter_get", "() -> (i32)"),
    ("parallel_sum", "(i32, i32, i32) -> (i64)"),
    ("crash", "(i32) -> (i32)"),
    ("start_workers", "(i32) -> (i32)"),
    ("stop_workers", "() -> (i32)"),
    ("worker_count", "() -> (i64)"),
    ("print_line", "(i32) -> (i32)"),
];

/// Every export of a plugin: [`BOTH_EXPORT`] and its own, name -> signature.
fn exports(own: &[(&str, &str)]) -> BTreeMap<String, String> {
    BOTH_EXPORT.iter().chain(own).map(|(n, s)| (n.to_string(), s.to_string())).collect()
}

/// What both plugins have as threaded reactors built by wasm-ld against wasi-libc (beside
/// the exports in [`BOTH_EXPORT`], with `_initialize` and no `_start`): a shared memory
/// imported as `env.memory` (with a maximum), `wasi.thread-spawn`, the start function
/// `__wasm_init_memory`, and in the name section the linker's globals (not exported) and
/// the functions that set up a thread (`__pthread_create` is the name wasm-ld gives
/// `pthread_create`, which is only its alias).
fn assert_threaded_reactor(d: &Declared) {
    assert_eq!(d.imports["env::memory"], "memory shared max=Some(16384)", "{d:#?}");
    assert_eq!(d.imports["wasi::thread-spawn"], "(i32) -> (i32)");
    assert_eq!(d.start.as_deref(), Some("__wasm_init_memory"));
    for g in ["__stack_pointer", "__tls_base", "__tls_size", "__tls_align"] {
        assert!(d.globals.iter().any(|n| n == g), "global {g} is named: {:?}", d.globals);
        assert!(!d.exports.contains_key(g), "{g} is not exported");
    }
    for f in ["__wasm_init_tls", "__pthread_create", "wasi_thread_start", "__wasi_thread_start_C", "_initialize"] {
        assert!(d.functions.iter().any(|n| n == f), "function {f} is named");
    }
    assert!(!d.functions.iter().any(|n| n == "pthread_create"));
}

/// The imports of `d` that are neither WASI preview 1, `wasi.thread-spawn`, `env.memory`
/// nor in `allowed`.
fn unexpected_imports<'a>(d: &'a Declared, allowed: &[&str]) -> Vec<&'a str> {
    let expected = |k: &str| {
        k.starts_with("wasi_snapshot_preview1::")
            || ["env::memory", "wasi::thread-spawn"].contains(&k)
            || allowed.contains(&k)
    };
    d.imports.keys().map(String::as_str).filter(|k| !expected(k)).collect()
}

/// The C plugin: a threaded reactor importing three host functions from `env`, with the
/// exports its source's header comment lists.
#[test]
fn c_plugin_is_a_threaded_reactor_with_host_imports() {
    let d = declared(c_plugin_bytes());
    assert_threaded_reactor(&d);
    let host = [
        ("env::host_add", "(i64, i64) -> (i64)"),
        ("env::host_block", "() -> ()"),
        ("env::host_log", "(i32, i32) -> ()"),
    ];
    for (name, sig) in host {
        assert_eq!(d.imports.get(name).map(String::as_str), Some(sig), "{name}");
    }
    assert_eq!(unexpected_imports(&d, &host.map(|(n, _)| n)), [] as [&str; 0]);
    let want = exports(&[
        ("self_id", "() -> (i32)"),
        ("alloc_check", "(i32) -> (i32)"),
        ("mutex_add", "(i32, i32) -> (i32)"),
        ("mutex_counter", "(i32) -> (i32)"),
        ("tsd_set", "(i32) -> (i32)"),
        ("tsd_get", "() -> (i32)"),
        ("cond_pingpong", "(i32) -> (i32)"),
        ("parallel_sum64", "(i32, i32, i32, i32) -> (i32)"),
        ("log_message", "(i32) -> (i32)"),
        ("call_host_add", "(i64, i64) -> (i64)"),
        ("host_add_loop", "(i32) -> (i64)"),
        ("call_host_from_threads", "(i32) -> (i32)"),
        ("block", "() -> (i32)"),
        ("block_in_threads", "(i32) -> (i32)"),
    ]);
    assert_eq!(d.exports, want);
}

/// The Rust plugin: a threaded reactor (not a command whose exports each run the
/// destructors) with no host imports, and the exports its source lists.
#[test]
fn rust_plugin_is_a_threaded_reactor() {
    let d = declared(rust_plugin_bytes());
    assert_threaded_reactor(&d);
    assert_eq!(unexpected_imports(&d, &[]), [] as [&str; 0]);
    assert!(!d.functions.iter().any(|n| n.ends_with(".command_export")), "exports are not wrapped");
    let want = exports(&[
        ("mutex_add", "(i32) -> (i32)"),
        ("mutex_counter", "() -> (i32)"),
        ("spawn_names", "(i32) -> (i32)"),
    ]);
    assert_eq!(d.exports, want);
}

/// `Module` loads the Rust plugin (it imports nothing the library lacks) and keeps its
/// exports callable by name and type after the rewrite.
#[test]
fn module_loads_the_rust_plugin() {
    let m = Module::new(&engine(), rust_plugin_bytes()).unwrap();
    let w = m.wasmtime();
    let signature = |name: &str| {
        let f = w.get_export(name).and_then(|e| e.func().cloned()).unwrap_or_else(|| panic!("no function {name}"));
        let list =
            |v: &mut dyn Iterator<Item = wasmtime::ValType>| v.map(|t| ToString::to_string(&t)).collect::<Vec<_>>();
        format!("({}) -> ({})", list(&mut f.params()).join(", "), list(&mut f.results()).join(", "))
    };
    for (name, sig) in BOTH_EXPORT.iter().filter(|(n, _)| *n != "memory") {
        assert_eq!(signature(name), *sig, "{name}");
    }
    assert!(w.get_export("_start").is_none());
    let memory = w.imports().find(|i| i.name() == "memory").unwrap();
    assert!(memory.ty().memory().is_some_and(wasmtime::MemoryType::is_shared));
}

/// `Module` loads the C plugin (its host imports are resolved per run or instance), and
/// an instance without the host functions it imports is refused, naming the first one.
#[test]
fn an_instance_of_the_c_plugin_needs_its_host_functions() {
    let m = Module::new(&engine(), c_plugin_bytes()).unwrap();
    let err = Instance::new(&m, &RunConfig::default()).err().expect("refused");
    assert_eq!(ErrorKind::of(&err), ErrorKind::Link);
    let msg = format!("{err:#}");
    assert!(msg.contains("unknown import `env::host_"), "{msg}");
}

/// What the C plugin's host functions saw.
#[derive(Default)]
struct Host {
    /// `(caller's tid, text)` of every `env.host_log`.
    log: Mutex<Vec<(i32, String)>>,
    /// `env.host_add` calls.
    adds: AtomicI64,
    /// `env.host_block` calls that have started blocking.
    blocked: AtomicUsize,
}

impl Host {
    /// The tid of the thread that logged `text` (exactly once).
    fn tid_of(&self, text: &str) -> i32 {
        let log = self.log.lock();
        let tids: Vec<i32> = log.iter().filter(|(_, t)| t == text).map(|(tid, _)| *tid).collect();
        assert_eq!(tids.len(), 1, "`{text}` logged once: {tids:?}");
        tids[0]
    }
}

/// A config defining the C plugin's three host functions: `host_log` collects the text
/// with the caller's tid, `host_add` returns a + b, `host_block` blocks in `poll` on the
/// caller's end descriptor until the instance ends.
fn c_config(host: &Arc<Host>) -> RunConfig {
    use ValKind::{I32, I64};
    let mut c = RunConfig::default();
    let h = host.clone();
    c.imports.push(HostFunc::new("env", "host_log", &[I32, I32], &[], move |caller, args, _| {
        let (Val::I32(ptr), Val::I32(len)) = (args[0], args[1]) else { anyhow::bail!("not i32s") };
        let mut text = vec![0; usize::try_from(len)?];
        caller.read(u64::try_from(ptr)?, &mut text)?;
        h.log.lock().push((caller.tid(), String::from_utf8(text)?));
        Ok(())
    }));
    let h = host.clone();
    c.imports.push(HostFunc::new("env", "host_add", &[I64, I64], &[I64], move |_, args, results| {
        let (Val::I64(a), Val::I64(b)) = (args[0], args[1]) else { anyhow::bail!("not i64s") };
        h.adds.fetch_add(1, Ordering::Relaxed);
        results[0] = Val::I64(a.wrapping_add(b));
        Ok(())
    }));
    let h = host.clone();
    c.imports.push(HostFunc::new("env", "host_block", &[], &[], move |caller, _, _| {
        use std::os::fd::AsRawFd;
        let fd = caller.end_fd().ok_or_else(|| anyhow::anyhow!("no end fd"))?.as_raw_fd();
        h.blocked.fetch_add(1, Ordering::SeqCst);
        let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd; the descriptor lives while the instance does.
        while unsafe { libc::poll(&mut p, 1, 10_000) } == 0 {}
        anyhow::ensure!(caller.is_ending(), "woken but not ending");
        anyhow::bail!("the instance is ending")
    }));
    c
}

/// The C plugin's module (loaded once per test binary).
fn c_module() -> Module {
    static M: std::sync::OnceLock<Module> = std::sync::OnceLock::new();
    M.get_or_init(|| Module::new(&engine(), c_plugin_bytes()).unwrap()).clone()
}

/// The Rust plugin's module (loaded once per test binary).
fn rust_module() -> Module {
    static M: std::sync::OnceLock<Module> = std::sync::OnceLock::new();
    M.get_or_init(|| Module::new(&engine(), rust_plugin_bytes()).unwrap()).clone()
}

/// `name(args)` on `inst`, which must return; its results.
fn call(inst: &Instance, name: &str, args: &[Val]) -> Vec<Val> {
    inst.call(name, args).unwrap_or_else(|e| panic!("{name}{args:?}: {e:#}"))
}

/// `name(args)` returning one i32.
fn call_i32(inst: &Instance, name: &str, args: &[Val]) -> i32 {
    match call(inst, name, args)[..] {
        [Val::I32(x)] => x,
        ref other => panic!("{name}: {other:?}"),
    }
}

/// `name(args)` returning one i64.
fn call_i64(inst: &Instance, name: &str, args: &[Val]) -> i64 {
    match call(inst, name, args)[..] {
        [Val::I64(x)] => x,
        ref other => panic!("{name}: {other:?}"),
    }
}

/// The exit a call that failed because the instance ended carries.
fn ended_exit(err: &anyhow::Error) -> RunExit {
    assert_eq!(ErrorKind::of(err), ErrorKind::Ended, "{err:#}");
    InstanceEnded::of(err).expect("the instance's exit").0.clone()
}

/// `stack_sum(n)`'s answer: sum of n * i for i < 256.
fn stack_sum(n: i32) -> i32 {
    (0..256).fold(0i32, |s, i| s.wrapping_add(n.wrapping_mul(i)))
}

/// Rounds each host thread makes in the parallel tests (each round is about ten calls).
const ROUNDS: i32 = 300;
/// Every this many rounds, the exports that start pthreads inside the call.
const SPAWN_EVERY: i32 = 50;
/// u32 elements of each host thread's buffer for `parallel_sum`.
const BUF_LEN: i32 = 4096;

/// What one host thread learned in [`c_caller`]: its guest thread's `pthread_self` and tid.
struct Seat {
    self_id: i32,
    tid: i32,
}

/// One of 8 host threads calling the C plugin: every export, every result checked. All 8
/// get their guest thread before any goes on (so `self_id`s are compared among threads
/// alive together), and stay until all are done.
fn c_caller(inst: &Instance, host: &Host, k: i32, start: &Barrier, ids: &Mutex<Vec<i32>>) -> Seat {
    let me = call_i32(inst, "self_id", &[]);
    assert_eq!(call_i32(inst, "log_message", &[Val::I32(k)]), 0);
    let tid = host.tid_of(&format!("plugin says {k}"));
    assert!(tid > 0, "a call worker, not the main thread: {tid}");
    ids.lock().push(me);
    start.wait();
    let all: BTreeSet<i32> = ids.lock().iter().copied().collect();
    assert_eq!(all.len(), 8, "pthread_self unique among live host threads: {:?}", ids.lock());

    let ptr = call_i32(inst, "malloc", &[Val::I32(BUF_LEN * 4)]);
    assert!(ptr > 0);
    for i in 0..ROUNDS {
        let n = k * 1000 + i;
        assert_eq!(call_i32(inst, "add", &[Val::I32(i), Val::I32(k)]), i + k);
        assert_eq!(call_i32(inst, "stack_sum", &[Val::I32(n)]), stack_sum(n), "never -1");
        assert_eq!(call_i32(inst, "tls_counter_bump", &[]), i + 1, "host thread {k}'s own TLS");
        assert_eq!(call_i32(inst, "self_id", &[]), me, "the same guest thread every call");
        let size = 1 + (n * 37) % 3000;
        assert_eq!(call_i32(inst, "alloc_check", &[Val::I32(size)]), size);
        assert_eq!(call_i32(inst, "mutex_add", &[Val::I32(i % 3), Val::I32(5)]), 0);
        assert_eq!(call_i32(inst, "tsd_set", &[Val::I32(k * 100_000 + i)]), 0);
        assert_eq!(call_i32(inst, "tsd_get", &[]), k * 100_000 + i);
        if i % SPAWN_EVERY == 0 {
            assert_eq!(call_i32(inst, "cond_pingpong", &[Val::I32(20)]), 40);
            let data: Vec<u32> = (0..BUF_LEN as u32).map(|j| j.wrapping_mul(2_654_435_761) ^ (n as u32)).collect();
            let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
            inst.write(ptr as u64, &bytes).unwrap();
            let want: u64 = data.iter().map(|&v| u64::from(v)).sum();
            let threads = 1 + i / SPAWN_EVERY % 4;
            let got = call_i64(inst, "parallel_sum", &[Val::I32(ptr), Val::I32(BUF_LEN), Val::I32(threads)]);
            assert_eq!(got, want as i64, "parallel_sum with {threads} threads");
            assert_eq!(call_i32(inst, "call_host_from_threads", &[Val::I32(4)]), 4);
            let line = format!("plugin line {n}\n");
            assert_eq!(call_i32(inst, "print_line", &[Val::I32(n)]), line.len() as i32);
        }
    }
    call(inst, "free", &[Val::I32(ptr)]);
    Seat { self_id: me, tid }
}

/// The C plugin called from 8 host threads at once, each on a guest thread of its own:
/// stack, `_Thread_local`, `pthread_self`, malloc, the three mutex kinds, thread-specific
/// data, a condition variable with a pthread made inside the call, a parallel sum over a
/// buffer the host wrote (malloc'd by the guest), host functions called from pthreads
/// made inside a call, and stdout from every thread.
#[test]
fn c_plugin_serves_eight_host_threads_in_parallel() {
    let host = Arc::new(Host::default());
    let mut config = c_config(&host);
    let out = Capture::default();
    config.stdout = out.output();
    let inst = Arc::new(Instance::new(&c_module(), &config).unwrap());
    assert_eq!(inst.call_mode(), CallMode::Parallel);
    let start = Arc::new(Barrier::new(8));
    let ids = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..8)
        .map(|k| {
            let (inst, host, start, ids) = (inst.clone(), host.clone(), start.clone(), ids.clone());
            std::thread::spawn(move || c_caller(&inst, &host, k, &start, &ids))
        })
        .collect();
    let seats =
        within(Duration::from_secs(240), move || threads.into_iter().map(|t| t.join().unwrap()).collect::<Vec<Seat>>());
    let workers: BTreeSet<i32> = seats.iter().map(|s| s.tid).collect();
    assert_eq!(workers.len(), 8, "8 guest threads");
    assert_eq!(seats.iter().map(|s| s.self_id).collect::<BTreeSet<_>>().len(), 8);

    // Exact counters: every lock of every kind excluded the others.
    let per_kind = |kind: i32| 8 * 5 * (0..ROUNDS).filter(|i| i % 3 == kind).count() as i32;
    for kind in 0..3 {
        assert_eq!(call_i32(&inst, "mutex_counter", &[Val::I32(kind)]), per_kind(kind), "kind {kind}");
    }
    // Host functions called from pthreads started inside calls: on threads of their own.
    let spawning_calls = 8 * (0..ROUNDS).filter(|i| i % SPAWN_EVERY == 0).count();
    let log = host.log.lock();
    let from_threads: Vec<&(i32, String)> = log.iter().filter(|(_, t)| t.starts_with("thread ")).collect();
    assert_eq!(from_threads.len(), spawning_calls * 4);
    for (tid, text) in &from_threads {
        assert!(*tid > 0 && !workers.contains(tid), "`{text}` from tid {tid}, not a calling thread {workers:?}");
    }
    assert_eq!(host.adds.load(Ordering::Relaxed), spawning_calls as i64 * 4);
    // Every line printed by every thread arrived, whole, once.
    let text = out.text();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    let mut want: Vec<String> = (0..8)
        .flat_map(|k| {
            (0..ROUNDS).filter(|i| i % SPAWN_EVERY == 0).map(move |i| format!("plugin line {}", k * 1000 + i))
        })
        .collect();
    want.sort_unstable();
    assert_eq!(lines, want);
    drop(log);
    assert_eq!(inst.close().kind, ExitKind::Cancelled);
}

/// One host thread: the guest memory through `Instance::memory` and `read`, a buffer
/// from the guest's malloc, host functions from the call's own pthreads (tids other
/// than the caller's), a guest -> host round trip, and a host thread that exited leaving
/// its guest thread (and its thread-locals) to the next.
#[test]
fn c_plugin_memory_host_calls_and_worker_reuse() {
    let host = Arc::new(Host::default());
    let inst = Instance::new(&c_module(), &c_config(&host)).unwrap();
    let (base, size) = inst.memory();
    assert!(!base.is_null() && size > 0);
    let ptr = call_i32(&inst, "malloc", &[Val::I32(64 * 4)]);
    let data: Vec<u32> = (1..=64).collect();
    inst.write(ptr as u64, &data.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    // SAFETY: in bounds of the shared memory, which lives as long as `inst`; no guest
    // thread writes there now.
    let first = unsafe { std::ptr::read_unaligned(base.add(ptr as usize).cast::<u32>()) };
    assert_eq!(first, 1);
    assert_eq!(call_i64(&inst, "parallel_sum", &[Val::I32(ptr), Val::I32(64), Val::I32(8)]), 64 * 65 / 2);
    let mut back = [0u8; 8];
    inst.read(ptr as u64 + 4, &mut back).unwrap();
    assert_eq!(back, [2, 0, 0, 0, 3, 0, 0, 0]);
    call(&inst, "free", &[Val::I32(ptr)]);

    assert_eq!(call_i32(&inst, "log_message", &[Val::I32(7)]), 0);
    let me = host.tid_of("plugin says 7");
    assert_eq!(call_i32(&inst, "call_host_from_threads", &[Val::I32(8)]), 8);
    let tids: BTreeSet<i32> = (0..8).map(|i| host.tid_of(&format!("thread {i}"))).collect();
    assert_eq!(tids.len(), 8, "8 pthreads, 8 tids: {tids:?}");
    assert!(!tids.contains(&me) && !tids.contains(&0), "{tids:?} vs the caller's {me}");
    assert_eq!(call_i64(&inst, "call_host_add", &[Val::I64(40), Val::I64(2)]), 42);
    assert_eq!(call_i64(&inst, "host_add_loop", &[Val::I32(1000)]), 1000 * 1001 / 2);

    // The calling thread's guest thread stays its own; after it exits, the next host
    // thread gets it (a worker pool the size of the most calls at once).
    assert_eq!(call_i32(&inst, "tls_counter_bump", &[]), 1);
    assert_eq!(call_i32(&inst, "tls_counter_bump", &[]), 2);
    let inst = Arc::new(inst);
    let i2 = inst.clone();
    let seen = within(Duration::from_secs(60), move || {
        std::thread::spawn(move || (call_i32(&i2, "tls_counter_bump", &[]), call_i32(&i2, "tls_counter_bump", &[])))
            .join()
            .unwrap()
    });
    assert_eq!(seen, (1, 2), "a new host thread while the first lives: a guest thread of its own");
    let i2 = inst.clone();
    let seen = within(Duration::from_secs(60), move || {
        std::thread::spawn(move || call_i32(&i2, "tls_counter_bump", &[])).join().unwrap()
    });
    assert_eq!(seen, 3, "the exited host thread's guest thread serves the next one");
    assert_eq!(call_i32(&inst, "tls_counter_bump", &[]), 3, "the first host thread kept its own");
    assert_eq!(inst.idle_workers(), 2);
}

/// Calls `add` on `inst` until it fails with the instance's end; returns that error.
fn add_until_ended(inst: &Instance) -> anyhow::Error {
    loop {
        match inst.call("add", &[Val::I32(1), Val::I32(2)]) {
            Ok(r) => assert_eq!(r, [Val::I32(3)]),
            Err(e) => return e,
        }
    }
}

/// A trap in one call (`crash(1)`), in a pthread of a call (`crash(2)`), or a
/// `proc_exit` (`crash(3)`) ends the instance: that call, the calls in flight on other
/// host threads and every later call report the same first exit.
#[test]
fn c_plugin_crash_in_one_call_ends_the_instance_for_every_call() {
    for code in [1, 2, 3] {
        let host = Arc::new(Host::default());
        let inst = Arc::new(Instance::new(&c_module(), &c_config(&host)).unwrap());
        let others: Vec<_> = (0..4)
            .map(|_| {
                let inst = inst.clone();
                std::thread::spawn(move || add_until_ended(&inst))
            })
            .collect();
        assert_eq!(call_i32(&inst, "log_message", &[Val::I32(code)]), 0);
        let me = host.tid_of(&format!("plugin says {code}"));
        let err = inst.call("crash", &[Val::I32(code)]).expect_err("crash ends the instance");
        let exit = ended_exit(&err);
        match code {
            1 | 2 => {
                assert_eq!(exit.kind, ExitKind::Trap, "{exit:?}");
                let msg = exit.message.as_deref().unwrap();
                assert!(msg.contains("wasm backtrace"), "{msg}");
                assert!(msg.contains("unreachable"), "{msg}");
                if code == 1 {
                    assert_eq!(exit.tid, me, "the calling thread trapped");
                    assert!(msg.contains("crash"), "the backtrace names the export: {msg}");
                } else {
                    assert!(exit.tid > 0 && exit.tid != me, "the call's pthread trapped: {} vs {me}", exit.tid);
                    assert!(msg.contains("trap_thread"), "{msg}");
                }
            }
            _ => assert_eq!((exit.kind, exit.code, exit.tid), (ExitKind::Code, 3, me), "{exit:?}"),
        }
        let rest = within(Duration::from_secs(60), move || {
            others.into_iter().map(|t| ended_exit(&t.join().unwrap())).collect::<Vec<_>>()
        });
        assert!(rest.iter().all(|e| *e == exit), "{rest:?} vs {exit:?}");
        for name in ["add", "self_id", "crash"] {
            let args: &[Val] = match name {
                "add" => &[Val::I32(1), Val::I32(1)],
                "crash" => &[Val::I32(0)],
                _ => &[],
            };
            assert_eq!(ended_exit(&inst.call(name, args).unwrap_err()), exit, "{name} after the end");
        }
        let i2 = inst.clone();
        let from_new = within(Duration::from_secs(60), move || {
            std::thread::spawn(move || ended_exit(&i2.call("tls_counter_get", &[]).unwrap_err())).join().unwrap()
        });
        assert_eq!(from_new, exit, "a new host thread's first call");
        assert_eq!(inst.close(), exit);
    }
}

/// Cancel with 8 calls in flight (spinning for hours) and blocking host functions (in
/// the calling thread, and in pthreads of a call) stops them all: each call returns the
/// cancel, well before the (here long) teardown grace would have let the instance give up
/// on them.
#[test]
fn c_plugin_cancel_stops_calls_in_flight_and_blocking_host_functions() {
    let host = Arc::new(Host::default());
    let mut config = c_config(&host);
    config.teardown_grace = Duration::from_secs(60);
    let inst = Arc::new(Instance::new(&c_module(), &config).unwrap());
    let calls = (0..8)
        .map(|_| ("spin", vec![Val::I32(i32::MAX)]))
        .chain([("block", vec![]), ("block_in_threads", vec![Val::I32(3)])]);
    let threads: Vec<_> = calls
        .map(|(name, args)| {
            let inst = inst.clone();
            // A spin that finishes before the cancel goes round again.
            std::thread::spawn(move || loop {
                match inst.call(name, &args) {
                    Ok(_) if name == "spin" => continue,
                    Ok(r) => panic!("{name} returned {r:?}"),
                    Err(e) => return ended_exit(&e),
                }
            })
        })
        .collect();
    eventually("four host_block calls blocking", || host.blocked.load(Ordering::SeqCst) == 4);
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    inst.cancel();
    let exits =
        within(Duration::from_secs(120), move || threads.into_iter().map(|t| t.join().unwrap()).collect::<Vec<_>>());
    let took = t.elapsed();
    for e in &exits {
        assert_eq!(e.kind, ExitKind::Cancelled, "{e:?}");
        assert!(e.unstopped.is_empty(), "{e:?}");
    }
    let exit = inst.close();
    assert_eq!(exit.kind, ExitKind::Cancelled);
    assert!(exit.unstopped.is_empty(), "every thread stopped: {exit:?}");
    assert!(took < Duration::from_secs(20), "stopped by the cancel, not abandoned after the grace: {took:?}");
}

/// The config's timeout ends an instance whose call blocks in a host function (in the
/// calling thread, or in pthreads the call started).
#[test]
fn c_plugin_timeout_stops_blocking_host_functions() {
    for (name, args) in [("block", vec![]), ("block_in_threads", vec![Val::I32(4)])] {
        let host = Arc::new(Host::default());
        let mut config = c_config(&host);
        config.timeout = Some(Duration::from_secs(2));
        let inst = Instance::new(&c_module(), &config).unwrap();
        let err = within(Duration::from_secs(60), move || inst.call(name, &args).expect_err("timed out"));
        assert_eq!(ended_exit(&err).kind, ExitKind::Timeout, "{name}");
        assert!(host.blocked.load(Ordering::SeqCst) >= 1, "{name} blocked");
    }
}

/// The plugin's background pthreads run between calls; close stops and joins them, and
/// no OS thread is left behind.
#[test]
fn c_plugin_background_threads_run_between_calls_and_close_joins_them() {
    if !isolated("c_plugin_background_threads_run_between_calls_and_close_joins_them") {
        return;
    }
    let module = c_module();
    let host = Arc::new(Host::default());
    let config = c_config(&host);
    // Warm up (the engine's lazily made state), then count.
    Instance::new(&module, &config).unwrap().close();
    let (fds0, threads0) = settled();
    {
        let inst = Instance::new(&module, &config).unwrap();
        assert_eq!(call_i32(&inst, "start_workers", &[Val::I32(4)]), 0);
        assert_eq!(call_i32(&inst, "start_workers", &[Val::I32(1)]), -10, "-EBUSY (WASI numbers it 10)");
        let first = call_i64(&inst, "worker_count", &[]);
        std::thread::sleep(Duration::from_millis(200));
        let second = call_i64(&inst, "worker_count", &[]);
        assert!(second > first, "the workers ran between calls: {first} then {second}");
        assert!(os_threads() >= threads0 + 4, "4 background threads");
        let exit = inst.close();
        assert_eq!(exit.kind, ExitKind::Cancelled, "{exit:?}");
        assert!(exit.unstopped.is_empty(), "{exit:?}");
        assert!(ended_exit(&inst.call("worker_count", &[]).unwrap_err()) == exit);
    }
    assert_eq!(settled(), (fds0, threads0), "descriptors and threads back to baseline");
}

/// The Rust plugin from 8 host threads at once: `thread_local!`, a `static Mutex`, stack
/// arrays, and `std::thread::spawn` (named threads, each with its own thread-locals)
/// inside an export; results checked.
#[test]
fn rust_plugin_serves_eight_host_threads_in_parallel() {
    let inst = Arc::new(Instance::new(&rust_module(), &RunConfig::default()).unwrap());
    assert_eq!(inst.call_mode(), CallMode::Parallel);
    let start = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|k| {
            let (inst, start) = (inst.clone(), start.clone());
            std::thread::spawn(move || {
                assert_eq!(call_i32(&inst, "tls_counter_bump", &[]), 1);
                start.wait();
                let ptr = call_i32(&inst, "malloc", &[Val::I32(BUF_LEN * 4)]);
                for i in 0..ROUNDS {
                    let n = k * 1000 + i;
                    assert_eq!(call_i32(&inst, "add", &[Val::I32(i), Val::I32(k)]), i + k);
                    assert_eq!(call_i32(&inst, "stack_sum", &[Val::I32(n)]), stack_sum(n));
                    assert_eq!(call_i32(&inst, "tls_counter_bump", &[]), i + 2);
                    assert_eq!(call_i32(&inst, "mutex_add", &[Val::I32(3)]), 0);
                    if i % SPAWN_EVERY == 0 {
                        assert_eq!(call_i32(&inst, "spawn_names", &[Val::I32(3)]), 3);
                        let data: Vec<u32> = (0..BUF_LEN as u32).map(|j| j ^ ((n as u32) << 8)).collect();
                        inst.write(ptr as u64, &data.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())
                            .unwrap();
                        let want: u64 = data.iter().map(|&v| u64::from(v)).sum();
                        let got = call_i64(&inst, "parallel_sum", &[Val::I32(ptr), Val::I32(BUF_LEN), Val::I32(3)]);
                        assert_eq!(got, want as i64);
                    }
                }
                call(&inst, "free", &[Val::I32(ptr)]);
                assert_eq!(call_i32(&inst, "tls_counter_get", &[]), ROUNDS + 1);
            })
        })
        .collect();
    within(Duration::from_secs(240), move || threads.into_iter().for_each(|t| t.join().unwrap()));
    assert_eq!(call_i32(&inst, "mutex_counter", &[]), 8 * 3 * ROUNDS);
    assert_eq!(call_i32(&inst, "spawn_names", &[Val::I32(8)]), 8);
    let err = inst.call("crash", &[Val::I32(1)]).unwrap_err();
    let exit = ended_exit(&err);
    assert_eq!(exit.kind, ExitKind::Trap);
    assert!(exit.message.as_deref().unwrap().contains("wasm backtrace"), "{exit:?}");
    assert_eq!(inst.close(), exit);
}
