//! `poll_oneoff`: clocks and descriptor readiness, served on the calling thread without
//! any lock, every wait through the run's signal (so a run that ends wakes it at once,
//! however far its deadline).
//!
//! The subscriptions are streamed from guest memory twice — once to learn the earliest
//! deadline and which host descriptors to poll, once after the wait to write an event for
//! each subscription that is ready — so the host memory a call takes does not grow with
//! `nsubscriptions` (only with the distinct descriptors polled, at most
//! [`MAX_POLLED`], and the distinct regular files read, whose end-of-file state is asked
//! once per call). Deadlines are computed from one reading of the clocks taken when the
//! call starts, so both passes agree.
//!
//! Clocks (`SUBSCRIPTION_CLOCK_ABSTIME` or relative):
//! - realtime: a relative timeout is measured on the monotonic clock; an absolute one is
//!   turned into the time left until it by the host's wall clock at the start of the call
//!   (a later change of the wall clock does not move it), as in Wasmtime 48;
//! - monotonic: relative, or absolute on the guest's monotonic clock
//!   (`clock_time_get(monotonic)`, nanoseconds since the run's `clock_zero`);
//! - process and thread CPU time: the whole call fails with `inval`, as in Wasmtime 48;
//! - a deadline beyond what the host can represent never fires.
//!
//! Descriptors (`fd_read` / `fd_write`):
//! - stdin: its host descriptor is polled; bytes and null stdin are always readable
//!   (`nbytes` = bytes left, `hangup` at the end);
//! - stdout / stderr: always writable (a write waits, interruptibly, for the sink);
//! - regular files and block devices: always ready (`nbytes` 1, and `hangup` for a read at
//!   or past the end of a regular file, as in Wasmtime 48);
//! - pipes, character devices, sockets: their host descriptor is polled; `nbytes` of a
//!   read is what `FIONREAD` reports (1 if it cannot tell), `hangup` when the host says
//!   so, error `badf` for a descriptor the host finds invalid, `pipe` for a write end
//!   whose reader is gone, `io` for another error condition;
//! - a directory, a descriptor not open, or a direction the descriptor does not allow
//!   (reading stdout, writing stdin, a file opened only for the other direction): an
//!   event carrying `badf` at once. Wasmtime 48 (and wasi-common) fail the whole call with
//!   `badf` instead; an event is what wasi-libc's `poll` expects (it reports `POLLNVAL`
//!   for that descriptor and goes on with the others), as POSIX `poll` does.
//!
//! Limits: 0 subscriptions is `inval` (as Wasmtime: an indefinite sleep is not
//! expressible); more than [`MAX_SUBSCRIPTIONS`] is `nomem` (Wasmtime 48 also fails a
//! list that does not fit its per-call budget with `nomem`); more than [`MAX_POLLED`]
//! distinct host descriptors to poll in one call is `inval` (as `poll(2)` past its
//! descriptor limit).

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::event::{PollFd, PollFlags};
use wasmtime_wasi::p1::types::{
    self, Clockid, Errno, Event, EventFdReadwrite, Eventrwflags, Eventtype, Subclockflags, SubscriptionClock,
    SubscriptionU,
};
use wiggle::{GuestMemory, GuestPtr};

use super::descriptor::Descriptor;
use super::fds::OpenFd;
use super::input::InputStream;
use super::stat::FileKind;
use super::{errno, Call, WasiState};

/// Most subscriptions in one call (48 MiB of guest memory); more is `nomem`.
pub(super) const MAX_SUBSCRIPTIONS: u32 = 1 << 20;

/// Most distinct host descriptors polled by one call; more is `inval`. Far above the
/// default descriptor table size, and low enough that `poll(2)` (which refuses more
/// descriptors than `RLIMIT_NOFILE`, often 1024) takes them with the wake descriptor.
pub(super) const MAX_POLLED: usize = 512;

/// While streaming a long list, check this often whether the run is ending: a thousand
/// subscriptions take some 50 µs to classify, so a thread in the longest call stops well
/// within a millisecond of the end.
const CHECK_EVERY: usize = 1 << 10;

/// The clocks as the call saw them when it started: deadlines are relative to these.
struct Clocks {
    start: Instant,
    /// The wall clock at `start`, in ns since the Unix epoch.
    wall_ns: u64,
    /// Time zero of the guest's monotonic clock.
    zero: Instant,
}

impl Clocks {
    fn now(wasi: &WasiState) -> Clocks {
        let wall_ns =
            SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Clocks { start: Instant::now(), wall_ns, zero: wasi.clock_zero }
    }

    /// When a clock subscription fires; `None` if never (beyond the host's `Instant`).
    fn deadline(&self, c: &SubscriptionClock) -> Result<Option<Instant>, types::Error> {
        let absolute = c.flags.contains(Subclockflags::SUBSCRIPTION_CLOCK_ABSTIME);
        let (base, ns) = match (c.id, absolute) {
            (Clockid::Realtime | Clockid::Monotonic, false) => (self.start, c.timeout),
            (Clockid::Realtime, true) => (self.start, c.timeout.saturating_sub(self.wall_ns)),
            (Clockid::Monotonic, true) => (self.zero, c.timeout),
            (Clockid::ProcessCputimeId | Clockid::ThreadCputimeId, _) => return Err(Errno::Inval.into()),
        };
        Ok(base.checked_add(Duration::from_nanos(ns)))
    }
}

/// What an `fd_read` / `fd_write` subscription is waiting for.
enum Readiness {
    /// Ready now: the event's error, flags and `nbytes`.
    Now(Errno, Eventrwflags, u64),
    /// Ready when the host descriptor `raw` (held open by `desc`) polls ready.
    Poll { desc: Arc<OpenFd>, raw: RawFd },
}

fn ready(flags: Eventrwflags, nbytes: u64) -> Readiness {
    Readiness::Now(Errno::Success, flags, nbytes)
}

fn refused() -> Readiness {
    Readiness::Now(Errno::Badf, Eventrwflags::empty(), 0)
}

/// The host descriptor to poll for `d`, if it has one that can block.
fn host_fd<'a>(wasi: &'a WasiState, d: &'a Descriptor) -> Option<BorrowedFd<'a>> {
    match d {
        Descriptor::Stdin => wasi.stdio.stdin.fd(),
        Descriptor::File(f) if f.kind.may_block() => Some(f.file.as_fd()),
        _ => None,
    }
}

/// Whether each regular file read by the call is at its end, asked once per descriptor
/// and call (an `fstat` and an `lseek`), however many subscriptions name it.
#[derive(Default)]
struct AtEnd(HashMap<u32, bool>);

impl AtEnd {
    fn get(&mut self, fd: types::Fd, file: BorrowedFd<'_>) -> bool {
        *self.0.entry(u32::from(fd)).or_insert_with(|| at_end(file))
    }
}

/// Classifies a subscription on `fd` for reading or (`write`) writing. `detail` (the
/// second pass) asks for the event's flags and `nbytes` of what is ready now, with the
/// end-of-file state of regular files from `detail`'s cache; the first pass only needs
/// to know whether it is.
fn classify(call: &Call<'_>, fd: types::Fd, write: bool, detail: Option<&mut AtEnd>) -> Readiness {
    let Ok(desc) = call.descriptor(fd) else { return refused() };
    match &**desc {
        Descriptor::Stdin if write => refused(),
        Descriptor::Stdin => match &call.wasi.stdio.stdin {
            InputStream::Fd { .. } => match call.wasi.stdio.stdin.fd() {
                Some(raw) => {
                    let raw = raw.as_raw_fd();
                    Readiness::Poll { desc, raw }
                }
                None => ready(Eventrwflags::empty(), 1),
            },
            InputStream::Bytes { data, pos } => {
                let left = if detail.is_some() { data.len().saturating_sub(*pos.lock()) } else { 1 };
                let hangup = if left == 0 { Eventrwflags::FD_READWRITE_HANGUP } else { Eventrwflags::empty() };
                ready(hangup, left as u64)
            }
            InputStream::Null => ready(Eventrwflags::FD_READWRITE_HANGUP, 0),
            InputStream::Closed => refused(),
        },
        Descriptor::Output(name) if write && !call.wasi.stdio.output(*name).is_closed() => {
            ready(Eventrwflags::empty(), 1)
        }
        Descriptor::Output(_) => refused(),
        Descriptor::File(f) => {
            if (write && !f.writable) || (!write && !f.readable) {
                return refused();
            }
            if f.kind.may_block() {
                let raw = f.file.as_raw_fd();
                return Readiness::Poll { desc, raw };
            }
            let mut flags = Eventrwflags::empty();
            if let Some(cache) = detail {
                if !write && f.kind == FileKind::Regular && cache.get(fd, f.file.as_fd()) {
                    flags |= Eventrwflags::FD_READWRITE_HANGUP;
                }
            }
            ready(flags, 1)
        }
        Descriptor::Dir(_) => refused(),
    }
}

/// True when the file position of a regular file is at or past its end.
fn at_end(fd: BorrowedFd<'_>) -> bool {
    let (Ok(stat), Ok(pos)) = (rustix::fs::fstat(fd), rustix::fs::tell(fd)) else { return false };
    u64::try_from(stat.st_size).unwrap_or(0) <= pos
}

/// The event of a polled subscription whose host descriptor reported `revents`, if it is
/// ready for the subscription's direction.
fn polled_event(fd: BorrowedFd<'_>, revents: PollFlags, write: bool) -> Option<(Errno, Eventrwflags, u64)> {
    let wanted = if write { PollFlags::OUT } else { PollFlags::IN | PollFlags::PRI };
    if !revents.intersects(wanted | PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL) {
        return None;
    }
    let hangup =
        if revents.contains(PollFlags::HUP) { Eventrwflags::FD_READWRITE_HANGUP } else { Eventrwflags::empty() };
    if revents.contains(PollFlags::NVAL) {
        return Some((Errno::Badf, Eventrwflags::empty(), 0));
    }
    if revents.contains(PollFlags::ERR) && !revents.intersects(wanted) {
        return Some((if write { Errno::Pipe } else { Errno::Io }, hangup, 0));
    }
    let nbytes = if write { 1 } else { rustix::io::ioctl_fionread(fd).unwrap_or(1) };
    Some((Errno::Success, hangup, nbytes))
}

fn event(userdata: types::Userdata, type_: Eventtype, (error, flags, nbytes): (Errno, Eventrwflags, u64)) -> Event {
    Event { userdata, error, type_, fd_readwrite: EventFdReadwrite { nbytes, flags } }
}

pub(super) fn poll_oneoff(
    call: &Call<'_>,
    memory: &mut GuestMemory<'_>,
    subs: GuestPtr<types::Subscription>,
    events: GuestPtr<Event>,
    nsubscriptions: types::Size,
) -> Result<types::Size, types::Error> {
    if nsubscriptions == 0 {
        return Err(Errno::Inval.into());
    }
    if nsubscriptions > MAX_SUBSCRIPTIONS {
        return Err(Errno::Nomem.into());
    }
    let wasi = call.wasi;
    let subs = subs.as_array(nsubscriptions);
    let clocks = Clocks::now(wasi);

    // Pass 1: the earliest deadline, whether anything is ready now, and the distinct host
    // descriptors to poll (each held open until the call returns).
    let mut earliest: Option<Instant> = None;
    let mut ready_now = false;
    let mut held: Vec<(Arc<OpenFd>, PollFlags)> = Vec::new();
    let mut index: HashMap<RawFd, usize> = HashMap::new();
    for (i, sub) in subs.iter().enumerate() {
        if i % CHECK_EVERY == CHECK_EVERY - 1 {
            call.signal.bail_if_ending().map_err(errno::trap)?;
        }
        let sub = memory.read(sub?)?;
        let (fd, flag, write) = match sub.u {
            SubscriptionU::Clock(c) => {
                if let Some(t) = clocks.deadline(&c)? {
                    ready_now |= t <= clocks.start;
                    earliest = Some(earliest.map_or(t, |e| e.min(t)));
                }
                continue;
            }
            SubscriptionU::FdRead(r) => (r.file_descriptor, PollFlags::IN, false),
            SubscriptionU::FdWrite(w) => (w.file_descriptor, PollFlags::OUT, true),
        };
        match classify(call, fd, write, None) {
            Readiness::Now(..) => ready_now = true,
            Readiness::Poll { desc, raw } => match index.get(&raw) {
                Some(&k) => held[k].1 |= flag,
                None => {
                    if held.len() >= MAX_POLLED {
                        return Err(Errno::Inval.into());
                    }
                    index.insert(raw, held.len());
                    held.push((desc, flag));
                }
            },
        }
    }

    // The wait: none if something is ready already (the descriptors are still polled
    // once, so the events report all that is ready), else until a descriptor is ready or
    // the earliest deadline passes; either way it ends when the run does.
    let mut polled: Vec<PollFd<'_>> = Vec::with_capacity(held.len());
    index.clear();
    for (desc, flags) in &held {
        if let Some(fd) = host_fd(wasi, desc) {
            index.insert(fd.as_raw_fd(), polled.len());
            polled.push(PollFd::from_borrowed_fd(fd, *flags));
        }
    }
    let deadline = if ready_now { Some(clocks.start) } else { earliest };
    if !polled.is_empty() {
        call.signal.wait_fds(&mut polled, deadline).map_err(errno::trap)?;
    } else if !ready_now {
        // Only clocks (a subscription is either a clock, ready now, or polled), so
        // `earliest` is set unless every deadline is beyond the host's clock.
        while earliest.is_none_or(|t| Instant::now() < t) {
            call.signal.sleep_until(call.slot, earliest).map_err(errno::trap)?;
        }
    }

    // Pass 2: an event for each ready subscription, in order.
    let now = Instant::now();
    let events = events.as_array(nsubscriptions);
    let mut out = events.iter();
    let mut count: types::Size = 0;
    let mut at_end = AtEnd::default();
    for (i, sub) in subs.iter().enumerate() {
        if i % CHECK_EVERY == CHECK_EVERY - 1 {
            call.signal.bail_if_ending().map_err(errno::trap)?;
        }
        let sub = memory.read(sub?)?;
        let e = match sub.u {
            SubscriptionU::Clock(ref c) => match clocks.deadline(c)? {
                Some(t) if t <= now => {
                    event(sub.userdata, Eventtype::Clock, (Errno::Success, Eventrwflags::empty(), 0))
                }
                _ => continue,
            },
            SubscriptionU::FdRead(ref rw) | SubscriptionU::FdWrite(ref rw) => {
                let write = matches!(sub.u, SubscriptionU::FdWrite(_));
                let type_ = if write { Eventtype::FdWrite } else { Eventtype::FdRead };
                let got = match classify(call, rw.file_descriptor, write, Some(&mut at_end)) {
                    Readiness::Now(error, flags, nbytes) => Some((error, flags, nbytes)),
                    // A descriptor renumbered since the first pass is not polled: not ready.
                    Readiness::Poll { desc, raw } => index.get(&raw).and_then(|&k| {
                        let fd = host_fd(wasi, &desc)?;
                        polled_event(fd, polled[k].revents(), write)
                    }),
                };
                match got {
                    Some(got) => event(sub.userdata, type_, got),
                    None => continue,
                }
            }
        };
        let Some(slot) = out.next() else { break };
        memory.write(slot?, e)?;
        count += 1;
    }
    Ok(count)
}
