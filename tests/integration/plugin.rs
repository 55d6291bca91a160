//! Host functions (in commands and instances) and instances: export calls from host
//! threads, guest memory, the instance's end. The real-toolchain plugins (C and Rust
//! reactors, parallel calls) are in `plugins.rs`; these use hand-written modules.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasithreads::{CallMode, ErrorKind, ExitKind, HostFunc, Instance, InstanceEnded, Module, RunConfig, Val, ValKind};

use crate::common::{engine, load, within};

/// `env.add(i64, i64) -> i64` that counts its calls and the distinct threads calling it.
fn adder(calls: &Arc<AtomicI64>) -> HostFunc {
    let calls = calls.clone();
    HostFunc::new("env", "add", &[ValKind::I64, ValKind::I64], &[ValKind::I64], move |_caller, args, results| {
        calls.fetch_add(1, Ordering::SeqCst);
        let (Val::I64(a), Val::I64(b)) = (args[0], args[1]) else { anyhow::bail!("not i64s") };
        results[0] = Val::I64(a + b);
        Ok(())
    })
}

/// A command whose `_start` spawns 8 threads; each calls `env.add` 1000 times and adds
/// the sums to a counter; main waits for all 8 and checks the total, exiting 0 on
/// success and 1 otherwise.
const COMMAND_WITH_IMPORT: &str = r#"(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "env" "add" (func $add (param i64 i64) (result i64)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "env" "memory" (memory 1 1 shared))
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32) (local $i i32) (local $s i64)
    (loop $l
      (local.set $s (call $add (local.get $s) (i64.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 1000))))
    (drop (i64.atomic.rmw.add (i32.const 8) (local.get $s)))
    (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))
    (drop (memory.atomic.notify (i32.const 0) (i32.const 1))))
  (func (export "_start") (local $i i32) (local $n i32)
    (loop $s
      (drop (call $spawn (i32.const 0)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $s (i32.lt_u (local.get $i) (i32.const 8))))
    (loop $w
      (local.set $n (i32.atomic.load (i32.const 0)))
      (if (i32.lt_u (local.get $n) (i32.const 8))
        (then (drop (memory.atomic.wait32 (i32.const 0) (local.get $n) (i64.const -1))) (br $w))))
    (call $exit (i64.ne (i64.atomic.load (i32.const 8)) (i64.const 8000)))))"#;

#[test]
fn host_functions_are_linked_into_every_thread_of_a_command() {
    let e = engine();
    let m = load(&e, COMMAND_WITH_IMPORT);
    let calls = Arc::new(AtomicI64::new(0));
    let tids = Arc::new(parking_lot::Mutex::new(std::collections::BTreeSet::new()));
    let mut config = RunConfig::default();
    config.imports.push(adder(&calls));
    let seen = tids.clone();
    config.imports[0].callback = {
        let inner = config.imports[0].callback.clone();
        Arc::new(move |c, a, r| {
            seen.lock().insert(c.tid());
            inner(c, a, r)
        })
    };
    let exit = within(Duration::from_secs(60), move || wasithreads::Run::start(&m, &config).unwrap().wait());
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 0), "{exit:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 8000);
    assert_eq!(tids.lock().len(), 8, "eight spawned threads called it: {:?}", tids.lock());
    assert!(!tids.lock().contains(&0));
}

#[test]
fn imports_the_config_lacks_or_types_it_gets_wrong_fail_the_start_by_name() {
    let e = engine();
    let m = load(&e, COMMAND_WITH_IMPORT);
    let err = wasithreads::Run::start(&m, &RunConfig::default()).err().expect("no env.add");
    let text = format!("{err:#}");
    assert_eq!(ErrorKind::of(&err), ErrorKind::Link, "{text}");
    assert!(text.contains("unknown import `env::add`") && text.contains("i64"), "{text}");

    let mut config = RunConfig::default();
    config.imports.push(HostFunc::new("env", "add", &[ValKind::I32], &[], |_, _, _| Ok(())));
    let err = wasithreads::Run::start(&m, &config).err().expect("wrong type");
    let text = format!("{err:#}");
    assert_eq!(ErrorKind::of(&err), ErrorKind::Link, "{text}");
    assert!(text.contains("defined as (i32) -> ()"), "{text}");

    for (module, name) in [("wasi_snapshot_preview1", "fd_write"), ("wasi", "thread-spawn")] {
        let mut config = RunConfig::default();
        config.imports.push(HostFunc::new(module, name, &[], &[], |_, _, _| Ok(())));
        let err = wasithreads::Run::start(&m, &config).err().expect("ours");
        assert_eq!(ErrorKind::of(&err), ErrorKind::Misuse, "{err:#}");
        assert!(format!("{err:#}").contains("provides that import itself"), "{err:#}");
    }
}

/// A reactor without threads: `_initialize` sets a global; exports read memory, trap,
/// exit, call the host, loop forever.
const REACTOR: &str = r#"(module
  (import "env" "twice" (func $twice (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (global $init (mut i32) (i32.const 0))
  (func (export "_initialize") (global.set $init (i32.const 7)))
  (func (export "inited") (result i32) (global.get $init))
  (func (export "sum") (param $p i32) (param $n i32) (result i64) (local $s i64)
    (block $d (loop $l
      (br_if $d (i32.eqz (local.get $n)))
      (local.set $s (i64.add (local.get $s) (i64.load8_u (local.get $p))))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $l)))
    (local.get $s))
  (func (export "twice_plus") (param i32) (result i32) (i32.add (call $twice (local.get 0)) (i32.const 1)))
  (func (export "fmix") (param f32 f64) (result f64) (f64.add (f64.promote_f32 (local.get 0)) (local.get 1)))
  (func (export "boom") (unreachable))
  (func (export "quit") (param i32) (call $exit (local.get 0)))
  (func (export "forever") (loop $l (br $l))))"#;

fn reactor_config() -> RunConfig {
    let mut config = RunConfig::default();
    config.imports.push(HostFunc::new("env", "twice", &[ValKind::I32], &[ValKind::I32], |caller, args, results| {
        let Val::I32(x) = args[0] else { anyhow::bail!("not an i32") };
        anyhow::ensure!(x != 13, "unlucky {x} (thread {})", caller.tid());
        results[0] = Val::I32(2 * x);
        Ok(())
    }));
    config
}

#[test]
fn an_instance_runs_initialize_once_and_serves_typed_calls() {
    let e = engine();
    let m = load(&e, REACTOR);
    let inst = Instance::new(&m, &reactor_config()).unwrap();
    assert_eq!(inst.call_mode(), CallMode::Serial, "no shared memory: calls are serialised");
    assert_eq!(inst.call("inited", &[]).unwrap(), vec![Val::I32(7)]);
    inst.write(100, &[1, 2, 3, 250]).unwrap();
    let mut back = [0u8; 4];
    inst.read(100, &mut back).unwrap();
    assert_eq!(back, [1, 2, 3, 250]);
    assert_eq!(inst.call("sum", &[Val::I32(100), Val::I32(4)]).unwrap(), vec![Val::I64(256)]);
    assert_eq!(inst.call("twice_plus", &[Val::I32(20)]).unwrap(), vec![Val::I32(41)]);
    assert_eq!(inst.call("fmix", &[Val::F32(1.5), Val::F64(2.25)]).unwrap(), vec![Val::F64(3.75)]);

    // Misuse leaves the instance alive.
    for (name, args, needle) in [
        ("nope", vec![], "no callable export `nope`"),
        ("sum", vec![Val::I32(1)], "1 given, 2 expected"),
        ("sum", vec![Val::I32(1), Val::I64(2)], "value 1 is an i64"),
        ("memory", vec![], "no callable export"),
        ("wasithreads:adopt", vec![], "no callable export"),
    ] {
        let err = inst.call(name, &args).unwrap_err();
        assert_eq!(ErrorKind::of(&err), ErrorKind::Misuse, "{err:#}");
        assert!(format!("{err:#}").contains(needle), "{err:#}");
    }
    let err = inst.write(65530, &[0; 7]).unwrap_err();
    assert_eq!(ErrorKind::of(&err), ErrorKind::Misuse, "{err:#}");
    assert!(inst.read(u64::MAX, &mut [0]).is_err());
    assert_eq!(inst.call("inited", &[]).unwrap(), vec![Val::I32(7)]);

    // A host function's error traps the calling thread, which ends the instance.
    let err = inst.call("twice_plus", &[Val::I32(13)]).unwrap_err();
    assert_eq!(ErrorKind::of(&err), ErrorKind::Ended, "{err:#}");
    let ended = InstanceEnded::of(&err).expect("the exit");
    assert_eq!(ended.0.kind, ExitKind::Trap);
    let msg = ended.0.message.as_deref().unwrap();
    assert!(msg.contains("host function `env::twice` failed: unlucky 13 (thread 0)"), "{msg}");
    assert!(msg.contains("wasm backtrace:"), "{msg}");
    // Every later call fails at once with that first exit.
    let again = inst.call("inited", &[]).unwrap_err();
    assert_eq!(InstanceEnded::of(&again).unwrap().0, ended.0);
    let closed = inst.close();
    assert_eq!(closed.kind, ExitKind::Trap);
    assert_eq!(inst.close(), closed, "close is idempotent");
}

#[test]
fn a_trap_or_exit_in_a_call_ends_the_instance_with_that_exit() {
    let e = engine();
    let m = load(&e, REACTOR);
    let inst = Instance::new(&m, &reactor_config()).unwrap();
    let err = inst.call("boom", &[]).unwrap_err();
    let exit = &InstanceEnded::of(&err).unwrap().0;
    assert_eq!((exit.kind, exit.tid), (ExitKind::Trap, 0));
    assert!(exit.message.as_deref().unwrap().contains("unreachable"), "{exit:?}");

    let inst = Instance::new(&m, &reactor_config()).unwrap();
    let err = inst.call("quit", &[Val::I32(9)]).unwrap_err();
    let exit = &InstanceEnded::of(&err).unwrap().0;
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 9));
    assert_eq!(inst.close().code, 9);
}

#[test]
fn cancel_and_timeout_stop_a_call_in_flight() {
    let e = engine();
    let m = Module::new(&e, REACTOR.as_bytes()).unwrap();
    let inst = Arc::new(Instance::new(&m, &reactor_config()).unwrap());
    let caller = inst.clone();
    let t = std::thread::spawn(move || caller.call("forever", &[]).unwrap_err());
    std::thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    inst.cancel();
    let err = within(Duration::from_secs(10), move || t.join().unwrap());
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    assert_eq!(InstanceEnded::of(&err).unwrap().0.kind, ExitKind::Cancelled);
    assert_eq!(inst.close().kind, ExitKind::Cancelled);

    let mut config = reactor_config();
    config.timeout = Some(Duration::from_millis(100));
    let inst = Instance::new(&m, &config).unwrap();
    let err = within(Duration::from_secs(10), move || inst.call("forever", &[]).unwrap_err());
    assert_eq!(InstanceEnded::of(&err).unwrap().0.kind, ExitKind::Timeout);
}

#[test]
fn an_initialize_that_traps_fails_the_instance_with_its_exit() {
    let e = engine();
    let m = load(&e, r#"(module (memory (export "memory") 1) (func (export "_initialize") (unreachable)))"#);
    // The failed main thread is done: the end does not wait the (here 60 s) grace for it.
    let config = RunConfig { teardown_grace: Duration::from_secs(60), ..RunConfig::default() };
    let err = within(Duration::from_secs(30), move || Instance::new(&m, &config).err().expect("trapped"));
    assert_eq!(ErrorKind::of(&err), ErrorKind::Ended, "{err:#}");
    assert!(format!("{err:#}").contains("initialising the instance"), "{err:#}");
    let exit = &InstanceEnded::of(&err).unwrap().0;
    assert_eq!(exit.kind, ExitKind::Trap);
    assert!(exit.unstopped.is_empty(), "{exit:?}");
}

/// A call in flight when its instance is cancelled fails with the end, also when its
/// host function then returns normally and its wasm returns without another wait.
#[test]
fn a_call_in_flight_at_cancel_ends_even_if_its_host_function_returns() {
    let e = engine();
    let m = load(
        &e,
        r#"(module (import "env" "wait_end" (func $w)) (memory (export "memory") 1)
             (func (export "wait_end") (result i32) (call $w) (i32.const 5)))"#,
    );
    let entered = Arc::new(std::sync::Barrier::new(2));
    let mut config = RunConfig::default();
    let seen = entered.clone();
    config.imports.push(HostFunc::wrap("env", "wait_end", move |c: &mut wasithreads::Caller<'_>| {
        seen.wait();
        while !c.is_ending() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }));
    let inst = Arc::new(Instance::new(&m, &config).unwrap());
    let caller = inst.clone();
    let call = std::thread::spawn(move || caller.typed::<(), i32>("wait_end").unwrap().call(()));
    entered.wait();
    inst.cancel();
    let err = within(Duration::from_secs(20), move || call.join().unwrap()).unwrap_err();
    assert_eq!(InstanceEnded::of(&err).map(|e| e.0.kind), Some(ExitKind::Cancelled), "{err:#}");
}

#[test]
fn a_host_function_panic_traps_the_caller_and_the_host_lives() {
    let e = engine();
    let m = load(&e, REACTOR);
    let mut config = RunConfig::default();
    config.imports.push(HostFunc::new("env", "twice", &[ValKind::I32], &[ValKind::I32], |_, _, _| panic!("oops")));
    let inst = Instance::new(&m, &config).unwrap();
    let err = inst.call("twice_plus", &[Val::I32(1)]).unwrap_err();
    let exit = &InstanceEnded::of(&err).unwrap().0;
    assert!(exit.message.as_deref().unwrap().contains("host function `env::twice` panicked: oops"), "{exit:?}");
    // A result of the wrong type is a trap too, not a crash.
    let mut config = RunConfig::default();
    config.imports.push(HostFunc::new("env", "twice", &[ValKind::I32], &[ValKind::I32], |_, _, r| {
        r[0] = Val::F64(1.0);
        Ok(())
    }));
    let inst = Instance::new(&m, &config).unwrap();
    let err = inst.call("twice_plus", &[Val::I32(1)]).unwrap_err();
    assert!(format!("{err:#}").contains("set result 0 to an f64"), "{err:#}");
}

#[test]
fn serial_calls_from_many_host_threads_all_complete() {
    let e = engine();
    let m = load(&e, REACTOR);
    let inst = Arc::new(Instance::new(&m, &reactor_config()).unwrap());
    let done = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|k| {
            let (inst, done) = (inst.clone(), done.clone());
            std::thread::spawn(move || {
                for i in 0..500 {
                    let x = k * 1000 + i + 100;
                    assert_eq!(inst.call("twice_plus", &[Val::I32(x)]).unwrap(), vec![Val::I32(2 * x + 1)]);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    within(Duration::from_secs(60), move || threads.into_iter().for_each(|t| t.join().unwrap()));
    assert_eq!(done.load(Ordering::Relaxed), 4000);
}

#[test]
fn a_call_past_the_call_timeout_ends_the_instance() {
    let e = engine();
    let m = load(&e, REACTOR);
    let mut config = reactor_config();
    config.call_timeout = Some(Duration::from_millis(100));
    let inst = Instance::new(&m, &config).unwrap();
    // Calls that return in time are not affected, however many.
    for i in 0..1000 {
        assert_eq!(inst.call("twice_plus", &[Val::I32(i + 100)]).unwrap(), vec![Val::I32(2 * (i + 100) + 1)]);
    }
    let inst = Arc::new(inst);
    let caller = inst.clone();
    let err = within(Duration::from_secs(10), move || caller.call("forever", &[]).unwrap_err());
    assert_eq!(InstanceEnded::of(&err).unwrap().0.kind, ExitKind::Timeout, "{err:#}");
    assert_eq!(inst.close().kind, ExitKind::Timeout);
}

#[test]
fn a_thread_stuck_in_a_host_function_is_reported_by_name() {
    let e = engine();
    let m = load(
        &e,
        r#"(module (import "env" "stall" (func $stall)) (memory (export "memory") 1)
             (func (export "_start") (call $stall)))"#,
    );
    let mut config = RunConfig::default();
    // Ignores the run's end for a while, as a careless host function would.
    config.imports.push(HostFunc::new("env", "stall", &[], &[], |_, _, _| {
        std::thread::sleep(Duration::from_millis(1500));
        Ok(())
    }));
    config.timeout = Some(Duration::from_millis(50));
    config.teardown_grace = Duration::from_millis(100);
    let said = Arc::new(parking_lot::Mutex::new(Vec::<String>::new()));
    let sink = said.clone();
    config.hooks.on_diagnostic = Some(Arc::new(move |_, m: &str| sink.lock().push(m.to_string())));
    let exit = within(Duration::from_secs(30), move || wasithreads::Run::start(&m, &config).unwrap().wait());
    assert_eq!(exit.kind, ExitKind::Timeout);
    assert_eq!(exit.unstopped, vec![0]);
    let said = said.lock();
    assert!(said.iter().any(|m| m.contains("0 (inside host function `env::stall`)")), "{said:?}");
}

/// Imports and exports of every number type, for the typed Rust API.
const TYPED: &str = r#"(module
  (import "env" "mix" (func $mix (param i32 i64 f32 f64) (result f64)))
  (import "env" "split" (func $split (param i64) (result i32 i32)))
  (import "env" "check" (func $check (param i32)))
  (memory (export "memory") 1)
  (func (export "mix") (param i32 i64 f32 f64) (result f64)
    (call $mix (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "split") (param i64) (result i32 i32) (call $split (local.get 0)))
  (func (export "check") (param i32) (call $check (local.get 0)))
  (func (export "half") (param i32) (result i32) (i32.shr_u (local.get 0) (i32.const 1))))"#;

#[test]
fn typed_host_functions_and_typed_calls_check_types_once() {
    let mut config = RunConfig::default();
    let mix = HostFunc::wrap("env", "mix", |a: i32, b: i64, c: f32, d: f64| -> anyhow::Result<f64> {
        anyhow::ensure!(b == 7, "b is {b}");
        Ok(f64::from(a) + f64::from(c) + d)
    });
    let split = HostFunc::wrap("env", "split", |_: &mut wasithreads::Caller<'_>, x: u64| {
        (u32::try_from(x >> 32).unwrap(), u32::try_from(x & 0xffff_ffff).unwrap())
    });
    let check = HostFunc::wrap("env", "check", |c: &mut wasithreads::Caller<'_>, x: i32| -> anyhow::Result<()> {
        anyhow::ensure!(x > 0, "x is {x} on thread {}", c.tid());
        Ok(())
    });
    assert_eq!(mix.ty.to_string(), "(i32, i64, f32, f64) -> f64");
    assert_eq!(split.ty.to_string(), "(i64) -> (i32, i32)");
    assert_eq!(check.ty.to_string(), "(i32) -> ()");
    config.imports.extend([mix, split, check]);
    let e = engine();
    let inst = Instance::new(&load(&e, TYPED), &config).unwrap();

    let mix = inst.typed::<(i32, i64, f32, f64), f64>("mix").unwrap();
    assert_eq!(mix.call((1, 7, 0.5, 2.0)).unwrap(), 3.5);
    let split = inst.typed::<u64, (u32, u32)>("split").unwrap();
    assert_eq!(split.call(0xffff_fffe_0000_0002).unwrap(), (0xffff_fffe, 2));
    let half = inst.typed::<u32, u32>("half").unwrap();
    assert_eq!(half.call(0xffff_fffe).unwrap(), 0x7fff_ffff, "u32 is an i32 read as unsigned");
    assert_eq!(inst.typed::<i32, i32>("half").unwrap().call(-2).unwrap(), 0x7fff_ffff);
    let check = inst.typed::<i32, ()>("check").unwrap();
    check.call(5).unwrap();

    // Wrong types or names are misuse, found before any call, and the instance lives on.
    for (err, needle) in [
        (inst.typed::<i32, i32>("mix").err().unwrap(), "`mix` is (i32, i64, f32, f64) -> f64, not (i32) -> i32"),
        (inst.typed::<u64, (u32, u32, u32)>("split").err().unwrap(), "not (i64) -> (i32, i32, i32)"),
        (inst.typed::<(), ()>("nope").err().unwrap(), "no callable export `nope`"),
        (inst.typed::<(), ()>("memory").err().unwrap(), "no callable export `memory`"),
    ] {
        assert_eq!(ErrorKind::of(&err), ErrorKind::Misuse, "{err:#}");
        assert!(format!("{err:#}").contains(needle), "{err:#}");
    }
    assert_eq!(mix.call((2, 7, 0.25, 0.0)).unwrap(), 2.25);

    // A host function's `Err` traps the caller, which ends the instance.
    let err = mix.call((1, 8, 0.0, 0.0)).unwrap_err();
    let exit = &InstanceEnded::of(&err).unwrap().0;
    assert_eq!(exit.kind, ExitKind::Trap);
    assert!(exit.message.as_deref().unwrap().contains("host function `env::mix` failed: b is 8"), "{exit:?}");
    assert_eq!(ErrorKind::of(&check.call(5).unwrap_err()), ErrorKind::Ended);

    let names: Vec<&str> = inst.exports().iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["mix", "split", "check", "half"], "callable exports in the module's order");
}

#[test]
fn a_typed_export_is_shared_by_host_threads_calling_in_parallel() {
    let e = engine();
    let m = load(&e, include_str!("../guests/wat/plugin.wat"));
    let mut config = RunConfig::default();
    config.imports.push(HostFunc::wrap("env", "twice", |x: i32| x * 2));
    config.imports.push(HostFunc::wrap("env", "block", || ()));
    let inst = Instance::new(&m, &config).unwrap();
    assert_eq!(inst.call_mode(), CallMode::Parallel);
    let add = inst.typed::<(i32, i32), i32>("add").unwrap();
    let twice_plus = inst.typed::<i32, i32>("twice_plus").unwrap();
    let whoami = inst.typed::<(), i32>("whoami").unwrap();
    // All four host threads live until each has asked which guest thread it calls on.
    let all_asked = std::sync::Barrier::new(4);
    let tids: Vec<i32> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let (add, twice_plus, whoami, all_asked) = (&add, &twice_plus, &whoami, &all_asked);
                s.spawn(move || {
                    for i in 0..1000 {
                        assert_eq!(add.call((i, t)).unwrap(), i + t);
                        assert_eq!(twice_plus.call(i).unwrap(), 2 * i + 1);
                    }
                    let tid = whoami.call(()).unwrap();
                    all_asked.wait();
                    tid
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let distinct: std::collections::BTreeSet<i32> = tids.iter().copied().collect();
    assert_eq!(distinct.len(), 4, "each living host thread calls on a guest thread of its own: {tids:?}");
    assert!(!distinct.contains(&0), "not on the main thread: {tids:?}");
    assert_eq!(inst.close().kind, ExitKind::Cancelled, "closed while alive");
}

/// A trap in an export call writes the config's core dump, as a run's trap does: the
/// trapping call thread's stack first (with the spawned and call threads' stacks),
/// its globals, and the shared memory.
#[test]
fn a_trap_in_a_call_writes_the_core_dump() {
    use wasmparser::{Parser, Payload};
    let e = engine();
    let m = load(&e, include_str!("../guests/wat/plugin.wat"));
    let path = crate::common::temp_dir("instance-coredump").join("core.wasm");
    let mut config = RunConfig { coredump_path: Some(path.clone()), ..RunConfig::default() };
    config.imports.push(HostFunc::wrap("env", "twice", |x: i32| x * 2));
    config.imports.push(HostFunc::wrap("env", "block", || ()));
    let inst = Instance::new(&m, &config).unwrap();
    let whoami = inst.typed::<(), i32>("whoami").unwrap();
    let tid = whoami.call(()).unwrap();
    assert!(tid > 0, "a call thread of its own");
    inst.write(4096, &0x1122_3344_5566_7788u64.to_le_bytes()).unwrap();
    let err = inst.typed::<(), ()>("boom").unwrap().call(()).unwrap_err();
    assert_eq!(InstanceEnded::of(&err).unwrap().0.tid, tid);
    assert_eq!(inst.close().kind, ExitKind::Trap);

    let dump = std::fs::read(&path).expect("the core dump was written");
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all()).validate_all(&dump).unwrap();
    let (mut stacks, mut globals, mut shared, mut marker) = (Vec::new(), 0, false, false);
    for payload in Parser::new(0).parse_all(&dump) {
        match payload.unwrap() {
            Payload::CustomSection(s) if s.name() == "corestack" => {
                stacks.push(super::diagnostics::corestack(s.data()));
            }
            Payload::GlobalSection(r) => globals = r.count(),
            Payload::MemorySection(r) => shared = r.into_iter().any(|m| m.unwrap().shared),
            Payload::DataSection(r) => {
                marker |= r.into_iter().any(|d| {
                    let d = d.unwrap();
                    d.data.windows(8).any(|w| w == 0x1122_3344_5566_7788u64.to_le_bytes())
                });
            }
            _ => {}
        }
    }
    assert_eq!(stacks[0].0, format!("thread {tid}"), "the trapping call thread first: {stacks:?}");
    assert!(!stacks[0].1.is_empty(), "with its frames: {stacks:?}");
    assert!(globals >= 2, "the trapping thread's globals ($__stack_pointer, $tid): {globals}");
    assert!(shared && marker, "the shared memory, with what the host wrote");
}
