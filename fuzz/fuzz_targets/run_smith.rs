//! Runs wasm-smith modules shaped like wasi-threads programs: they import a shared memory,
//! `wasi::thread-spawn`, `proc_exit` and `fd_write`, export `_start` and
//! `wasi_thread_start`, and may use atomics (waits and notifies included). Each run gets a
//! short timeout and a low thread limit; whatever the module does, the run must end with
//! one result and the process must survive.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use wasithreads::io::Output;
use wasithreads::{Engine, EngineConfig, ExitKind, Module, Run, RunConfig};

const SHAPE: &str = r#"(module
  (import "wasi" "thread-spawn" (func (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (import "env" "memory" (memory 1 4 shared))
  (func (export "_start"))
  (func (export "wasi_thread_start") (param i32 i32)))"#;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new(&EngineConfig { max_wasm_stack: 256 << 10, ..Default::default() }).unwrap())
}

fn config() -> wasm_smith::Config {
    static SHAPE_WASM: OnceLock<Vec<u8>> = OnceLock::new();
    let mut c = wasm_smith::Config::default();
    c.module_shape = Some(SHAPE_WASM.get_or_init(|| wat::parse_str(SHAPE).unwrap()).clone());
    c.threads_enabled = true;
    c.max_memories = 1;
    c.memory64_enabled = false;
    c.gc_enabled = false;
    c.exceptions_enabled = false;
    c.custom_page_sizes_enabled = false;
    c.shared_everything_threads_enabled = false;
    c.wide_arithmetic_enabled = false;
    c.max_funcs = 20;
    c.max_instructions = 200;
    c
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(generated) = wasm_smith::Module::new(config(), &mut u) else { return };
    let bytes = generated.to_bytes();
    let Ok(module) = Module::new(engine(), &bytes) else { return };
    let mut c = RunConfig::default();
    c.timeout = Some(Duration::from_millis(50));
    c.limits.max_threads = 4;
    c.limits.max_memory = Some(4 << 16);
    c.stdout = Output::Null;
    c.stderr = Output::Null;
    let Ok(run) = Run::start(&module, &c) else { return };
    let exit = run.wait();
    assert!(matches!(exit.kind, ExitKind::Code | ExitKind::Trap | ExitKind::Timeout), "{exit:?}");
    assert_eq!(run.try_wait(), Some(exit), "one result, and it stays");
});
