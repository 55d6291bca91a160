//! A real Rust `std::thread` program built for wasm32-wasip1-threads.

mod common;

use common::*;
use wasithreads::config::Preopen;
use wasithreads::{ExitKind, Module, ThreadExit};

#[test]
fn channel_and_mutex_across_sixteen_threads() {
    let e = engine();
    let m = Module::new(&e, rust_guest()).unwrap();
    let exits = Exits::default();
    let mut c = rust_config(&["sum"]);
    exits.install(&mut c);
    let (exit, _) = run_watched(&m, &c);
    assert_eq!((exit.kind, exit.code, exit.tid), (ExitKind::Code, 0, 0));
    let got = exits.sorted();
    assert_eq!(got.len(), 17, "main and 16 threads each report once: {got:?}");
    assert_eq!(got[0], (0, ThreadExit::Exited(0)));
    assert!(got[1..].iter().all(|(_, h)| *h == ThreadExit::Returned), "{got:?}");
}

#[test]
fn threads_share_one_file_descriptor() {
    let e = engine();
    let m = Module::new(&e, rust_guest()).unwrap();
    let dir = temp_dir("shared-fd");
    let mut c = rust_config(&["shared-fd", "/out/shared.txt"]);
    c.preopens.push(Preopen { host: dir.clone(), guest: "/out".into(), read_only: false });
    let (exit, _) = run_watched(&m, &c);
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 0), "{exit:?}");
    let text = std::fs::read_to_string(dir.join("shared.txt")).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    let mut expected: Vec<String> = (0..8).flat_map(|t| (0..25).map(move |i| format!("t{t} {i}"))).collect();
    expected.sort();
    assert_eq!(lines, expected);
}

#[test]
fn exit_from_a_thread_while_main_is_in_join() {
    let e = engine();
    let m = Module::new(&e, rust_guest()).unwrap();
    let exits = Exits::default();
    let mut c = rust_config(&["exit-while-join"]);
    exits.install(&mut c);
    let (exit, _) = run_watched(&m, &c);
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 42), "{exit:?}");
    assert!(exit.tid > 0, "a spawned thread ended the run: {exit:?}");
    let got = exits.sorted();
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got.contains(&(exit.tid, ThreadExit::Exited(42))));
    assert!(got[0].0 == 0 && got[0].1.is_terminated(), "{got:?}");
}

#[test]
fn panic_in_a_thread_is_a_trap_of_that_thread() {
    let e = engine();
    let m = Module::new(&e, rust_guest()).unwrap();
    let (exit, _) = run_watched(&m, &rust_config(&["panic-in-thread"]));
    assert_eq!(exit.kind, ExitKind::Trap, "{exit:?}");
    assert!(exit.tid > 0);
    assert!(exit.message.unwrap().contains("wasm trap"));
}

#[test]
fn joined_threads_free_their_place_under_the_thread_limit() {
    let e = engine();
    let m = Module::new(&e, rust_guest()).unwrap();
    let exits = Exits::default();
    // 250 rounds of spawn 4 + join 4 with a limit of 4: a thread the guest has joined may
    // still be returning from wasm when the next spawn comes; that spawn must not fail
    // (std's thread::spawn would panic, which is a trap).
    let mut c = rust_config(&["rounds", "250"]);
    c.limits.max_threads = 4;
    exits.install(&mut c);
    let (exit, _) = run_watched(&m, &c);
    assert_eq!((exit.kind, exit.code, exit.message.as_deref()), (ExitKind::Code, 0, None));
    let got = exits.sorted();
    assert_eq!(got.len(), 1001, "main and 1000 threads each report once");
    assert!(got[1..].iter().all(|(_, h)| *h == ThreadExit::Returned), "{:?}", &got[..5]);
}
