//! Teardown latency: from the moment a thread calls `proc_exit` (its exit callback runs
//! right after) until `Run::wait` returns, with 8 other threads blocked: 3 in
//! `memory.atomic.wait32` forever, 3 sleeping an hour in `poll_oneoff`, 2 reading an
//! empty stdin pipe. Prints the median, min and max of 31 runs.
//!
//! Run: `cargo bench --bench teardown`

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasithreads::{Engine, EngineConfig, Module, Run, RunConfig, ThreadExit};

fn main() {
    // An empty pipe as stdin, so the readers really block.
    let (reader, writer) = std::io::pipe().unwrap();
    rustix::stdio::dup2_stdin(&reader).unwrap();
    std::mem::forget(writer);

    let spawn: String = [1, 1, 1, 2, 2, 2, 3, 3].iter().map(|m| format!("(drop (call $spawn (i32.const {m})))\n")).collect();
    let body = format!("{spawn} (call $wait_started (i32.const 8)) (call $sleep (i64.const 5000000)) (call $proc_exit (i32.const 0))");
    let wat = include_str!("../tests/common/guest.wat").replace("MAIN_BODY", &body);
    let engine = Engine::new(&EngineConfig::default()).unwrap();
    let module = Module::new(&engine, wat.as_bytes()).unwrap();

    let exited_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let mut config = RunConfig::default();
    let stamp = exited_at.clone();
    config.on_thread_exit = Some(Arc::new(move |_, how| {
        if matches!(how, ThreadExit::Exited(_)) {
            *stamp.lock().unwrap() = Some(Instant::now());
        }
    }));
    let mut samples: Vec<Duration> = (0..31)
        .map(|_| {
            let run = Run::start(&module, &config).unwrap();
            let exit = run.wait();
            let end = Instant::now();
            assert_eq!(exit.code, 0);
            end - exited_at.lock().unwrap().take().expect("main called proc_exit")
        })
        .collect();
    samples.sort();
    println!(
        "teardown after proc_exit with 8 blocked threads: median {:?}, min {:?}, max {:?} ({} runs)",
        samples[samples.len() / 2],
        samples[0],
        samples[samples.len() - 1],
        samples.len()
    );
}
