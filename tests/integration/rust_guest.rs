//! Real Rust `std::thread` programs built for wasm32-wasip1-threads (`tests/guests/`):
//! channels, mutexes, shared descriptors, exits and panics in threads, and a module linked
//! to define its shared memory itself.

use crate::common::*;
use wasithreads::config::Preopen;
use wasithreads::{ExitKind, Module, RunConfig, ThreadExit};

/// A Rust program's `std::thread`, `Mutex` and channels work across sixteen threads:
/// what real toolchain output needs of spawning, atomics and waits.
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

/// Threads of a Rust program share one descriptor: eight threads write 25 lines each
/// through one file, and every line arrives whole.
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

/// `std::process::exit` in a thread ends the run with its code while main is blocked in
/// `join`.
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

/// A panic in a thread (Rust's `panic = abort` on wasm) is a trap of that thread that
/// ends the run.
#[test]
fn panic_in_a_thread_is_a_trap_of_that_thread() {
    let e = engine();
    let m = Module::new(&e, rust_guest()).unwrap();
    let (exit, _) = run_watched(&m, &rust_config(&["panic-in-thread"]));
    assert_eq!(exit.kind, ExitKind::Trap, "{exit:?}");
    assert!(exit.tid > 0);
    assert!(exit.message.unwrap().contains("wasm trap"));
}

/// Joined threads free their place under `max_threads`: 250 rounds of spawning and
/// joining 4 threads with a limit of 4 run to the end, every thread returning.
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

/// A real toolchain's module that defines its shared memory: Rust `std::thread`, linked
/// by rustc's rust-lld without `--import-memory` (`tests/guests/defined-memory`).
#[test]
fn a_rust_guest_linked_to_define_its_shared_memory_shares_it_between_threads() {
    let root = env!("CARGO_MANIFEST_DIR");
    let linker = format!("{root}/tests/guests/defined-memory/link.sh");
    let wasm = crate::common::build_guest_with(
        "tests/guests/defined-memory/Cargo.toml",
        "defined-memory",
        false,
        &[("CARGO_TARGET_WASM32_WASIP1_THREADS_LINKER", &linker)],
    );
    let bytes = std::fs::read(&wasm).unwrap();
    let defines_shared = wasmparser::Parser::new(0).parse_all(&bytes).any(|p| match p.unwrap() {
        wasmparser::Payload::MemorySection(r) => r.into_iter().any(|m| m.unwrap().shared),
        _ => false,
    });
    assert!(defines_shared, "the guest was linked to define its shared memory");
    let module = Module::new(&engine(), &bytes).unwrap();
    let (exit, _) = run_watched(&module, &RunConfig::default());
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 44), "{exit:?}");
}
