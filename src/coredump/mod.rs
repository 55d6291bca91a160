//! The core dump of a run that ends by a trap (`RunConfig::coredump_path`): what each
//! thread leaves for it as it stops (its stack; the thread whose trap ended the run also
//! its globals and its store itself, since only the store can read its private memories),
//! and the file, written once every thread has stopped, with the run's shared memory as
//! it is then, in the format of `format.rs`. Every memory, shared or private, is streamed
//! from where it is to the file: a dump copies no memory whole (a 1 GiB private memory
//! the guest never touched costs no resident memory to dump).
//!
//! The file is written safely even when the guest can write the directory it goes in:
//! the directory is opened when the run starts (before any guest code runs), the dump is
//! written to a new file there (`O_EXCL | O_NOFOLLOW`: never through a symlink or into a
//! FIFO the guest planted) and renamed over the name, which replaces whatever the guest
//! put there instead of writing through it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufWriter, Write as _};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, Result};
use parking_lot::Mutex;
use rustix::fs::{AtFlags, Mode, OFlags};
use wasmtime::{SharedMemory, Store, Val, WasmBacktrace, WasmCoreDump};

use crate::error::{error, ErrorKind, ResultKind};
use crate::exit::{ExitKind, RunExit};
use crate::trace::{Frame, OffsetMap};
use format::{write, Dump, Global, Memory, Stack};

mod format;

/// Where a run's core dump goes and what its threads left for it.
pub(crate) struct Recorder {
    /// The directory of the dump, opened when the run started.
    dir: OwnedFd,
    /// The dump's name in it.
    name: OsString,
    /// The path as the host gave it, for messages.
    path: PathBuf,
    parts: Mutex<Parts>,
}

#[derive(Default)]
struct Parts {
    /// Each thread's stack where it stopped.
    stacks: BTreeMap<i32, Vec<Frame>>,
    /// The private state of the thread whose trap ended the run, at the trap.
    trapped: Option<Private>,
    /// The dump was written (or given up): a thread that stops later keeps nothing.
    closed: bool,
}

/// What only a thread's own store can read: its instance's globals (read at the trap)
/// and its private memories (read from the store, kept until the dump is written).
#[derive(Default)]
struct Private {
    globals: Vec<Global>,
    memories: Option<Box<dyn PrivateMemories>>,
}

/// A store kept for its private memories.
trait PrivateMemories: Send {
    /// `(memory64, maximum pages, bytes)` of each private memory, in the module's order.
    fn memories(&self) -> Vec<(bool, Option<u64>, &[u8])>;
}

/// The store that trapped and its instance's private memories.
struct Kept<T: 'static> {
    store: Store<T>,
    memories: Vec<wasmtime::Memory>,
}

impl<T: Send + 'static> PrivateMemories for Kept<T> {
    fn memories(&self) -> Vec<(bool, Option<u64>, &[u8])> {
        self.memories
            .iter()
            .map(|m| {
                let ty = m.ty(&self.store);
                (ty.is_64(), ty.maximum(), m.data(&self.store))
            })
            .collect()
    }
}

impl Recorder {
    /// Opens the directory `path` names a file in; fails when it cannot be opened or
    /// `path` names no file.
    pub(crate) fn open(path: &Path) -> Result<Recorder> {
        let Some(name) = path.file_name() else {
            return Err(error(ErrorKind::Misuse, format!("the core dump path {} names no file", path.display())));
        };
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = rustix::fs::open(dir, OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(Into::into)
            .and_then(crate::hostfd::above_stdio)
            .with_context(|| format!("opening the directory of the core dump path {}", path.display()))
            .kind(ErrorKind::Io)?;
        Ok(Recorder { dir, name: name.to_owned(), path: path.to_owned(), parts: Mutex::default() })
    }

    /// Writes `dump` to a new file in the directory and renames it to the dump's name.
    fn store(&self, dump: &Dump<'_>) -> Result<()> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let mut temp = OsString::from(".");
        temp.push(&self.name);
        temp.push(format!(".{}.{}.tmp", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.dir, &temp, flags, Mode::from_raw_mode(0o600))
            .map_err(Into::into)
            .and_then(crate::hostfd::above_stdio)
            .context("creating it")?;
        let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::from(fd));
        let written = write(dump, &mut out).and_then(|()| out.flush()).context("writing it");
        let renamed =
            written.and_then(|()| rustix::fs::renameat(&self.dir, &temp, &self.dir, &self.name).context("renaming it"));
        if renamed.is_err() {
            let _ = rustix::fs::unlinkat(&self.dir, &temp, AtFlags::empty());
        }
        renamed
    }
}

/// The core dump Wasmtime attached to `err`, if any, and the stack of the thread that
/// failed with it, in the user's offsets.
fn stack_of<'e>(err: &'e wasmtime::Error, offsets: &OffsetMap) -> (Option<&'e WasmCoreDump>, Vec<Frame>) {
    let dump = err.downcast_ref::<WasmCoreDump>();
    let frames = match (dump, err.downcast_ref::<WasmBacktrace>()) {
        (Some(d), _) => d.frames(),
        (None, Some(bt)) => bt.frames(),
        (None, None) => &[],
    };
    (dump, crate::trace::frames(frames, offsets))
}

impl Recorder {
    /// Keeps what the dump needs of thread `tid`, which stopped with `err`: its stack
    /// and, when its trap ended the run (`ended_run`), the globals of its `store` and the
    /// store itself, whose private memories the dump reads where they are. Gives the
    /// store back unless it kept it.
    pub(crate) fn keep<T: Send + 'static>(
        &self,
        tid: i32,
        mut store: Store<T>,
        err: &wasmtime::Error,
        ended_run: bool,
        offsets: &OffsetMap,
    ) -> Option<Store<T>> {
        let (dump, frames) = stack_of(err, offsets);
        let mut parts = self.parts.lock();
        if parts.closed {
            return Some(store);
        }
        parts.stacks.insert(tid, frames);
        // Only the trap that ended the run is dumped: no other thread keeps its store.
        match dump {
            Some(d) if ended_run => {
                let globals = globals(d, &mut store);
                let memories = d.memories().to_vec();
                parts.trapped = Some(Private { globals, memories: Some(Box::new(Kept { store, memories })) });
                None
            }
            _ => Some(store),
        }
    }

    /// Like [`Recorder::keep`] for a store that stays with its owner (an instance's
    /// call thread or main thread, which the host may still read): its stack and, when
    /// its trap ended the run, its globals, but not its private memories, which the
    /// dump then leaves out.
    pub(crate) fn keep_borrowed<T>(
        &self,
        tid: i32,
        store: &mut Store<T>,
        err: &wasmtime::Error,
        ended_run: bool,
        offsets: &OffsetMap,
    ) {
        let (dump, frames) = stack_of(err, offsets);
        let mut parts = self.parts.lock();
        if parts.closed {
            return;
        }
        parts.stacks.insert(tid, frames);
        if let (Some(d), true) = (dump, ended_run) {
            parts.trapped = Some(Private { globals: globals(d, store), memories: None });
        }
    }

    /// Drops what the threads left (a kept store among it) without writing a dump, and
    /// keeps nothing from now on.
    pub(crate) fn close(&self) {
        let mut parts = self.parts.lock();
        parts.closed = true;
        let dropped = (std::mem::take(&mut parts.stacks), parts.trapped.take());
        drop(parts);
        drop(dropped);
    }

    /// Writes the core dump of a run that ended by a trap (nothing for other ends), once
    /// its threads are joined: `shared` is the run's shared memory, `name` the module's
    /// name (`argv[0]`).
    pub(crate) fn write(
        &self,
        exit: &RunExit,
        shared: Option<&SharedMemory>,
        name: Option<&str>,
        offsets: &OffsetMap,
    ) -> Result<()> {
        let (stacks, private) = {
            let mut parts = self.parts.lock();
            parts.closed = true;
            (std::mem::take(&mut parts.stacks), parts.trapped.take().unwrap_or_default())
        };
        if exit.kind != ExitKind::Trap {
            return Ok(());
        }
        // The thread that trapped first, then the others by tid.
        let mut ordered: Vec<(i32, Vec<Frame>)> = stacks.into_iter().collect();
        ordered.sort_by_key(|(tid, _)| (*tid != exit.tid, *tid));
        let stacks = ordered
            .into_iter()
            .map(|(tid, frames)| Stack { name: if tid == 0 { "main".into() } else { format!("thread {tid}") }, frames })
            .collect();
        let private_memories = private.memories.as_ref().map(|m| m.memories()).unwrap_or_default();
        let reads: Vec<_> = private_memories.iter().map(|(_, _, bytes)| read_from(bytes)).collect();
        let private_memories = private_memories.iter().zip(&reads).map(|((memory64, maximum_pages, bytes), read)| {
            Memory { shared: false, memory64: *memory64, maximum_pages: *maximum_pages, len: bytes.len(), read }
        });
        let shared_read = shared.map(shared_reader);
        let shared = shared.zip(shared_read.as_ref()).map(|(m, read)| Memory {
            shared: true,
            memory64: false,
            maximum_pages: m.ty().maximum(),
            len: m.data_size(),
            read: read.as_ref(),
        });
        let dump = Dump {
            process: name.unwrap_or_default().to_string(),
            module: name.unwrap_or("module").to_string(),
            memories: in_module_order(offsets.shared_memory(), shared, private_memories),
            globals: private.globals,
            stacks,
        };
        self.store(&dump).with_context(|| format!("writing the core dump to {}", self.path.display()))
    }
}

/// The shared memory at its index in the module, the private memories around it in
/// their order.
fn in_module_order<'a>(
    shared_index: Option<u32>,
    mut shared: Option<Memory<'a>>,
    mut private: impl Iterator<Item = Memory<'a>>,
) -> Vec<Memory<'a>> {
    let mut out = Vec::new();
    loop {
        if shared_index == Some(out.len() as u32) {
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

/// Reads a private memory where it is, in its store.
fn read_from(bytes: &[u8]) -> impl Fn(usize, &mut [u8]) + '_ {
    move |at, buf| buf.copy_from_slice(&bytes[at..at + buf.len()])
}

/// Copies the bytes of a memory at an offset into a buffer.
type Reader<'a> = Box<dyn Fn(usize, &mut [u8]) + 'a>;

/// Reads the run's shared memory where it is, without copying it first.
fn shared_reader(m: &SharedMemory) -> Reader<'_> {
    let data = m.data();
    Box::new(move |at, buf| {
        let src = &data[at..at + buf.len()];
        // SAFETY: `src` is an in-bounds range of the memory's mapped bytes (Wasmtime's
        // API hands them out as `UnsafeCell`s because wasm threads may write them
        // concurrently); a plain byte copy is what the wasm memory model allows a racing
        // reader, and every thread of the run has stopped by now unless it outlived the
        // teardown grace.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr().cast::<u8>(), buf.as_mut_ptr(), buf.len()) };
    })
}

/// The globals of the store that trapped, from Wasmtime's dump.
fn globals<T>(dump: &WasmCoreDump, store: &mut Store<T>) -> Vec<Global> {
    dump.globals()
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
        .collect()
}
