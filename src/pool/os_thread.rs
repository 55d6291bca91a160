//! A pool thread is a bare detached pthread, not a `std::thread`.
//!
//! In a Rust host, every `std::thread` maps a signal stack of its own at its start (a
//! mapping, a guard page, `sigaltstack`) and unmaps it at its exit, allocates a handle, a
//! result slot and its name, and runs the spawn hooks. A pool thread needs none of that:
//! its signal stack is the bottom of its own stack (`signal_stack.rs`), nobody joins it
//! (callers put what they wait for in the job), and its body catches every panic. With
//! thousands of threads started at once, those extra system calls, each taking the
//! process's memory-map lock, were a tenth of the time to start one.
//!
//! The standard library still works on these threads: `std::thread::current()` makes a
//! handle on first use (unnamed: a panic message says `<unnamed>`, as the standard
//! library does not know the pthread's name), and thread-local destructors run at the
//! thread's exit.

use std::ffi::c_void;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What a new thread runs.
type Body = Box<dyn FnOnce() + Send>;

/// The name every pool thread has (at most 15 bytes, the kernel's limit).
const NAME: &std::ffi::CStr = c"wasithreads-wor";

/// Starts a detached thread with a stack of `stack_size` bytes (rounded up to pages) that
/// runs `body`. On error `body` is dropped unrun.
pub(super) fn spawn(stack_size: usize, body: Body) -> io::Result<()> {
    let page = page_size();
    let stack_size = stack_size.div_ceil(page).saturating_mul(page);
    let arg = Box::into_raw(Box::new(body));
    // SAFETY: `attr` is used and destroyed only once `pthread_attr_init` made it. `start`
    // takes back the box `arg` points to, exactly once, on the new thread; if no thread
    // was made, it is taken back here instead.
    let made = unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        let mut made = libc::pthread_attr_init(&mut attr);
        if made == 0 {
            made = libc::pthread_attr_setstacksize(&mut attr, stack_size);
            if made == 0 {
                made = libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
            }
            if made == 0 {
                let mut thread: libc::pthread_t = 0;
                made = libc::pthread_create(&mut thread, &attr, start, arg.cast());
            }
            libc::pthread_attr_destroy(&mut attr);
        }
        if made != 0 {
            drop(Box::from_raw(arg));
        }
        made
    };
    match made {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// The new thread's start: names it and runs its body. Nothing unwinds out of here: a
/// panic is caught (a payload whose drop panics in turn aborts, as anywhere in Rust).
extern "C" fn start(arg: *mut c_void) -> *mut c_void {
    // SAFETY: `arg` is the box `spawn` leaked for this thread alone.
    let body = unsafe { Box::from_raw(arg.cast::<Body>()) };
    // SAFETY: names the calling thread with a NUL-terminated string of at most 15 bytes.
    unsafe { libc::pthread_setname_np(libc::pthread_self(), NAME.as_ptr()) };
    // The body catches its jobs' panics; this keeps any other one from unwinding into C.
    let _ = catch_unwind(AssertUnwindSafe(body));
    std::ptr::null_mut()
}

fn page_size() -> usize {
    // SAFETY: `sysconf` reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page).ok().filter(|&p| p > 0).unwrap_or(4096)
}
