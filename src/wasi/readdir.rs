//! `fd_readdir`, resumable: a directory descriptor keeps a [`DirCursor`] where the last
//! call stopped, so reading a large directory in many small calls takes time linear in
//! its size. File names are passed as the host's bytes (Wasmtime 48 refuses non-UTF-8
//! with `ilseq`); `d_ino` is the host's.
//!
//! A call's work is proportional to what the guest asks (a buffer of up to 4 GiB, a
//! cookie that skips a whole directory), so it is bounded like the other copies of a
//! run: the entries go to guest memory through a host buffer of one copy grant
//! (`iovec::reserve`: at least 64 KiB, charged to the run's copy budget beyond that),
//! flushed each time it is full, and both loops over the directory check for the run's
//! end at every entry (a thread in a listing stops within microseconds of the end).

use std::os::fd::AsFd;

use rustix::fs::{AtFlags, Mode, OFlags};
use wasmtime_wasi::p1::types::{self, Errno, Filetype};
use wiggle::{GuestMemory, GuestPtr};

use super::descriptor::DirDesc;
use super::path::{as_dir, dir_desc};
use super::stat::FileKind;
use super::{errno, iovec, Call};
use crate::limits::Share;

/// A directory stream with its position in WASI cookies: entry 1 is ".", entry 2 is
/// "..", then the host's entries (without its own "." and ".."), numbered from 3. The
/// cookie of an entry (its `d_next`) is its number, so cookie `c` asks for entries from
/// `c + 1` on.
pub(crate) struct DirCursor {
    /// A stream over a descriptor of its own (`openat(dir, ".")`), so its position is
    /// private to this cursor.
    stream: rustix::fs::Dir,
    /// That descriptor, counted against the run's limit while the cursor lives.
    _held: Share,
    /// How many entries have been consumed: the cookie the stream stands at.
    pos: u64,
    /// Entry `pos + 1`, already taken from the stream but not handed over whole (the
    /// guest's buffer ended inside it; the guest asks again with cookie `pos`).
    pending: Option<rustix::fs::DirEntry>,
}

/// The size of a WASI `dirent` in guest memory: d_next u64, d_ino u64, d_namlen u32,
/// d_type u8, 3 bytes of padding.
const DIRENT_SIZE: usize = 24;

/// One entry to hand over.
enum Entry {
    /// "." (entry 1) or ".." (entry 2), made up here with the directory's own inode (as
    /// Wasmtime 48 does for both).
    Dot(&'static [u8]),
    /// An entry of the host's stream.
    Host(rustix::fs::DirEntry),
}

/// Entry `cursor.pos + 1` (without consuming it), or `None` at the end.
fn next_entry(cursor: &mut DirCursor) -> Result<Option<Entry>, types::Error> {
    match cursor.pos {
        0 => return Ok(Some(Entry::Dot(b"."))),
        1 => return Ok(Some(Entry::Dot(b".."))),
        _ => {}
    }
    if let Some(e) = cursor.pending.take() {
        return Ok(Some(Entry::Host(e)));
    }
    loop {
        match cursor.stream.read() {
            None => return Ok(None),
            Some(Err(e)) => return Err(errno::sys(e)),
            Some(Ok(e)) => {
                let name = e.file_name().to_bytes();
                if name != b"." && name != b".." {
                    return Ok(Some(Entry::Host(e)));
                }
            }
        }
    }
}

/// The `d_type` of a host entry; a file system that does not report it costs one
/// `fstatat` (not following symlinks) for that entry.
fn entry_type(cursor: &DirCursor, e: &rustix::fs::DirEntry) -> Filetype {
    let t = e.file_type();
    if t != rustix::fs::FileType::Unknown {
        return FileKind::of(t).filetype();
    }
    let stat = cursor.stream.fd().and_then(|fd| rustix::fs::statat(fd, e.file_name(), AtFlags::SYMLINK_NOFOLLOW));
    stat.map_or(Filetype::Unknown, |st| FileKind::of_mode(st.st_mode).filetype())
}

pub(super) fn fd_readdir(
    call: &Call<'_>,
    memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    buf: GuestPtr<u8>,
    buf_len: types::Size,
    cookie: types::Dircookie,
) -> Result<types::Size, types::Error> {
    let desc = dir_desc(call, fd)?;
    let d = as_dir(&desc)?;
    let cap = buf_len as usize;
    let grant = iovec::reserve(&call.wasi.copy_budget, cap);
    let chunk_cap = grant.len.max(1);
    let mut out = Listing { memory, buf, written: 0, chunk: Vec::with_capacity(chunk_cap), chunk_cap };
    let mut guard = d.cursor.lock();
    let result = fill(call, d, &mut guard, cookie, cap, &mut out).and_then(|()| out.flush());
    if result.is_err() {
        // A stream that failed (or a guest buffer that did) stays failed: start over next
        // time.
        *guard = None;
    }
    result?;
    u32::try_from(out.written).map_err(|_| Errno::Overflow.into())
}

/// Where a call's entries go: the guest's buffer at `buf`, through a host buffer of at
/// most `chunk_cap` bytes.
struct Listing<'a, 'm> {
    memory: &'a mut GuestMemory<'m>,
    buf: GuestPtr<u8>,
    /// Bytes already copied to the guest's buffer.
    written: usize,
    chunk: Vec<u8>,
    chunk_cap: usize,
}

impl Listing<'_, '_> {
    /// Bytes handed over so far (copied or buffered).
    fn len(&self) -> usize {
        self.written + self.chunk.len()
    }

    fn put(&mut self, mut bytes: &[u8]) -> Result<(), types::Error> {
        while !bytes.is_empty() {
            if self.chunk.len() == self.chunk_cap {
                self.flush()?;
            }
            let take = bytes.len().min(self.chunk_cap - self.chunk.len());
            self.chunk.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
        Ok(())
    }

    /// Copies the host buffer to the guest's, after what is there already.
    fn flush(&mut self) -> Result<(), types::Error> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let at = u32::try_from(self.written).map_err(|_| Errno::Overflow)?;
        let n = u32::try_from(self.chunk.len()).map_err(|_| Errno::Overflow)?;
        let dst = self.buf.add(at)?.as_array(n);
        self.memory.copy_from_slice(&self.chunk, dst)?;
        self.written += self.chunk.len();
        self.chunk.clear();
        Ok(())
    }
}

/// Writes the entries after `cookie` into `out`, at most `cap` bytes, the last one
/// truncated if it does not fit (as the WASI spec says: the guest then asks again from
/// that entry with a larger buffer). Reuses the cursor when the guest continues where
/// the last call stopped, so reading a directory takes time linear in its size. Fails
/// with the run's end (a trap) as soon as the run is ending.
fn fill(
    call: &Call<'_>,
    d: &DirDesc,
    slot: &mut Option<DirCursor>,
    cookie: u64,
    cap: usize,
    out: &mut Listing<'_, '_>,
) -> Result<(), types::Error> {
    let cursor = match slot {
        Some(c) if c.pos <= cookie => c,
        Some(c) => {
            c.stream.rewind();
            c.pos = 0;
            c.pending = None;
            c
        }
        None => {
            // `Dir::read_from` with the descriptor kept above stdio: its own description
            // of the directory, so its position is its own.
            let flags = rustix::fs::fcntl_getfl(&d.dir).map_err(errno::sys)?;
            let own = rustix::fs::openat(&d.dir, c".", flags | OFlags::CLOEXEC, Mode::empty()).map_err(errno::sys)?;
            let own = crate::hostfd::above_stdio(own).map_err(errno::io)?;
            let stream = rustix::fs::Dir::new(own).map_err(errno::sys)?;
            slot.insert(DirCursor { stream, _held: call.wasi.fds.hold(), pos: 0, pending: None })
        }
    };
    while cursor.pos < cookie {
        call.signal.bail_if_ending().map_err(errno::trap)?;
        if next_entry(cursor)?.is_none() {
            return Ok(());
        }
        cursor.pos += 1;
    }
    let mut dir_ino = None;
    while out.len() < cap {
        call.signal.bail_if_ending().map_err(errno::trap)?;
        let Some(entry) = next_entry(cursor)? else { break };
        let (ino, filetype, name): (u64, Filetype, &[u8]) = match &entry {
            Entry::Dot(name) => {
                let ino = match dir_ino {
                    Some(i) => i,
                    None => *dir_ino.insert(rustix::fs::fstat(d.dir.as_fd()).map_err(errno::sys)?.st_ino),
                };
                (ino, Filetype::Directory, name)
            }
            Entry::Host(e) => (e.ino(), entry_type(cursor, e), e.file_name().to_bytes()),
        };
        let namlen = u32::try_from(name.len()).map_err(|_| Errno::Overflow)?;
        let mut head = [0u8; DIRENT_SIZE];
        head[0..8].copy_from_slice(&(cursor.pos + 1).to_le_bytes());
        head[8..16].copy_from_slice(&ino.to_le_bytes());
        head[16..20].copy_from_slice(&namlen.to_le_bytes());
        head[20] = filetype as u8;
        let room = cap - out.len();
        if room < DIRENT_SIZE + name.len() {
            // The buffer ends inside this entry: hand over what fits, keep the entry
            // for the next call (which comes with this entry's cookie, `pos`).
            out.put(&head[..room.min(DIRENT_SIZE)])?;
            out.put(&name[..room.saturating_sub(DIRENT_SIZE)])?;
            if let Entry::Host(e) = entry {
                cursor.pending = Some(e);
            }
            break;
        }
        out.put(&head)?;
        out.put(name)?;
        cursor.pos += 1;
    }
    Ok(())
}
