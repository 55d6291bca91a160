//! The plugin guests (`tests/guests/plugin-c`, `tests/guests/plugin-rust`; built by
//! `common::plugin`): each is a threaded WASI reactor of the shape the plugin tests rely
//! on, and what `Module` makes of it today.

use std::collections::BTreeMap;

use crate::common::plugin::{c_plugin_bytes, rust_plugin_bytes};
use crate::common::*;
use wasithreads::{ErrorKind, Module};
use wasmparser::{ExternalKind, KnownCustom, Name, Parser, Payload, TypeRef};

/// What a module declares, read from its bytes: function signatures as `(i32, i32) -> (i64)`.
#[derive(Default, Debug)]
struct Declared {
    /// `module::name` -> signature, or `memory shared max=N` for a memory.
    imports: BTreeMap<String, String>,
    /// name -> signature, or `memory` for a memory.
    exports: BTreeMap<String, String>,
    /// The start function's name (from the name section).
    start: Option<String>,
    /// The names the name section gives functions and globals.
    functions: Vec<String>,
    globals: Vec<String>,
}

fn signature(ty: &wasmparser::FuncType) -> String {
    let list = |v: &[wasmparser::ValType]| v.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    format!("({}) -> ({})", list(ty.params()), list(ty.results()))
}

fn declared(bytes: &[u8]) -> Declared {
    let mut d = Declared::default();
    let mut types = Vec::new();
    let mut funcs = Vec::new(); // type index of every function, imports first
    let mut exports = Vec::new();
    let mut start = None;
    let mut functions = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.unwrap() {
            Payload::TypeSection(r) => types.extend(r.into_iter_err_on_gc_types().map(Result::unwrap)),
            Payload::ImportSection(r) => {
                for imp in r.into_imports() {
                    let imp = imp.unwrap();
                    let what = match imp.ty {
                        TypeRef::Func(t) => {
                            funcs.push(t);
                            signature(&types[t as usize])
                        }
                        TypeRef::Memory(m) => {
                            format!("memory{} max={:?}", if m.shared { " shared" } else { "" }, m.maximum)
                        }
                        other => format!("{other:?}"),
                    };
                    d.imports.insert(format!("{}::{}", imp.module, imp.name), what);
                }
            }
            Payload::FunctionSection(r) => funcs.extend(r.into_iter().map(Result::unwrap)),
            Payload::ExportSection(r) => exports.extend(r.into_iter().map(|e| {
                let e = e.unwrap();
                (e.name.to_string(), e.kind, e.index)
            })),
            Payload::StartSection { func, .. } => start = Some(func),
            Payload::CustomSection(c) => {
                if let KnownCustom::Name(names) = c.as_known() {
                    for n in names {
                        let named = |map: wasmparser::NameMap| -> Vec<(u32, String)> {
                            map.into_iter().map(|n| n.map(|n| (n.index, n.name.to_string())).unwrap()).collect()
                        };
                        match n.unwrap() {
                            Name::Function(map) => functions = named(map),
                            Name::Global(map) => d.globals = named(map).into_iter().map(|(_, n)| n).collect(),
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    d.start = start.and_then(|s| functions.iter().find(|(i, _)| *i == s)).map(|(_, n)| n.clone());
    d.functions = functions.into_iter().map(|(_, n)| n).collect();
    for (name, kind, index) in exports {
        let what = match kind {
            ExternalKind::Func => signature(&types[funcs[index as usize] as usize]),
            ExternalKind::Memory => "memory".into(),
            other => format!("{other:?}"),
        };
        d.exports.insert(name, what);
    }
    d
}

/// The exports both plugins have, with the same types (and meaning).
const BOTH_EXPORT: &[(&str, &str)] = &[
    ("memory", "memory"),
    ("_initialize", "() -> ()"),
    ("wasi_thread_start", "(i32, i32) -> ()"),
    ("malloc", "(i32) -> (i32)"),
    ("free", "(i32) -> ()"),
    ("add", "(i32, i32) -> (i32)"),
    ("spin", "(i32) -> (i32)"),
    ("stack_sum", "(i32) -> (i32)"),
    ("tls_counter_bump", "() -> (i32)"),
    ("tls_counter_get", "() -> (i32)"),
    ("parallel_sum", "(i32, i32, i32) -> (i64)"),
    ("crash", "(i32) -> (i32)"),
    ("start_workers", "(i32) -> (i32)"),
    ("stop_workers", "() -> (i32)"),
    ("worker_count", "() -> (i64)"),
    ("print_line", "(i32) -> (i32)"),
];

/// Every export of a plugin: [`BOTH_EXPORT`] and its own, name -> signature.
fn exports(own: &[(&str, &str)]) -> BTreeMap<String, String> {
    BOTH_EXPORT.iter().chain(own).map(|(n, s)| (n.to_string(), s.to_string())).collect()
}

/// What both plugins have as threaded reactors built by wasm-ld against wasi-libc (beside
/// the exports in [`BOTH_EXPORT`], with `_initialize` and no `_start`): a shared memory
/// imported as `env.memory` (with a maximum), `wasi.thread-spawn`, the start function
/// `__wasm_init_memory`, and in the name section the linker's globals (not exported) and
/// the functions that set up a thread (`__pthread_create` is the name wasm-ld gives
/// `pthread_create`, which is only its alias).
fn assert_threaded_reactor(d: &Declared) {
    assert_eq!(d.imports["env::memory"], "memory shared max=Some(16384)", "{d:#?}");
    assert_eq!(d.imports["wasi::thread-spawn"], "(i32) -> (i32)");
    assert_eq!(d.start.as_deref(), Some("__wasm_init_memory"));
    for g in ["__stack_pointer", "__tls_base", "__tls_size", "__tls_align"] {
        assert!(d.globals.iter().any(|n| n == g), "global {g} is named: {:?}", d.globals);
        assert!(!d.exports.contains_key(g), "{g} is not exported");
    }
    for f in ["__wasm_init_tls", "__pthread_create", "wasi_thread_start", "__wasi_thread_start_C", "_initialize"] {
        assert!(d.functions.iter().any(|n| n == f), "function {f} is named");
    }
    assert!(!d.functions.iter().any(|n| n == "pthread_create"));
}

/// The imports of `d` that are neither WASI preview 1, `wasi.thread-spawn`, `env.memory`
/// nor in `allowed`.
fn unexpected_imports<'a>(d: &'a Declared, allowed: &[&str]) -> Vec<&'a str> {
    let expected = |k: &str| {
        k.starts_with("wasi_snapshot_preview1::")
            || ["env::memory", "wasi::thread-spawn"].contains(&k)
            || allowed.contains(&k)
    };
    d.imports.keys().map(String::as_str).filter(|k| !expected(k)).collect()
}

/// The C plugin: a threaded reactor importing three host functions from `env`, with the
/// exports its source's header comment lists.
#[test]
fn c_plugin_is_a_threaded_reactor_with_host_imports() {
    let d = declared(c_plugin_bytes());
    assert_threaded_reactor(&d);
    let host = [
        ("env::host_add", "(i64, i64) -> (i64)"),
        ("env::host_block", "() -> ()"),
        ("env::host_log", "(i32, i32) -> ()"),
    ];
    for (name, sig) in host {
        assert_eq!(d.imports.get(name).map(String::as_str), Some(sig), "{name}");
    }
    assert_eq!(unexpected_imports(&d, &host.map(|(n, _)| n)), [] as [&str; 0]);
    let want = exports(&[
        ("self_id", "() -> (i32)"),
        ("alloc_check", "(i32) -> (i32)"),
        ("mutex_add", "(i32, i32) -> (i32)"),
        ("mutex_counter", "(i32) -> (i32)"),
        ("tsd_set", "(i32) -> (i32)"),
        ("tsd_get", "() -> (i32)"),
        ("cond_pingpong", "(i32) -> (i32)"),
        ("parallel_sum64", "(i32, i32, i32, i32) -> (i32)"),
        ("log_message", "(i32) -> (i32)"),
        ("call_host_add", "(i64, i64) -> (i64)"),
        ("host_add_loop", "(i32) -> (i64)"),
        ("call_host_from_threads", "(i32) -> (i32)"),
        ("block", "() -> (i32)"),
        ("block_in_threads", "(i32) -> (i32)"),
    ]);
    assert_eq!(d.exports, want);
}

/// The Rust plugin: a threaded reactor (not a command whose exports each run the
/// destructors) with no host imports, and the exports its source lists.
#[test]
fn rust_plugin_is_a_threaded_reactor() {
    let d = declared(rust_plugin_bytes());
    assert_threaded_reactor(&d);
    assert_eq!(unexpected_imports(&d, &[]), [] as [&str; 0]);
    assert!(!d.functions.iter().any(|n| n.ends_with(".command_export")), "exports are not wrapped");
    let want = exports(&[
        ("mutex_add", "(i32) -> (i32)"),
        ("mutex_counter", "() -> (i32)"),
        ("spawn_names", "(i32) -> (i32)"),
    ]);
    assert_eq!(d.exports, want);
}

/// `Module` loads the Rust plugin (it imports nothing the library lacks) and keeps its
/// exports callable by name and type after the rewrite.
#[test]
fn module_loads_the_rust_plugin() {
    let m = Module::new(&engine(), rust_plugin_bytes()).unwrap();
    let w = m.wasmtime();
    let signature = |name: &str| {
        let f = w.get_export(name).and_then(|e| e.func().cloned()).unwrap_or_else(|| panic!("no function {name}"));
        let list =
            |v: &mut dyn Iterator<Item = wasmtime::ValType>| v.map(|t| ToString::to_string(&t)).collect::<Vec<_>>();
        format!("({}) -> ({})", list(&mut f.params()).join(", "), list(&mut f.results()).join(", "))
    };
    for (name, sig) in BOTH_EXPORT.iter().filter(|(n, _)| *n != "memory") {
        assert_eq!(signature(name), *sig, "{name}");
    }
    assert!(w.get_export("_start").is_none());
    let memory = w.imports().find(|i| i.name() == "memory").unwrap();
    assert!(memory.ty().memory().is_some_and(wasmtime::MemoryType::is_shared));
}

/// The C plugin loads (its host imports are the host's to define); an instance without
/// them is refused, naming the first host import it lacks and its type.
#[test]
fn module_names_the_c_plugins_host_import_it_lacks() {
    let module = Module::new(&engine(), c_plugin_bytes()).unwrap();
    let err = wasithreads::Instance::new(&module, &wasithreads::RunConfig::default()).err().expect("refused");
    assert_eq!(ErrorKind::of(&err), ErrorKind::Link);
    let msg = format!("{err:#}");
    assert!(msg.contains("unknown import `env::host_"), "{msg}");
}
