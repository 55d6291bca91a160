//! How much native stack the calling host thread has left: wasm called from a host
//! thread runs on that thread's stack, so a call first checks there is room for the
//! engine's `max_wasm_stack` plus the host code WASI calls run.

use std::cell::Cell;

use anyhow::Result;

use crate::error::{error, ErrorKind};

/// Stack the library's own host code (WASI calls, host functions' glue) needs beside the
/// wasm stack.
pub(crate) const HOST_MARGIN: usize = 256 << 10;

thread_local! {
    /// The lowest address of this thread's stack; 0 until first asked.
    static STACK_LOW: Cell<usize> = const { Cell::new(0) };
}

/// The lowest address of the calling thread's stack (its guard page excluded), or 0 when
/// the OS does not say.
fn stack_low() -> usize {
    STACK_LOW.with(|low| {
        if low.get() == 0 {
            low.set(query_stack_low());
        }
        low.get()
    })
}

fn query_stack_low() -> usize {
    // SAFETY: `attr` is initialised by pthread_getattr_np before it is read and destroyed
    // once; the out-pointers point to locals.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return 0;
        }
        let (mut addr, mut size, mut guard) = (std::ptr::null_mut(), 0usize, 0usize);
        let ok = libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0;
        libc::pthread_attr_getguardsize(&attr, &mut guard);
        libc::pthread_attr_destroy(&mut attr);
        if ok {
            addr as usize + guard
        } else {
            0
        }
    }
}

/// Ok when the calling thread has at least `wasm_stack` + [`HOST_MARGIN`] bytes of
/// stack left; else an error saying how much it has and needs.
pub(crate) fn check(wasm_stack: usize) -> Result<()> {
    let low = stack_low();
    if low == 0 {
        return Ok(());
    }
    let marker = 0u8;
    let here = std::ptr::addr_of!(marker) as usize;
    let left = here.saturating_sub(low);
    let need = wasm_stack + HOST_MARGIN;
    if left < need {
        return Err(error(
            ErrorKind::Limit,
            format!(
                "the calling thread has {} KiB of stack left; calling into wasm needs {} KiB (the engine's max wasm \
                 stack plus {} KiB for host code): call from a thread with a bigger stack, or lower the engine's \
                 max wasm stack",
                left >> 10,
                need >> 10,
                HOST_MARGIN >> 10
            ),
        ));
    }
    Ok(())
}
