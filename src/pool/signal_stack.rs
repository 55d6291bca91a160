//! The alternate signal stack of a pool thread: the bottom of its own stack.

/// The size of the alternate signal stack each pool thread gives Wasmtime: the minimum
/// Wasmtime accepts (`MIN_STACK_SIZE` in its `lazy_per_thread_init`). Without one of that
/// size already installed, Wasmtime maps one per thread on its first wasm call (a
/// mapping, a guard page, two more system calls) and unmaps it when the thread exits.
pub(super) const SIGNAL_STACK: usize = 256 * 1024;

/// The lowest [`SIGNAL_STACK`] bytes of a pool thread's own stack, made its alternate
/// signal stack for the thread's life, so that Wasmtime uses it instead of mapping one.
/// The thread's stack is that much larger than the pool's stack size, so the frames above
/// never reach it, and the stack's guard page lies right below it: a signal handler that
/// overflowed it would fault there, as on Wasmtime's own signal stack.
pub(super) struct SignalStack;

impl SignalStack {
    /// Installs it, unless the thread's stack is not what [`Pool::execute`] asked for
    /// (then Wasmtime maps its own, as on any thread).
    pub(super) fn at_stack_bottom() -> Option<SignalStack> {
        let (low, size) = own_stack()?;
        if size < 2 * SIGNAL_STACK {
            return None;
        }
        let stack = libc::stack_t { ss_sp: low, ss_flags: 0, ss_size: SIGNAL_STACK };
        // SAFETY: `low..low + SIGNAL_STACK` is the bottom of this thread's own stack,
        // mapped read-write for as long as the thread lives, which outlives this value
        // (a local of the thread's outermost frame); nothing else uses those bytes, as
        // the thread was made `SIGNAL_STACK` larger than the stack it runs on.
        let installed = unsafe { libc::sigaltstack(&stack, std::ptr::null_mut()) } == 0;
        installed.then_some(SignalStack)
    }
}

impl Drop for SignalStack {
    fn drop(&mut self) {
        let off = libc::stack_t { ss_sp: std::ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
        // SAFETY: disables this thread's alternate signal stack before its stack is
        // unmapped (or reused for another thread); no pointer is kept.
        unsafe { libc::sigaltstack(&off, std::ptr::null_mut()) };
    }
}

/// The lowest address and the size of the calling thread's stack (above its guard page).
fn own_stack() -> Option<(*mut libc::c_void, usize)> {
    // SAFETY: `attr` is initialised by `pthread_getattr_np` before it is read and
    // destroyed once; the out-parameters are locals.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let (mut low, mut size) = (std::ptr::null_mut(), 0usize);
        let got = libc::pthread_attr_getstack(&attr, &mut low, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        (got == 0 && !low.is_null()).then_some((low, size))
    }
}
