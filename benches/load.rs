//! What loading costs, for the modules issue 20 used (rows 11, 16, 17), and what the
//! compact interruption points of over-large function bodies cost at run time.
//!
//!   cargo bench --bench load          (WT_BENCH_ONLY=<row name part> picks rows)
//!
//! - a tiny module's load alone, and while another host thread loads a module of 60 000
//!   functions (each load compiles on a pool of its own: the tiny one must not queue);
//! - loads of 100 000 functions and of a 100 000-deep call chain: time and the peak RSS
//!   the load adds (VmHWM, reset before each load);
//! - a 4 MB function of 10^6 loops, and one near the size limit of branching loops;
//! - a hot loop with its interruption point inline, and with the compact one (a call of
//!   the shared helper) that bodies too big for inline points get.
//!
//! Medians of `WT_BENCH_REPS` (default 3) loads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasithreads::{Engine, EngineConfig, Module, Run, RunConfig};
use wasm_encoder::{
    BlockType, CodeSection, ExportKind, ExportSection, Function, FunctionSection, Instruction, TypeSection, ValType,
};

fn reps() -> usize {
    std::env::var("WT_BENCH_REPS").ok().and_then(|s| s.parse().ok()).unwrap_or(3).max(1)
}

fn wanted(name: &str) -> bool {
    std::env::var("WT_BENCH_ONLY").map_or(true, |only| name.contains(&only))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A module of `bodies` (each of type `[i32] -> [i32]`), function 0 exported as `f`, and a
/// `_start` that calls `f(start_arg)` when `start_arg` is not 0.
fn module(bodies: impl Iterator<Item = Function>, start_arg: i32) -> Vec<u8> {
    let mut types = TypeSection::new();
    types.ty().function([ValType::I32], [ValType::I32]);
    types.ty().function([], []);
    let (mut funcs, mut code) = (FunctionSection::new(), CodeSection::new());
    for body in bodies {
        funcs.function(0);
        code.function(&body);
    }
    let start = funcs.len();
    funcs.function(1);
    let mut start_body = Function::new([]);
    if start_arg != 0 {
        start_body.instruction(&Instruction::I32Const(start_arg));
        start_body.instruction(&Instruction::Call(0));
        start_body.instruction(&Instruction::Drop);
    }
    start_body.instruction(&Instruction::End);
    code.function(&start_body);
    let mut exports = ExportSection::new();
    exports.export("f", ExportKind::Func, 0);
    exports.export("_start", ExportKind::Func, start);
    let mut m = wasm_encoder::Module::new();
    m.section(&types).section(&funcs).section(&exports).section(&code);
    m.finish()
}

/// A small function with a loop: sums 0..arg, then calls `next` (if any) with the sum.
fn small(next: Option<u32>) -> Function {
    let mut f = Function::new([(1, ValType::I32)]);
    for ins in [
        Instruction::Loop(BlockType::Empty),
        Instruction::LocalGet(1),
        Instruction::LocalGet(0),
        Instruction::I32Add,
        Instruction::LocalSet(1),
        Instruction::LocalGet(0),
        Instruction::I32Const(1),
        Instruction::I32Sub,
        Instruction::LocalTee(0),
        Instruction::BrIf(0),
        Instruction::End,
        Instruction::LocalGet(1),
    ] {
        f.instruction(&ins);
    }
    if let Some(next) = next {
        f.instruction(&Instruction::Call(next));
    }
    f.instruction(&Instruction::End);
    f
}

fn functions(n: u32) -> Vec<u8> {
    module((0..n).map(|_| small(None)), 0)
}

fn chain(n: u32) -> Vec<u8> {
    module((0..n).map(|i| small((i + 1 < n).then_some(i + 1))), 0)
}

/// One function: `loops` loops, each `loop <inner> end`, then the argument.
fn loops(loops: u32, inner: &[Instruction<'_>]) -> Vec<u8> {
    let mut f = Function::new([]);
    for _ in 0..loops {
        f.instruction(&Instruction::Loop(BlockType::Empty));
        for ins in inner {
            f.instruction(ins);
        }
        f.instruction(&Instruction::End);
    }
    f.instruction(&Instruction::LocalGet(0));
    f.instruction(&Instruction::End);
    module(std::iter::once(f), 0)
}

/// A function that counts its argument down to 0 in a loop, then, when `pad` > 0 and
/// the argument was 0, runs `pad` loops that never branch (so a function with a big `pad`
/// is too big for inline interruption points and gets compact ones).
fn hot(pad: u32) -> Vec<u8> {
    let mut f = Function::new([]);
    for ins in [Instruction::Block(BlockType::Empty), Instruction::LocalGet(0), Instruction::BrIf(0)] {
        f.instruction(&ins);
    }
    for _ in 0..pad {
        f.instruction(&Instruction::Loop(BlockType::Empty));
        f.instruction(&Instruction::End);
    }
    for ins in [
        Instruction::End,
        Instruction::Loop(BlockType::Empty),
        Instruction::LocalGet(0),
        Instruction::I32Const(1),
        Instruction::I32Sub,
        Instruction::LocalTee(0),
        Instruction::BrIf(0),
        Instruction::End,
        Instruction::LocalGet(0),
        Instruction::End,
    ] {
        f.instruction(&ins);
    }
    module(std::iter::once(f), HOT_ITERATIONS)
}

const HOT_ITERATIONS: i32 = 300_000_000;

/// Peak RSS (VmHWM) in bytes since the last reset, and a reset.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok());
    kb.unwrap_or(0) * 1024
}
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok());
    kb.unwrap_or(0) * 1024
}

/// Median load time and the peak RSS a load added above the RSS before it.
fn load(engine: &Engine, wasm: &[u8]) -> (f64, u64, Result<Module, String>) {
    let (mut times, mut peaks, mut last) = (vec![], vec![], None);
    for _ in 0..reps() {
        drop(last.take());
        reset_peak_rss();
        let before = rss();
        let t = Instant::now();
        let m = Module::new(engine, wasm).map_err(|e| format!("{e:#}"));
        times.push(t.elapsed().as_secs_f64());
        peaks.push(peak_rss().saturating_sub(before) as f64);
        last = Some(m);
    }
    (median(times), median(peaks) as u64, last.unwrap())
}

fn row(name: &str, module_bytes: usize, time: f64, peak: u64, result: &str) {
    println!("| {name} | {:.1} MB | {:.3} s | {} MB | {result} |", module_bytes as f64 / 1e6, time, peak >> 20);
}

fn main() {
    let engine = Engine::new(&EngineConfig::default()).unwrap();
    let tiny = wat::parse_str(r#"(module (func (export "_start")))"#).unwrap();
    println!("| load | module | time (median of {}) | peak RSS added | result |", reps());
    println!("|---|---|---|---|---|");

    if wanted("tiny") {
        let (t, p, _) = load(&engine, &tiny);
        row("tiny module, alone", tiny.len(), t, p, "ok");
        // Beside a big load on another host thread: loads of the tiny module while it goes on.
        let big = functions(60_000);
        let busy = Arc::new(AtomicBool::new(true));
        let (e, b, w) = (engine.clone(), busy.clone(), big.clone());
        let other = std::thread::spawn(move || {
            let t = Instant::now();
            Module::new(&e, &w).unwrap();
            b.store(false, Ordering::SeqCst);
            t.elapsed().as_secs_f64()
        });
        std::thread::sleep(Duration::from_millis(100));
        let mut times = vec![];
        while busy.load(Ordering::SeqCst) && times.len() < 50 {
            let t = Instant::now();
            Module::new(&engine, &tiny).unwrap();
            times.push(t.elapsed().as_secs_f64());
            std::thread::sleep(Duration::from_millis(20));
        }
        let big_time = other.join().unwrap();
        let worst = times.iter().copied().fold(0.0, f64::max);
        row(
            &format!(
                "tiny module, beside a 60 000-function load ({big_time:.2} s), {} loads, worst {worst:.4} s",
                times.len()
            ),
            tiny.len(),
            median(times),
            0,
            "ok",
        );
    }
    for (name, wasm) in [("100 000 functions", 100_000), ("100 000-deep call chain", 100_000)]
        .into_iter()
        .filter(|(name, _)| wanted(name))
        .map(|(name, n)| (name, if name.contains("chain") { chain(n) } else { functions(n) }))
    {
        let (t, p, m) = load(&engine, &wasm);
        row(name, wasm.len(), t, p, m.as_ref().map_or_else(String::as_str, |_| "ok"));
    }
    if wanted("loops") {
        // 10^6 loops that never branch, 4 bytes each (`loop nop end`).
        let wasm = loops(1_000_000, &[Instruction::Nop]);
        let (t, p, m) = load(&engine, &wasm);
        row("one function, 10^6 loops of 4 bytes", wasm.len(), t, p, m.as_ref().map_or_else(String::as_str, |_| "ok"));
        // 1.05 * 10^6 branching loops of 7 bytes (`loop local.get 0 br_if 0 end`): a valid
        // body near the limit, too big even for compact points (refused with its offset).
        let wasm = loops(1_050_000, &[Instruction::LocalGet(0), Instruction::BrIf(0)]);
        let (t, p, m) = load(&engine, &wasm);
        row(
            "one function, 1.05 * 10^6 branching loops of 7 bytes",
            wasm.len(),
            t,
            p,
            m.as_ref().map_or_else(String::as_str, |_| "ok"),
        );
    }
    if wanted("hot") {
        println!();
        println!("| hot loop, 3*10^8 iterations | run time (median of {}) |", reps());
        println!("|---|---|");
        for (name, pad) in [("inline interruption point", 0), ("compact interruption point (a call)", 2_000_000)] {
            let m = Module::new(&engine, &hot(pad)).unwrap();
            let mut times = vec![];
            for _ in 0..reps() {
                times.push(time_hot(&m));
            }
            println!("| {name} | {:.3} s |", median(times));
        }
    }
}

/// The time of one run of the module, whose `_start` calls `f(HOT_ITERATIONS)`.
fn time_hot(module: &Module) -> f64 {
    let t = Instant::now();
    let exit = Run::start(module, &RunConfig::default()).unwrap().wait();
    assert_eq!(exit.kind, wasithreads::ExitKind::Code, "{exit:?}");
    t.elapsed().as_secs_f64()
}
