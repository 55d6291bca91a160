//! (stub)

use wasmtime_wasi::p1::types;
use wiggle::{GuestMemory, GuestPtr};

use super::Ctx;

pub(super) fn poll_oneoff(ctx: &mut Ctx<'_>, memory: &mut GuestMemory<'_>, subs: GuestPtr<types::Subscription>, events: GuestPtr<types::Event>, nsubscriptions: types::Size) -> Result<types::Size, types::Error> {
    let _ = subs;
    let _ = events;
    let _ = nsubscriptions;
    let _ = (ctx, memory);
    Err(types::Errno::Nosys.into())
}
