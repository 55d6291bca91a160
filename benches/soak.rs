//! Soak: 10 000 sequential runs of a threaded guest on one engine (alternating proc_exit
//! and trap, 3 threads each: spinning, waiting forever, sleeping), sampling OS threads,
//! open fds and RSS every 1000 runs. They must stay flat within noise.
//!
//!   cargo bench --bench soak            (WT_SOAK_RUNS=N to change the count)

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use wasithreads::{ExitKind, Run, RunConfig};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status.lines().find(|l| l.starts_with("VmRSS:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn main() {
    let runs: usize = std::env::var("WT_SOAK_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let e = engine();
    let exiting =
        load(&e, &guest(&format!("{} (call $proc_exit (i32.const 3))", spawn_all(&[SPIN, WAIT_FOREVER, SLEEP_HOUR]))));
    let trapping = load(&e, &guest(&format!("{} unreachable", spawn_all(&[SPIN, WAIT_FOREVER, SLEEP_HOUR]))));
    let c = RunConfig::default();
    let start = Instant::now();
    println!("| runs | OS threads | open fds | RSS (KiB) |");
    println!("|---|---|---|---|");
    for i in 0..=runs {
        if i % 1000 == 0 {
            // Let idle pool threads (0.5 s) go before counting.
            std::thread::sleep(Duration::from_millis(700));
            println!("| {i} | {} | {} | {} |", os_threads(), open_fds(), rss_kib());
        }
        if i == runs {
            break;
        }
        let (m, want) = if i % 2 == 0 { (&exiting, ExitKind::Code) } else { (&trapping, ExitKind::Trap) };
        let exit = Run::start(m, &c).unwrap().wait();
        assert_eq!(exit.kind, want, "run {i}: {exit:?}");
    }
    println!("\n{runs} runs ({} guest threads) in {:.1} s", runs * 4, start.elapsed().as_secs_f64());
}
