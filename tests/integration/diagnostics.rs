//! Diagnostics point at the user's own module: trap backtraces and the place every thread
//! was stopped carry the function indices and code offsets of the bytes the host loaded
//! (what `wasm-objdump -d` shows of them), not of the module wasithreads rewrote — also
//! for serialized and deserialized modules.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use crate::common::{engine, run_watched, Exits};
use wasithreads::io::Input;
use wasithreads::{ExitKind, Module, Run, RunConfig, ThreadExit};
use wasmparser::{Operator, Parser, Payload};

/// One function body of a module: its index, where it starts and ends, and each
/// instruction's offset and `Debug` text.
struct Body {
    start: usize,
    ops: Vec<(usize, String)>,
}

impl Body {
    /// The offset of the `n`th instruction (0-based) whose `Debug` text starts with `prefix`.
    fn nth(&self, prefix: &str, n: usize) -> usize {
        let found: Vec<usize> = self.ops.iter().filter(|(_, op)| op.starts_with(prefix)).map(|(o, _)| *o).collect();
        *found.get(n).unwrap_or_else(|| panic!("no {prefix} #{n} in {:?}", self.ops))
    }

    fn find(&self, prefix: &str) -> usize {
        self.nth(prefix, 0)
    }
}

/// The body of function `index` of `wasm` (the module's original bytes).
fn body(wasm: &[u8], index: u32) -> Body {
    let mut imports = 0;
    let mut next = 0;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.unwrap() {
            Payload::ImportSection(r) => {
                imports =
                    r.into_imports().filter(|i| matches!(i.as_ref().unwrap().ty, wasmparser::TypeRef::Func(_))).count()
                        as u32;
            }
            Payload::CodeSectionEntry(b) => {
                if imports + next == index {
                    let mut ops = Vec::new();
                    let mut r = b.get_operators_reader().unwrap();
                    while !r.eof() {
                        let (op, off) = r.read_with_offset().unwrap();
                        ops.push((off, format!("{op:?}")));
                    }
                    return Body { start: b.range().start, ops };
                }
                next += 1;
            }
            _ => {}
        }
    }
    panic!("no function {index}");
}

/// The frames of a backtrace text: (name, module offset) per line after "wasm backtrace:".
fn frames(text: &str) -> Vec<(String, Option<usize>)> {
    let bt = text.split("wasm backtrace:").nth(1).unwrap_or_else(|| panic!("no backtrace in {text:?}"));
    bt.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let rest = l.trim().split_once(": ").unwrap().1;
            match rest.rsplit_once(" (module offset 0x") {
                Some((name, off)) => {
                    (name.to_string(), Some(usize::from_str_radix(off.trim_end_matches(')'), 16).unwrap()))
                }
                None => (rest.to_string(), None),
            }
        })
        .collect()
}

/// A trap in `$boom`, which comes after a function with a rewritten wait (so its index
/// and offsets moved in the rewrite), called from `_start` (no name: `<wasm function N>`),
/// or in `$early`, which comes before it. `which` picks the one `_start` calls.
fn trapping_module(which: &str) -> String {
    format!(
        r#"(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "env" "memory" (memory 1 1 shared))
  (func $early (param i32) (result i32) (i32.div_u (i32.const 1) (local.get 0)))
  (func $waits (param i32) (result i32)
    (drop (memory.atomic.notify (local.get 0) (i32.const 1)))
    (memory.atomic.wait32 (local.get 0) (i32.const 1) (i64.const 0)))
  (func $boom (param i32)
    (loop $l (br_if $l (i32.eqz (i32.const 1))))
    (drop (call $waits (local.get 0)))
    unreachable)
  (func (export "_start") (drop (call $waits (i32.const 0))) {which})
  (func (export "wasi_thread_start") (param i32 i32)))"#
    )
}

fn trap_text(module: &Module) -> String {
    let (exit, _) = run_watched(module, &RunConfig::default());
    assert_eq!((exit.kind, exit.tid), (ExitKind::Trap, 0), "{exit:?}");
    exit.message.unwrap()
}

/// Runs `trapping_module(call)`: the trap's reason contains `reason`, and its backtrace is
/// function `func` (named `name`) at its first `op`, called from `_start` (function 5).
fn check_trap(call: &str, reason: &str, func: u32, name: &str, op: &str) {
    let wasm = wat::parse_str(trapping_module(call)).unwrap();
    let (trapped, start) = (body(&wasm, func), body(&wasm, 5));
    let text = trap_text(&Module::new(&engine(), &wasm).unwrap());
    assert!(text.starts_with("wasm trap: ") && text.contains(reason), "{text}");
    let call_site = start.find(&format!("Call {{ function_index: {func} }}"));
    assert_eq!(
        frames(&text),
        [(name.to_string(), Some(trapped.find(op))), ("<wasm function 5>".to_string(), Some(call_site))],
        "{text}"
    );
}

/// A trap after atomics the rewrite changed is reported at the function index and code
/// offset of the bytes the host loaded (what `wasm-objdump -d` shows of them), not of the
/// rewritten module: users read backtraces against their own module.
#[test]
fn a_trap_after_rewritten_atomics_names_the_original_function_and_offset() {
    check_trap("(call $boom (i32.const 0))", "wasm `unreachable` instruction executed", 4, "boom", "Unreachable");
}

/// A trap before the rewritten atomics in the same function is reported at its original
/// offset too.
#[test]
fn a_trap_before_rewritten_atomics_names_the_original_function_and_offset() {
    check_trap("(drop (call $early (i32.const 0)))", "integer divide by zero", 2, "early", "I32DivU");
}

/// A serialized and deserialized module reports the same original offsets as the one
/// loaded, and Wasmtime's own serialized bytes (without this library's header) are refused
/// with a message.
#[test]
fn a_deserialized_module_reports_the_same_offsets() {
    let wasm = wat::parse_str(trapping_module("(call $boom (i32.const 0))")).unwrap();
    let engine = engine();
    let loaded = Module::new(&engine, &wasm).unwrap();
    let bytes = loaded.serialize().unwrap();
    // SAFETY: the bytes were just made by `serialize` with this engine.
    let back = unsafe { Module::deserialize(&engine, &bytes) }.unwrap();
    assert_eq!(frames(&trap_text(&back)), frames(&trap_text(&loaded)));
    assert_eq!(frames(&trap_text(&back))[0].1, Some(body(&wasm, 4).find("Unreachable")));
    // Wasmtime's own bytes, without wasithreads' header, are refused with a message.
    // SAFETY: bytes serialized by a wasithreads engine, some damaged on purpose: the wrapper's
    // header, settings and length checks refuse damaged ones before Wasmtime reads them.
    let err = unsafe { Module::deserialize(&engine, &loaded.wasmtime().serialize().unwrap()) }.err().unwrap();
    assert!(format!("{err:#}").contains("not a module serialized by this version of wasithreads"), "{err:#}");
}

/// Eight threads in four places (two each): a busy loop, a wait on the shared memory,
/// `poll_oneoff` on a one-hour clock, `fd_read` of a stdin pipe nobody writes; the main
/// thread waits too. `$place` sends thread `tid` to place `(tid - 1) % 4`.
const EIGHT_THREADS: &str = r#"(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "env" "memory" (memory 1 1 shared))
  (func $spin (loop $l (br $l)))
  (func $waiter (drop (memory.atomic.wait32 (i32.const 0x80) (i32.const 0) (i64.const -1))))
  (func $sleeper
    (i64.store (i32.const 0x200) (i64.const 0))
    (i32.store8 (i32.const 0x208) (i32.const 0))
    (i32.store (i32.const 0x210) (i32.const 1))
    (i64.store (i32.const 0x218) (i64.const 3600000000000))
    (i64.store (i32.const 0x220) (i64.const 0))
    (i32.store16 (i32.const 0x228) (i32.const 0))
    (drop (call $poll (i32.const 0x200) (i32.const 0x300) (i32.const 1) (i32.const 0x100))))
  (func $reader
    (i32.store (i32.const 0x400) (i32.const 0x500))
    (i32.store (i32.const 0x404) (i32.const 16))
    (drop (call $read (i32.const 0) (i32.const 0x400) (i32.const 1) (i32.const 0x410))))
  (func $place (param i32)
    (block (block (block (block (br_table 0 1 2 3 (local.get 0)))
      (call $spin) (return))
      (call $waiter) (return))
      (call $sleeper) (return))
    (call $reader))
  (func $thread_start (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (drop (i32.atomic.rmw.add (i32.const 0x40) (i32.const 1)))
    (call $place (local.get $arg)))
  (func $main (export "_start") (local $i i32)
    (loop $l
      (drop (call $spawn (i32.rem_u (local.get $i) (i32.const 4))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 8))))
    (loop $arrived (br_if $arrived (i32.ne (i32.atomic.load (i32.const 0x40)) (i32.const 8))))
    (call $waiter)))"#;

/// A timeout reports where each of eight threads was stopped (spinning, waiting,
/// sleeping, reading stdin...), at the original function indices and offsets.
#[test]
fn a_timeout_reports_where_each_of_eight_threads_was_in_the_original_offsets() {
    let wasm = wat::parse_str(EIGHT_THREADS).unwrap();
    // Imports are functions 0-2; then spin 3, waiter 4, sleeper 5, reader 6, place 7,
    // thread_start 8, main 9.
    let (spin, waiter, sleeper, reader, place) =
        (body(&wasm, 3), body(&wasm, 4), body(&wasm, 5), body(&wasm, 6), body(&wasm, 7));
    let thread_start = body(&wasm, 8);
    let main = body(&wasm, 9);
    let (pipe, writer) = std::io::pipe().unwrap();
    let exits = Exits::default();
    let mut c = RunConfig { timeout: Some(Duration::from_millis(1500)), ..RunConfig::default() };
    c.stdin = Input::File(Arc::new(std::fs::File::from(OwnedFd::from(pipe))));
    exits.install(&mut c);
    let (exit, _) = run_watched(&Module::new(&engine(), &wasm).unwrap(), &c);
    drop(writer);
    assert_eq!(exit.kind, ExitKind::Timeout, "{exit:?}");
    let got = exits.sorted();
    assert_eq!(got.len(), 9, "{got:?}");
    let call_of = |b: &Body, f: u32| Some(b.find(&format!("Call {{ function_index: {f} }}")));
    for (tid, how) in &got {
        let ThreadExit::Terminated { backtrace: Some(bt) } = how else { panic!("thread {tid}: {how:?}") };
        let frames = frames(bt);
        let names: Vec<&str> = frames.iter().map(|(n, _)| n.as_str()).collect();
        if *tid == 0 {
            assert_eq!(names, ["waiter", "main"], "{bt}");
            assert_eq!(frames[0].1, Some(waiter.find("MemoryAtomicWait32")), "{bt}");
            assert_eq!(frames[1].1, call_of(&main, 4), "{bt}");
            continue;
        }
        let place_index = (tid - 1) % 4;
        let (inner, callee) = match place_index {
            0 => ("spin", 3),
            1 => ("waiter", 4),
            2 => ("sleeper", 5),
            _ => ("reader", 6),
        };
        assert_eq!(names, [inner, "place", "thread_start"], "thread {tid}: {bt}");
        let at = frames[0].1.unwrap();
        match place_index {
            // Stopped at its loop's interruption point: reported at the `loop`.
            0 => assert_eq!(at, spin.find("Loop"), "{bt}"),
            1 => assert_eq!(at, waiter.find("MemoryAtomicWait32"), "{bt}"),
            2 => assert_eq!(at, sleeper.find("Call { function_index: 1 }"), "{bt}"),
            _ => assert_eq!(at, reader.find("Call { function_index: 2 }"), "{bt}"),
        }
        assert_eq!(frames[1].1, call_of(&place, callee), "thread {tid}: {bt}");
        assert_eq!(frames[2].1, call_of(&thread_start, 7), "thread {tid}: {bt}");
    }
}

/// The main thread sets a global and writes a marker into the shared memory, then traps
/// in `$boom` while thread 1 waits in `$waiter`.
const TRAP_WITH_A_WAITER: &str = r#"(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "env" "memory" (memory 2 2 shared))
  (global $g (mut i32) (i32.const 0))
  (func $waiter (drop (memory.atomic.wait32 (i32.const 0x80) (i32.const 0) (i64.const -1))))
  (func $thread_start (export "wasi_thread_start") (param i32 i32)
    (i32.atomic.store (i32.const 0x40) (i32.const 1))
    (call $waiter))
  (func $boom (global.set $g (i32.const 1234)) unreachable)
  (func $main (export "_start")
    (drop (call $spawn (i32.const 0)))
    (loop $l (br_if $l (i32.eqz (i32.atomic.load (i32.const 0x40)))))
    (i64.store (i32.const 0x11000) (i64.const 0x1122334455667788))
    (call $boom)))"#;

/// A `corestack` section's thread name and frames (funcidx, codeoffset).
pub(crate) fn corestack(data: &[u8]) -> (String, Vec<(u32, u32)>) {
    let mut r = wasmparser::BinaryReader::new(data, 0);
    assert_eq!(r.read_u8().unwrap(), 0);
    let name = r.read_string().unwrap().to_string();
    let frames = (0..r.read_var_u32().unwrap())
        .map(|_| {
            assert_eq!(r.read_u8().unwrap(), 0);
            let _instance = r.read_var_u32().unwrap();
            let func = r.read_var_u32().unwrap();
            let offset = r.read_var_u32().unwrap();
            assert_eq!((r.read_var_u32().unwrap(), r.read_var_u32().unwrap()), (0, 0), "no locals or stack values");
            (func, offset)
        })
        .collect();
    (name, frames)
}

/// A trap writes a Wasm core dump holding every thread's stack (at original offsets),
/// the globals and the shared memory, valid for a Wasm parser.
#[test]
fn a_trap_writes_a_core_dump_with_every_thread_and_the_shared_memory() {
    let wasm = wat::parse_str(TRAP_WITH_A_WAITER).unwrap();
    // Function 0 is the import; waiter 1, thread_start 2, boom 3, main 4.
    let (waiter, thread_start, boom, main) = (body(&wasm, 1), body(&wasm, 2), body(&wasm, 3), body(&wasm, 4));
    let path = crate::common::temp_dir("coredump").join("core.wasm");
    let c = RunConfig { coredump_path: Some(path.clone()), ..RunConfig::default() };
    let (exit, _) = run_watched(&Module::new(&engine(), &wasm).unwrap(), &c);
    assert_eq!((exit.kind, exit.tid), (ExitKind::Trap, 0), "{exit:?}");
    let dump = std::fs::read(&path).expect("the core dump was written");
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all()).validate_all(&dump).unwrap();

    let (mut customs, mut stacks, mut globals, mut memories, mut marker) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), false);
    for payload in Parser::new(0).parse_all(&dump) {
        match payload.unwrap() {
            Payload::CustomSection(s) => {
                customs.push(s.name().to_string());
                if s.name() == "corestack" {
                    stacks.push(corestack(s.data()));
                }
            }
            Payload::GlobalSection(r) => {
                for g in r {
                    let mut ops = g.unwrap().init_expr.get_operators_reader();
                    globals.push(format!("{:?}", ops.read().unwrap()));
                }
            }
            Payload::MemorySection(r) => memories.extend(r.into_iter().map(|m| m.unwrap())),
            Payload::DataSection(r) => {
                for d in r {
                    let d = d.unwrap();
                    let wasmparser::DataKind::Active { offset_expr, .. } = d.kind else { panic!("passive data") };
                    let Operator::I32Const { value } = offset_expr.get_operators_reader().read().unwrap() else {
                        panic!()
                    };
                    let at = 0x11000 - value as usize;
                    if value as usize <= 0x11000 && at + 8 <= d.data.len() {
                        marker |= d.data[at..at + 8] == 0x1122334455667788u64.to_le_bytes();
                    }
                }
            }
            _ => {}
        }
    }
    assert_eq!(&customs[..3], ["core", "coremodules", "coreinstances"], "{customs:?}");
    assert_eq!(globals, ["I32Const { value: 1234 }"], "the trapping thread's global, as it was at the trap");
    assert_eq!(memories.len(), 1);
    assert!(memories[0].shared && memories[0].initial == 2, "{memories:?}");
    assert!(marker, "the shared memory's contents are in the dump");
    let rel = |b: &Body, at: usize| (at - b.start) as u32;
    assert_eq!(
        stacks,
        [
            (
                "main".to_string(),
                vec![
                    (3, rel(&boom, boom.find("Unreachable"))),
                    (4, rel(&main, main.find("Call { function_index: 3 }")))
                ]
            ),
            (
                "thread 1".to_string(),
                vec![
                    (1, rel(&waiter, waiter.find("MemoryAtomicWait32"))),
                    (2, rel(&thread_start, thread_start.find("Call { function_index: 1 }")))
                ]
            ),
        ]
    );
}

/// A core dump path whose directory cannot be opened fails the start with the reason,
/// rather than losing the dump at the trap.
#[test]
fn a_core_dump_path_in_a_directory_that_cannot_be_opened_fails_the_start() {
    let wasm = wat::parse_str(TRAP_WITH_A_WAITER).unwrap();
    let c = RunConfig { coredump_path: Some("/nonexistent-wasithreads-dir/core.wasm".into()), ..RunConfig::default() };
    let err = Run::start(&Module::new(&engine(), &wasm).unwrap(), &c).err().expect("the start fails");
    assert!(
        format!("{err:#}")
            .contains("opening the directory of the core dump path /nonexistent-wasithreads-dir/core.wasm"),
        "{err:#}"
    );
}

/// A core dump that cannot be written (its directory removed during the run) is reported
/// as a diagnostic, and the run's trap result stands.
#[test]
fn a_core_dump_that_cannot_be_written_is_reported_and_the_result_stands() {
    // The directory goes away while the guest runs (it traps after 300 ms).
    let wat = r#"(module
      (import "env" "memory" (memory 1 1 shared))
      (func (export "_start")
        (drop (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const 300000000)))
        unreachable))"#;
    let dir = crate::common::temp_dir("coredump-gone");
    let said = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = said.clone();
    let c = RunConfig {
        coredump_path: Some(dir.join("core.wasm")),
        hooks: wasithreads::Hooks {
            on_diagnostic: Some(Arc::new(move |tid, m: &str| log.lock().unwrap().push((tid, m.to_string())))),
            ..Default::default()
        },
        ..RunConfig::default()
    };
    let run = Run::start(&Module::new(&engine(), wat.as_bytes()).unwrap(), &c).unwrap();
    std::fs::remove_dir(&dir).unwrap();
    let exit = crate::common::within(Duration::from_secs(60), move || run.wait());
    assert_eq!((exit.kind, exit.tid), (ExitKind::Trap, 0), "{exit:?}");
    let said = said.lock().unwrap();
    assert!(
        said.iter().any(|(tid, m)| *tid == 0 && m.contains("writing the core dump to") && m.contains("core.wasm")),
        "{said:?}"
    );
}

/// A guest that can write the dump's directory plants `core.wasm`, a symlink to a file
/// outside it, then traps: the dump replaces the symlink and the file is untouched.
#[test]
fn a_guest_cannot_redirect_the_core_dump_through_a_symlink() {
    let wat = r#"(module
      (import "wasi_snapshot_preview1" "path_symlink" (func $symlink (param i32 i32 i32 i32 i32) (result i32)))
      (import "env" "memory" (memory 1 1 shared))
      (data (i32.const 16) "../victim.txt")
      (data (i32.const 32) "core.wasm")
      (func (export "_start")
        (if (call $symlink (i32.const 16) (i32.const 13) (i32.const 3) (i32.const 32) (i32.const 9)) (then (return)))
        unreachable))"#;
    let root = crate::common::temp_dir("coredump-symlink");
    let (sandbox, victim) = (root.join("sandbox"), root.join("victim.txt"));
    std::fs::create_dir(&sandbox).unwrap();
    std::fs::write(&victim, b"precious").unwrap();
    let mut c = RunConfig { coredump_path: Some(sandbox.join("core.wasm")), ..RunConfig::default() };
    c.preopens.push(wasithreads::Preopen { host: sandbox.clone(), guest: "/sb".into(), read_only: false });
    let (exit, _) = run_watched(&Module::new(&engine(), wat.as_bytes()).unwrap(), &c);
    assert_eq!(exit.kind, ExitKind::Trap, "the guest planted its symlink: {exit:?}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    let meta = std::fs::symlink_metadata(sandbox.join("core.wasm")).unwrap();
    assert!(meta.file_type().is_file(), "the dump replaced the symlink");
    assert!(std::fs::read(sandbox.join("core.wasm")).unwrap().starts_with(b"\0asm"));
}

/// A FIFO at the dump's path (nobody reads it) neither hangs the run nor gets the dump.
#[test]
fn a_fifo_at_the_core_dump_path_does_not_hang_the_run() {
    let dir = crate::common::temp_dir("coredump-fifo");
    let path = dir.join("core.wasm");
    crate::common::mkfifo(&path);
    let wasm = wat::parse_str(TRAP_WITH_A_WAITER).unwrap();
    let c = RunConfig { coredump_path: Some(path.clone()), ..RunConfig::default() };
    let (exit, _) = run_watched(&Module::new(&engine(), &wasm).unwrap(), &c);
    assert_eq!(exit.kind, ExitKind::Trap, "{exit:?}");
    assert!(std::fs::symlink_metadata(&path).unwrap().file_type().is_file(), "the dump replaced the FIFO");
}

/// No core dump is written when the run ends otherwise than by a trap (here a timeout).
#[test]
fn no_core_dump_is_written_when_the_run_does_not_trap() {
    let path = crate::common::temp_dir("no-coredump").join("core.wasm");
    let _ = std::fs::remove_file(&path);
    let wasm = wat::parse_str(EIGHT_THREADS).unwrap();
    let (pipe, _writer) = std::io::pipe().unwrap();
    let mut c = RunConfig {
        coredump_path: Some(path.clone()),
        timeout: Some(Duration::from_millis(300)),
        ..RunConfig::default()
    };
    c.stdin = Input::File(Arc::new(std::fs::File::from(OwnedFd::from(pipe))));
    let (exit, _) = run_watched(&Module::new(&engine(), &wasm).unwrap(), &c);
    assert_eq!(exit.kind, ExitKind::Timeout);
    assert!(!path.exists());
}
