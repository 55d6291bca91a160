//! Loading: a load's own compile threads, load limits, function bodies near Wasmtime's
//! size limit (issue 20, rows 11, 16 and 17; row 12, fork, is `tests/c/fork.c`).

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use wasithreads::{Engine, EngineConfig, ErrorKind, ExitKind, Module, RunConfig};
use wasm_encoder::{BlockType, CodeSection, ExportKind, ExportSection, Function, FunctionSection, Instruction};
use wasm_encoder::{TypeSection, ValType};

use crate::common::{engine, run_watched, within};

/// A module whose one function `f` (called by `_start`) has `body`.
fn module_of(body: &[Instruction<'_>]) -> Vec<u8> {
    let mut types = TypeSection::new();
    types.ty().function([], []);
    let mut funcs = FunctionSection::new();
    funcs.function(0);
    funcs.function(0);
    let mut exports = ExportSection::new();
    exports.export("_start", ExportKind::Func, 1);
    let mut code = CodeSection::new();
    let mut f = Function::new([(1, ValType::I32)]);
    for ins in body {
        f.instruction(ins);
    }
    f.instruction(&Instruction::End);
    code.function(&f);
    let mut start = Function::new([]);
    start.instruction(&Instruction::Call(0));
    start.instruction(&Instruction::End);
    code.function(&start);
    let mut m = wasm_encoder::Module::new();
    m.section(&types).section(&funcs).section(&exports).section(&code);
    m.finish()
}

/// `n` copies of `one`.
fn repeat<'a>(n: usize, one: &[Instruction<'a>]) -> Vec<Instruction<'a>> {
    one.iter().cycle().take(n * one.len()).cloned().collect()
}

/// A load compiles on threads of its own, not on rayon's global pool: with every thread
/// of that pool busy, a module still loads (it used to queue behind whatever the pool
/// did, another host thread's big load included, and to hang in a forked child).
#[test]
fn a_load_does_not_wait_for_the_global_rayon_pool() {
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let g = gate.clone();
    rayon::spawn_broadcast(move |_| {
        let (open, cond) = &*g;
        let mut open = open.lock().unwrap();
        while !*open {
            open = cond.wait(open).unwrap();
        }
    });
    let loaded = within(Duration::from_secs(60), || {
        // Big enough to be compiled in parallel.
        let wasm = module_of(&repeat(200_000, &[Instruction::I32Const(1), Instruction::LocalSet(0)]));
        Module::new(&engine(), &wasm).map(drop).map_err(|e| format!("{e:#}"))
    });
    *gate.0.lock().unwrap() = true;
    gate.1.notify_all();
    loaded.unwrap();
}

/// A valid function of 10^6 loops (4 MB) loads and runs: its interruption points are
/// compact, so it stays under Wasmtime's body size limit; and a thread busy in a loop of
/// such a function is still stopped (by the timeout here).
#[test]
fn a_function_of_a_million_loops_loads_runs_and_stops() {
    let mut body = repeat(1_000_000, &[Instruction::Loop(BlockType::Empty), Instruction::Nop, Instruction::End]);
    body.extend([Instruction::Loop(BlockType::Empty), Instruction::Br(0), Instruction::End]);
    let wasm = module_of(&body);
    assert!(wasm.len() > 4_000_000);
    let module = Module::new(&engine(), &wasm).unwrap_or_else(|e| panic!("{e:#}"));
    let mut config = RunConfig::default();
    config.timeout = Some(Duration::from_millis(300));
    let (exit, _) = run_watched(&module, &config);
    assert_eq!(exit.kind, ExitKind::Timeout, "{exit:?}");
    assert!(exit.unstopped.is_empty(), "{exit:?}");
}

/// A valid function the rewrite cannot keep under the limit even with compact points
/// (7.3 MB of nothing but branching loops) is refused as a limit, naming the function and
/// its offset in the user's module.
#[test]
fn a_function_too_big_even_for_compact_points_is_refused_with_its_offset() {
    let body = repeat(
        1_050_000,
        &[Instruction::Loop(BlockType::Empty), Instruction::LocalGet(0), Instruction::BrIf(0), Instruction::End],
    );
    let wasm = module_of(&body);
    let err = Module::new(&engine(), &wasm).err().expect("refused");
    assert_eq!(ErrorKind::of(&err), ErrorKind::Limit, "{err:#}");
    let text = format!("{err:#}");
    assert!(text.contains("function 0 (its body of") && text.contains("at offset 0x"), "{text}");
    assert!(text.contains("split it into smaller functions"), "{text}");
}

/// An engine's load limits refuse a module over them before compiling it, saying which
/// limit; deserialized modules are not checked.
#[test]
fn load_limits_refuse_modules_over_them() {
    let wasm = module_of(&[Instruction::Nop]);
    let big = EngineConfig { max_module_bytes: Some(wasm.len() as u64 - 1), ..Default::default() };
    let err = Module::new(&Engine::new(&big).unwrap(), &wasm).err().expect("refused");
    assert_eq!(ErrorKind::of(&err), ErrorKind::Limit);
    assert!(format!("{err:#}").contains("more than the"), "{err:#}");
    let fits = EngineConfig { max_module_bytes: Some(wasm.len() as u64), max_functions: Some(2), ..Default::default() };
    let fits = Engine::new(&fits).unwrap();
    let serialized = Module::new(&fits, &wasm).unwrap().serialize().unwrap();
    let one =
        Engine::new(&EngineConfig { max_functions: Some(1), max_module_bytes: Some(1), ..Default::default() }).unwrap();
    let err = Module::new(&one, &wasm).err().expect("refused");
    assert!(format!("{err:#}").contains("bytes"), "the size is checked first: {err:#}");
    let functions = Engine::new(&EngineConfig { max_functions: Some(1), ..Default::default() }).unwrap();
    let err = Module::new(&functions, &wasm).err().expect("refused");
    assert!(format!("{err:#}").contains("the module has 2 functions, more than the 1"), "{err:#}");
    // SAFETY: the bytes come from `Module::serialize` with the same settings.
    unsafe { Module::deserialize(&one, &serialized) }.unwrap();
}
