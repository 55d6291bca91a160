//! `poll_oneoff` on clocks, stdin and stdout/stderr, served without the context lock and
//! woken when the run ends. Subscriptions on anything else go to the WASI context.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::event::PollFlags;
use wasmtime::{Caller, Linker};
use wasmtime_wasi::p1::types::{
    Clockid, Errno, Event, EventFdReadwrite, Eventrwflags, Eventtype, Subclockflags, Subscription,
    SubscriptionClock, SubscriptionFdReadwrite, SubscriptionU,
};
use wasmtime_wasi::runtime::in_tokio;
use wiggle::GuestPtr;

use super::memory::{with_ctx, with_memory};
use super::{P1_MODULE, delegate, errno};
use crate::group::StoreData;

/// Most subscriptions served here; more go to the WASI context.
const MAX_SUBSCRIPTIONS: u32 = 4096;

/// What one subscription waits for.
enum Wait {
    Until(Instant),
    Stdin,
    Writable,
}

/// The plan for a call, or `None` when the context must serve it.
fn plan(subs: &[Subscription], owns: impl Fn(i32) -> bool) -> Option<Vec<Wait>> {
    let now = Instant::now();
    subs.iter()
        .map(|s| match &s.u {
            SubscriptionU::Clock(SubscriptionClock { id, timeout, flags, .. }) => {
                let relative = if !flags.contains(Subclockflags::SUBSCRIPTION_CLOCK_ABSTIME) {
                    *timeout
                } else if matches!(id, Clockid::Realtime) {
                    let epoch_ns = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_nanos();
                    timeout.saturating_sub(u64::try_from(epoch_ns).ok()?)
                } else {
                    return None; // absolute monotonic deadlines use the context's clock
                };
                Some(Wait::Until(now.checked_add(Duration::from_nanos(relative))?))
            }
            SubscriptionU::FdRead(SubscriptionFdReadwrite { file_descriptor }) => {
                let fd = u32::from(*file_descriptor) as i32;
                (fd == 0 && owns(fd)).then_some(Wait::Stdin)
            }
            SubscriptionU::FdWrite(SubscriptionFdReadwrite { file_descriptor }) => {
                let fd = u32::from(*file_descriptor) as i32;
                ((fd == 1 || fd == 2) && owns(fd)).then_some(Wait::Writable)
            }
        })
        .collect()
}

fn event(sub: &Subscription, type_: Eventtype) -> Event {
    Event {
        userdata: sub.userdata,
        error: Errno::Success,
        type_,
        fd_readwrite: EventFdReadwrite { nbytes: 1, flags: Eventrwflags::empty() },
    }
}

pub(super) fn add_to_linker(linker: &mut Linker<StoreData>) -> anyhow::Result<()> {
    linker.func_wrap(
        P1_MODULE,
        "poll_oneoff",
        |mut caller: Caller<'_, StoreData>, subs_ptr: i32, events_ptr: i32, n: i32, nevents: i32| -> wasmtime::Result<i32> {
            let read = with_memory(&mut caller, |mem, group, _| {
                // Long lists go to the context, which limits them with its hostcall fuel.
                if n as u32 > MAX_SUBSCRIPTIONS {
                    return Ok(None);
                }
                let subs = GuestPtr::<[Subscription]>::new((subs_ptr as u32, n as u32));
                let subs: Result<Vec<_>, _> = subs.iter().map(|p| mem.read(p?)).collect();
                Ok(subs.ok().and_then(|subs| Some((plan(&subs, |fd| group.stdio.owns(fd))?, subs))))
            })?;
            let Some((waits, subs)) = read.filter(|(w, _)| !w.is_empty()) else {
                return with_ctx(&mut caller, |ctx, mem| {
                    in_tokio(delegate::poll_oneoff(ctx, mem, subs_ptr, events_ptr, n, nevents))
                });
            };
            let group = caller.data().group.clone();
            let teardown = &group.teardown;
            let earliest = waits.iter().filter_map(|w| if let Wait::Until(t) = w { Some(*t) } else { None }).min();
            let wants_stdin = waits.iter().any(|w| matches!(w, Wait::Stdin));
            let mut stdin_ready = false;
            loop {
                let now = Instant::now();
                let clock_due = earliest.is_some_and(|t| t <= now);
                if stdin_ready || clock_due || waits.iter().any(|w| matches!(w, Wait::Writable)) {
                    break;
                }
                match group.stdio.stdin.fd().filter(|_| wants_stdin) {
                    Some(fd) => {
                        let timeout = earliest.map(|t| t.saturating_duration_since(now));
                        stdin_ready = teardown.wait_fd(fd, PollFlags::IN, timeout)?;
                    }
                    // Bytes and null stdin never block.
                    None if wants_stdin => stdin_ready = true,
                    None => teardown.sleep_until(earliest)?,
                }
                teardown.bail_if_ending()?;
            }
            let now = Instant::now();
            let events: Vec<Event> = subs
                .iter()
                .zip(&waits)
                .filter_map(|(s, w)| match w {
                    Wait::Until(t) if *t <= now => Some(event(s, Eventtype::Clock)),
                    Wait::Stdin if stdin_ready => Some(event(s, Eventtype::FdRead)),
                    Wait::Writable => Some(event(s, Eventtype::FdWrite)),
                    _ => None,
                })
                .collect();
            with_memory(&mut caller, |mem, _, _| {
                let out = GuestPtr::<[Event]>::new((events_ptr as u32, events.len() as u32));
                let r = out
                    .iter()
                    .zip(&events)
                    .try_for_each(|(p, e)| mem.write(p?, e.clone()))
                    .and_then(|_| mem.write(GuestPtr::<u32>::new(nevents as u32), events.len() as u32));
                Ok(if r.is_ok() { 0 } else { errno::FAULT })
            })
        },
    )?;
    Ok(())
}
