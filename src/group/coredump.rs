//! The core dump of a run that ends by a trap (`RunConfig::coredump_path`): what each
//! thread leaves for it as it stops (its stack; for a thread that trapped, also its
//! globals and private memories, which only its store can read), and the file, written
//! once every thread has stopped, with the run's shared memory as it was then.

use std::collections::BTreeMap;
use std::path::PathBuf;

use parking_lot::Mutex;
use wasmtime::{Store, Val, WasmBacktrace, WasmCoreDump};

use super::{Group, StoreData};
use crate::exit::{ExitKind, RunExit};
use crate::trace::Frame;
use crate::trace::coredump::{Dump, Global, Memory, Stack, encode};

/// Where a run's core dump goes and what its threads left for it.
pub(super) struct Recorder {
    path: PathBuf,
    parts: Mutex<Parts>,
}

#[derive(Default)]
struct Parts {
    /// Each thread's stack where it stopped.
    stacks: BTreeMap<i32, Vec<Frame>>,
    /// The private state of each thread that trapped, at the trap.
    trapped: BTreeMap<i32, Private>,
}

/// What only a thread's own store can read: its instance's globals and private memories.
#[derive(Default)]
struct Private {
    globals: Vec<Global>,
    memories: Vec<Memory>,
}

impl Recorder {
    pub(super) fn new(path: PathBuf) -> Recorder {
        Recorder { path, parts: Mutex::default() }
    }
}

impl Group {
    /// Keeps what the run's core dump needs of thread `tid`, which stopped with `err`
    /// (`trapped`: a trap of its own, not a stop). Nothing without a core dump path.
    pub(super) fn keep_for_coredump(&self, tid: i32, store: &mut Store<StoreData>, err: &wasmtime::Error, trapped: bool) {
        let Some(rec) = &self.coredump else { return };
        let dump = err.downcast_ref::<WasmCoreDump>();
        let frames = match (dump, err.downcast_ref::<WasmBacktrace>()) {
            (Some(d), _) => d.frames(),
            (None, Some(bt)) => bt.frames(),
            (None, None) => &[],
        };
        let frames = crate::trace::frames(frames, &self.offsets);
        let private = match dump {
            Some(d) if trapped => Some(private_state(d, store)),
            _ => None,
        };
        let mut parts = rec.parts.lock();
        parts.stacks.insert(tid, frames);
        if let Some(p) = private {
            parts.trapped.insert(tid, p);
        }
    }

    /// Writes the core dump of a run that ended by a trap, once its threads are joined.
    /// A failure to write is reported through the diagnostic callback.
    pub(super) fn write_coredump(&self, exit: &RunExit) {
        let Some(rec) = &self.coredump else { return };
        if exit.kind != ExitKind::Trap {
            return;
        }
        let (stacks, private) = {
            let mut parts = rec.parts.lock();
            let private = parts.trapped.remove(&exit.tid).unwrap_or_default();
            (std::mem::take(&mut parts.stacks), private)
        };
        // The thread that trapped first, then the others by tid.
        let mut ordered: Vec<(i32, Vec<Frame>)> = stacks.into_iter().collect();
        ordered.sort_by_key(|(tid, _)| (*tid != exit.tid, *tid));
        let stacks = ordered
            .into_iter()
            .map(|(tid, frames)| Stack { name: if tid == 0 { "main".into() } else { format!("thread {tid}") }, frames })
            .collect();
        let dump = Dump {
            process: self.args.first().cloned().unwrap_or_default(),
            module: self.args.first().cloned().unwrap_or_else(|| "module".into()),
            memories: self.memories_in_module_order(private.memories),
            globals: private.globals,
            stacks,
        };
        if let Err(e) = std::fs::write(&rec.path, encode(&dump)) {
            self.diagnose(exit.tid, &format!("writing the core dump to {}: {e}", rec.path.display()));
        }
    }

    /// The run's shared memory (as it is now) at its index in the module, the thread's
    /// private memories around it in their order.
    fn memories_in_module_order(&self, private: Vec<Memory>) -> Vec<Memory> {
        let mut shared = self.memory.as_ref().map(|m| Memory {
            shared: true,
            maximum_pages: m.ty().maximum(),
            data: copy_shared(m),
        });
        let mut private = private.into_iter();
        let mut out = Vec::new();
        loop {
            if self.offsets.shared_memory() == Some(out.len() as u32) {
                if let Some(s) = shared.take() {
                    out.push(s);
                    continue;
                }
            }
            match private.next() {
                Some(m) => out.push(m),
                None => break,
            }
        }
        out.extend(shared);
        out
    }
}

/// A copy of a shared memory's bytes.
fn copy_shared(m: &wasmtime::SharedMemory) -> Vec<u8> {
    let data = m.data();
    let mut out = vec![0u8; data.len()];
    // SAFETY: `data` is the memory's whole mapped, in-bounds byte range (Wasmtime's API
    // hands it out as `UnsafeCell`s because wasm threads may write it concurrently); a
    // plain byte copy is what the wasm memory model allows a racing reader, and every
    // thread of the run has stopped by now unless it outlived the teardown grace.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr().cast::<u8>(), out.as_mut_ptr(), data.len()) };
    out
}

/// The globals and private memories of the store that trapped, from Wasmtime's dump.
fn private_state(dump: &WasmCoreDump, store: &mut Store<StoreData>) -> Private {
    let globals = dump
        .globals()
        .iter()
        .map(|g| match g.get(&mut *store) {
            Val::I32(v) => Global::I32(v),
            Val::I64(v) => Global::I64(v),
            Val::F32(v) => Global::F32(v),
            Val::F64(v) => Global::F64(v),
            Val::V128(v) => Global::V128(v.as_u128()),
            Val::FuncRef(_) => Global::FuncRef,
            _ => Global::ExternRef,
        })
        .collect();
    let memories = dump
        .memories()
        .iter()
        .map(|m| Memory { shared: false, maximum_pages: m.ty(&*store).maximum(), data: m.data(&*store).to_vec() })
        .collect();
    Private { globals, memories }
}
