//! Baselines for plugins (long-lived instances, host functions, calls from host threads):
//! what Wasmtime 48 itself costs for the same work on a plain `Store`, measured in the same
//! run as anything set against it.
//!
//!   cargo bench --bench plugin       (WT_BENCH_REPS=N repetitions, default 7, each figure
//!                                     their median; WT_BENCH_ONLY=text: only the cases
//!                                     whose name contains it)
//!
//! The guest is the C plugin (`tests/guests/plugin-c`, built on demand by
//! `tests/common/plugin.rs`), compiled by a plain Wasmtime engine (threads and shared
//! memory on, otherwise Wasmtime's defaults) and instantiated over one `SharedMemory`, its
//! imports stubbed: `env.host_add` is a host function (`Linker::func_new`, or `func_wrap`
//! where the case says so), the other `env` functions do nothing, WASI and
//! `wasi.thread-spawn` trap (no case calls them). `_initialize` runs once, on the first
//! instance.
//!
//! The `wasithreads ...` cases do the same work through wasithreads' own API on one
//! long-lived [`wasithreads::Instance`] of the same plugin (default engine and config, the
//! host functions as [`wasithreads::HostFunc`]s), each call from a host thread on a guest
//! thread of its own (`CallMode::Parallel`), and are set against their baseline.
//!
//! A case is a function `fn(&Plain) -> Figure` listed in `CASES`: add one there and its
//! figure is printed beside the others; `ratio_to` names the case it is compared with.
//! After the table, a last figure: resident memory over 100 000 short-lived host threads
//! each making one call (WT_BENCH_ONLY=rss: only that).

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use wasmtime::{
    Config, Engine, Func, FuncType, Instance, Linker, Module, SharedMemory, Store, TypedFunc, Val, ValType,
};

fn reps() -> usize {
    std::env::var("WT_BENCH_REPS").ok().and_then(|s| s.parse().ok()).unwrap_or(7).max(1)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// How `env.host_add` is defined.
#[derive(Clone, Copy, PartialEq)]
enum Host {
    /// `Linker::func_new`: untyped, `&[Val]` in and out (what a C API host function is).
    FuncNew,
    /// `Linker::func_wrap`: a typed closure.
    FuncWrap,
}

/// The C plugin on plain Wasmtime: the compiled module, its shared memory, a linker with
/// the stub imports, and the first instance (on which `_initialize` ran).
struct Plain {
    engine: Engine,
    module: Module,
    linker: Linker<()>,
    main: std::sync::Mutex<(Store<()>, Instance)>,
}

impl Plain {
    fn new(host: Host) -> Plain {
        let mut config = Config::new();
        config.wasm_threads(true).shared_memory(true);
        let engine = Engine::new(&config).unwrap();
        let module = Module::new(&engine, common::plugin::c_plugin_bytes()).unwrap();
        let memory_ty = module.imports().find_map(|i| i.ty().memory().cloned()).unwrap();
        let memory = SharedMemory::new(&engine, memory_ty).unwrap();
        let mut linker = Linker::new(&engine);
        linker.define(&mut Store::new(&engine, ()), "env", "memory", memory).unwrap();
        match host {
            Host::FuncNew => {
                let ty = FuncType::new(&engine, [ValType::I64, ValType::I64], [ValType::I64]);
                linker
                    .func_new("env", "host_add", ty, |_, args, results| {
                        results[0] = Val::I64(args[0].unwrap_i64().wrapping_add(args[1].unwrap_i64()));
                        Ok(())
                    })
                    .unwrap();
            }
            Host::FuncWrap => {
                linker.func_wrap("env", "host_add", |a: i64, b: i64| a.wrapping_add(b)).unwrap();
            }
        }
        linker.func_wrap("env", "host_log", |_: i32, _: i32| {}).unwrap();
        linker.func_wrap("env", "host_block", || {}).unwrap();
        linker.define_unknown_imports_as_traps(&module).unwrap();
        let mut store = Store::new(&engine, ());
        let instance = linker.instantiate(&mut store, &module).unwrap();
        instance.get_typed_func::<(), ()>(&mut store, "_initialize").unwrap().call(&mut store, ()).unwrap();
        Plain { engine, module, linker, main: std::sync::Mutex::new((store, instance)) }
    }

    /// A new `Store` and instance over the same shared memory (what a host thread needs
    /// to call in on plain Wasmtime). Only for exports that use no stack or TLS: this
    /// instance's `__stack_pointer` is the main thread's and its `__tls_base` is 0.
    fn instance(&self) -> (Store<()>, Instance) {
        let mut store = Store::new(&self.engine, ());
        let instance = self.linker.instantiate(&mut store, &self.module).unwrap();
        (store, instance)
    }

    /// `f` with the first instance's store and a typed export of it.
    fn with_typed<P: wasmtime::WasmParams, R: wasmtime::WasmResults, T>(
        &self,
        name: &str,
        f: impl FnOnce(&mut Store<()>, TypedFunc<P, R>) -> T,
    ) -> T {
        let mut main = self.main.lock().unwrap();
        let (store, instance) = &mut *main;
        let func = instance.get_typed_func::<P, R>(&mut *store, name).unwrap();
        f(store, func)
    }
}

/// One case's figure: seconds per operation, or a plain number (a ratio).
enum Figure {
    PerOp(f64),
    Number(f64),
}

/// Seconds per operation of `iters` runs of `op`.
fn per_op(iters: u64, mut op: impl FnMut(u64)) -> Figure {
    let t = Instant::now();
    for i in 0..iters {
        op(i);
    }
    Figure::PerOp(t.elapsed().as_secs_f64() / iters as f64)
}

fn typed_add(p: &Plain) -> Figure {
    p.with_typed::<(i32, i32), i32, _>("add", |store, add| {
        per_op(1_000_000, |i| {
            black_box(add.call(&mut *store, (i as i32, 1)).unwrap());
        })
    })
}

fn untyped_add(p: &Plain) -> Figure {
    let mut main = p.main.lock().unwrap();
    let (store, instance) = &mut *main;
    let add: Func = instance.get_func(&mut *store, "add").unwrap();
    let mut results = [Val::I32(0)];
    per_op(1_000_000, |i| {
        add.call(&mut *store, &[Val::I32(i as i32), Val::I32(1)], &mut results).unwrap();
        black_box(&results);
    })
}

/// An export call that makes one host call: `call_host_add(a, b)`.
fn export_with_host_call(p: &Plain) -> Figure {
    p.with_typed::<(i64, i64), i64, _>("call_host_add", |store, f| {
        per_op(500_000, |i| {
            black_box(f.call(&mut *store, (i as i64, 1)).unwrap());
        })
    })
}

/// One guest -> host -> guest round trip inside a call: `host_add_loop(100000)` / 100000.
fn host_call_in_guest(p: &Plain) -> Figure {
    const N: i32 = 100_000;
    p.with_typed::<i32, i64, _>("host_add_loop", |store, f| {
        let t = Instant::now();
        let s = f.call(&mut *store, N).unwrap();
        let took = t.elapsed();
        assert_eq!(s, i64::from(N) * i64::from(N + 1) / 2);
        Figure::PerOp(took.as_secs_f64() / f64::from(N))
    })
}

/// `spin(SPIN)` calls per second from `threads` host threads at once, each with its own
/// store and instance over the shared memory (spin uses no memory).
fn spin_throughput(p: &Plain, threads: usize) -> f64 {
    const SPIN: i32 = 1_000_000;
    const CALLS: usize = 40;
    let start = Arc::new(Barrier::new(threads + 1));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (mut store, instance) = p.instance();
            let spin = instance.get_typed_func::<i32, i32>(&mut store, "spin").unwrap();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                for _ in 0..CALLS {
                    black_box(spin.call(&mut store, SPIN).unwrap());
                }
            })
        })
        .collect();
    start.wait();
    let t = Instant::now();
    workers.into_iter().for_each(|w| w.join().unwrap());
    (threads * CALLS) as f64 / t.elapsed().as_secs_f64()
}

fn spin_one_thread(p: &Plain) -> Figure {
    Figure::PerOp(1.0 / spin_throughput(p, 1))
}

fn spin_two_threads_speedup(p: &Plain) -> Figure {
    let one = spin_throughput(p, 1);
    Figure::Number(spin_throughput(p, 2) / one)
}

fn thread_spawn_join(_: &Plain) -> Figure {
    per_op(2_000, |_| std::thread::spawn(|| black_box(1)).join().map(drop).unwrap())
}

/// A new host thread's first call on plain Wasmtime: spawn, a new store and instance,
/// `add`, join.
fn new_thread_first_call(p: &Plain) -> Figure {
    std::thread::scope(|s| {
        per_op(500, |i| {
            s.spawn(move || {
                let (mut store, instance) = p.instance();
                let add = instance.get_typed_func::<(i32, i32), i32>(&mut store, "add").unwrap();
                assert_eq!(add.call(&mut store, (i as i32, 1)).unwrap(), i as i32 + 1);
            })
            .join()
            .unwrap();
        })
    })
}

/// The C plugin as a wasithreads instance, made once.
fn wt() -> &'static wasithreads::Instance {
    use wasithreads::{HostFunc, Instance, RunConfig, Val as V, ValKind::*};
    static INSTANCE: std::sync::OnceLock<Instance> = std::sync::OnceLock::new();
    INSTANCE.get_or_init(|| {
        let module = wasithreads::Module::new(&common::engine(), common::plugin::c_plugin_bytes()).unwrap();
        let mut config = RunConfig::default();
        config.imports.push(HostFunc::new("env", "host_add", &[I64, I64], &[I64], |_, args, results| {
            let (V::I64(a), V::I64(b)) = (args[0], args[1]) else { anyhow::bail!("not i64s") };
            results[0] = V::I64(a.wrapping_add(b));
            Ok(())
        }));
        config.imports.push(HostFunc::new("env", "host_log", &[I32, I32], &[], |_, _, _| Ok(())));
        config.imports.push(HostFunc::new("env", "host_block", &[], &[], |_, _, _| Ok(())));
        let instance = Instance::new(&module, &config).unwrap();
        assert_eq!(instance.call_mode(), wasithreads::CallMode::Parallel);
        instance
    })
}

/// `wt_add` and friends: `iters` calls of `name(args)` through `Instance::call_into`.
fn wt_calls(iters: u64, name: &str, args: impl Fn(u64) -> Vec<wasithreads::Val>) -> Figure {
    let inst = wt();
    let ty = inst.export_type(name).unwrap();
    let mut results: Vec<wasithreads::Val> = ty.results.iter().map(|&k| wasithreads::Val::zero(k)).collect();
    let all: Vec<Vec<wasithreads::Val>> = (0..iters).map(args).collect();
    per_op(iters, |i| {
        inst.call_into(name, &all[i as usize], &mut results).unwrap();
        black_box(&results);
    })
}

fn wt_add(_: &Plain) -> Figure {
    use wasithreads::Val::I32;
    wt_calls(1_000_000, "add", |i| vec![I32(i as i32), I32(1)])
}

fn wt_typed_add(_: &Plain) -> Figure {
    let add = wt().typed::<(i32, i32), i32>("add").unwrap();
    per_op(1_000_000, |i| {
        black_box(add.call((i as i32, 1)).unwrap());
    })
}

fn wt_export_with_host_call(_: &Plain) -> Figure {
    use wasithreads::Val::I64;
    wt_calls(500_000, "call_host_add", |i| vec![I64(i as i64), I64(1)])
}

fn wt_host_call_in_guest(_: &Plain) -> Figure {
    const N: i32 = 100_000;
    let t = Instant::now();
    let s = wt().call("host_add_loop", &[wasithreads::Val::I32(N)]).unwrap();
    let took = t.elapsed();
    assert_eq!(s, [wasithreads::Val::I64(i64::from(N) * i64::from(N + 1) / 2)]);
    Figure::PerOp(took.as_secs_f64() / f64::from(N))
}

/// [`spin_throughput`] through the wasithreads instance: each host thread makes a first
/// call (its guest thread) before the clock starts.
fn wt_spin_throughput(threads: usize) -> f64 {
    use wasithreads::Val::I32;
    const SPIN: i32 = 1_000_000;
    const CALLS: usize = 40;
    let start = Arc::new(Barrier::new(threads + 1));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let start = start.clone();
            std::thread::spawn(move || {
                let inst = wt();
                let mut r = [I32(0)];
                inst.call_into("spin", &[I32(1)], &mut r).unwrap();
                start.wait();
                for _ in 0..CALLS {
                    inst.call_into("spin", &[I32(SPIN)], &mut r).unwrap();
                    black_box(&r);
                }
            })
        })
        .collect();
    start.wait();
    let t = Instant::now();
    workers.into_iter().for_each(|w| w.join().unwrap());
    (threads * CALLS) as f64 / t.elapsed().as_secs_f64()
}

fn wt_spin_one_thread(_: &Plain) -> Figure {
    Figure::PerOp(1.0 / wt_spin_throughput(1))
}

fn wt_spin_two_threads_speedup(_: &Plain) -> Figure {
    let one = wt_spin_throughput(1);
    Figure::Number(wt_spin_throughput(2) / one)
}

/// A new host thread's first call through wasithreads: spawn, `add`, join. The guest
/// thread of the host thread that exited before serves it.
fn wt_new_thread_first_call(_: &Plain) -> Figure {
    use wasithreads::Val::I32;
    let inst = wt();
    per_op(2_000, |i| {
        std::thread::spawn(move || {
            assert_eq!(inst.call("add", &[I32(i as i32), I32(1)]).unwrap(), [I32(i as i32 + 1)]);
        })
        .join()
        .unwrap();
    })
}

/// A host thread's first call that needs a new guest thread (an adoption: the guest's
/// `pthread_create`, a new store and instance, `wasi_thread_start`): 8 host threads at
/// once on a new instance, each making one call and then waiting for the others; the
/// time per host thread, less a host thread spawn.
fn wt_adoption(_: &Plain) -> Figure {
    use wasithreads::Val::I32;
    let module = wasithreads::Module::new(&common::engine(), common::plugin::rust_plugin_bytes()).unwrap();
    let mut total = Duration::ZERO;
    const ROUNDS: u32 = 10;
    for _ in 0..ROUNDS {
        let inst = Arc::new(wasithreads::Instance::new(&module, &wasithreads::RunConfig::default()).unwrap());
        let held = Arc::new(Barrier::new(9));
        let t = Instant::now();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (inst, held) = (inst.clone(), held.clone());
                std::thread::spawn(move || {
                    inst.call("add", &[I32(1), I32(2)]).unwrap();
                    held.wait();
                })
            })
            .collect();
        held.wait();
        total += t.elapsed();
        threads.into_iter().for_each(|t| t.join().unwrap());
        inst.close();
    }
    Figure::PerOp(total.as_secs_f64() / f64::from(8 * ROUNDS))
}

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// RSS growth (KiB) over `threads` short-lived host threads, each making one `add` call
/// on the wasithreads instance, 4 at a time.
fn wt_rss_growth(threads: i32) -> (u64, u64) {
    use wasithreads::Val::I32;
    let inst = wt();
    let wave = |n: i32| {
        for i in (0..n).step_by(4) {
            let batch: Vec<_> =
                (i..i + 4).map(|j| std::thread::spawn(move || inst.call("add", &[I32(j), I32(1)]).unwrap())).collect();
            batch.into_iter().for_each(|t| drop(t.join().unwrap()));
        }
    };
    wave(2_000);
    let before = rss_kib();
    wave(threads);
    (before, rss_kib())
}

struct Case {
    name: &'static str,
    host: Host,
    run: fn(&Plain) -> Figure,
    /// The case this one is set against (its figure over that one's).
    ratio_to: Option<&'static str>,
}

const CASES: &[Case] = &[
    Case { name: "add(i32, i32): TypedFunc::call", host: Host::FuncNew, run: typed_add, ratio_to: None },
    Case {
        name: "add(i32, i32): Func::call",
        host: Host::FuncNew,
        run: untyped_add,
        ratio_to: Some("add(i32, i32): TypedFunc::call"),
    },
    Case {
        name: "call_host_add: export call + func_new host call",
        host: Host::FuncNew,
        run: export_with_host_call,
        ratio_to: Some("add(i32, i32): TypedFunc::call"),
    },
    Case {
        name: "call_host_add: export call + func_wrap host call",
        host: Host::FuncWrap,
        run: export_with_host_call,
        ratio_to: Some("call_host_add: export call + func_new host call"),
    },
    Case {
        name: "guest -> func_new host function -> guest, in a call",
        host: Host::FuncNew,
        run: host_call_in_guest,
        ratio_to: None,
    },
    Case {
        name: "guest -> func_wrap host function -> guest, in a call",
        host: Host::FuncWrap,
        run: host_call_in_guest,
        ratio_to: Some("guest -> func_new host function -> guest, in a call"),
    },
    Case { name: "spin(1e6), 1 host thread, per call", host: Host::FuncNew, run: spin_one_thread, ratio_to: None },
    Case {
        name: "spin(1e6), 2 host threads: throughput / 1 thread's",
        host: Host::FuncNew,
        run: spin_two_threads_speedup,
        ratio_to: None,
    },
    Case { name: "host thread spawn + join (std)", host: Host::FuncNew, run: thread_spawn_join, ratio_to: None },
    Case {
        name: "new host thread: spawn + Store + instantiate + add + join",
        host: Host::FuncNew,
        run: new_thread_first_call,
        ratio_to: Some("host thread spawn + join (std)"),
    },
    Case {
        name: "wasithreads add(i32, i32): Instance::call_into",
        host: Host::FuncNew,
        run: wt_add,
        ratio_to: Some("add(i32, i32): Func::call"),
    },
    Case {
        name: "wasithreads add(i32, i32): TypedExport::call",
        host: Host::FuncNew,
        run: wt_typed_add,
        ratio_to: Some("add(i32, i32): Func::call"),
    },
    Case {
        name: "wasithreads call_host_add: call_into + HostFunc host call",
        host: Host::FuncNew,
        run: wt_export_with_host_call,
        ratio_to: Some("call_host_add: export call + func_new host call"),
    },
    Case {
        name: "wasithreads guest -> HostFunc -> guest, in a call",
        host: Host::FuncNew,
        run: wt_host_call_in_guest,
        ratio_to: Some("guest -> func_new host function -> guest, in a call"),
    },
    Case {
        name: "wasithreads spin(1e6), 1 host thread, per call",
        host: Host::FuncNew,
        run: wt_spin_one_thread,
        ratio_to: Some("spin(1e6), 1 host thread, per call"),
    },
    Case {
        name: "wasithreads spin(1e6), 2 host threads: throughput / 1 thread's",
        host: Host::FuncNew,
        run: wt_spin_two_threads_speedup,
        ratio_to: None,
    },
    Case {
        name: "wasithreads new host thread: spawn + first call (add) + join",
        host: Host::FuncNew,
        run: wt_new_thread_first_call,
        ratio_to: Some("host thread spawn + join (std)"),
    },
    Case {
        name: "wasithreads first call needing a new guest thread (8 at once), per host thread",
        host: Host::FuncNew,
        run: wt_adoption,
        ratio_to: Some("host thread spawn + join (std)"),
    },
];

fn fmt_time(s: f64) -> String {
    match s {
        s if s < 1e-6 => format!("{:.1} ns", s * 1e9),
        s if s < 1e-3 => format!("{:.2} µs", s * 1e6),
        s => format!("{:.2} ms", s * 1e3),
    }
}

fn main() {
    let n = reps();
    let only = std::env::var("WT_BENCH_ONLY").ok();
    let cases: Vec<&Case> = CASES.iter().filter(|c| only.as_deref().is_none_or(|o| c.name.contains(o))).collect();
    eprintln!("building and loading the C plugin ...");
    let plains = [(Host::FuncNew, Plain::new(Host::FuncNew)), (Host::FuncWrap, Plain::new(Host::FuncWrap))];
    let plain = |h: Host| &plains.iter().find(|(k, _)| *k == h).unwrap().1;
    eprintln!("measuring, {n} repetitions each (cases interleaved) ...");
    // Warm-up: one pass whose figures are dropped.
    for c in &cases {
        (c.run)(plain(c.host));
    }
    let mut samples: Vec<(Vec<f64>, bool)> = cases.iter().map(|_| (Vec::new(), false)).collect();
    for _ in 0..n {
        for (c, s) in cases.iter().zip(samples.iter_mut()) {
            match (c.run)(plain(c.host)) {
                Figure::PerOp(v) => s.0.push(v),
                Figure::Number(v) => {
                    s.0.push(v);
                    s.1 = true;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let medians: Vec<(f64, bool)> = samples.into_iter().map(|(v, number)| (median(v), number)).collect();
    println!("Wasmtime 48 on a plain Store and wasithreads' Instance, C plugin; medians of {n}\n");
    println!("| case | figure | ratio |");
    println!("|---|---|---|");
    for (c, (v, number)) in cases.iter().zip(&medians) {
        let figure = if *number { format!("{v:.2}×") } else { fmt_time(*v) };
        let ratio = c
            .ratio_to
            .and_then(|r| cases.iter().position(|o| o.name == r))
            .map(|i| format!("{:.2}× {}", v / medians[i].0, cases[i].name))
            .unwrap_or_default();
        println!("| {} | {figure} | {ratio} |", c.name);
    }
    if only.as_deref().is_none_or(|o| "rss".contains(o)) {
        const THREADS: i32 = 100_000;
        let t = Instant::now();
        let (before, after) = wt_rss_growth(THREADS);
        println!(
            "\nRSS over {THREADS} short-lived host threads each making one call (4 at a time, after 2 000): \
             {before} KiB -> {after} KiB ({:+} KiB) in {:.1} s; {} idle guest threads",
            after as i64 - before as i64,
            t.elapsed().as_secs_f64(),
            wt().idle_workers()
        );
    }
}
