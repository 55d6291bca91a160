//! Owned handles: objects handed to C as pointers that C must give back to a `_free`.
//! Every handle type implements [`Handle`], so each is boxed and freed one way, and a
//! pointer can only be freed as the type it was made as.

/// A Rust object owned by the C caller through a pointer (a `Box` underneath).
pub(crate) trait Handle: Sized {
    /// Moves the object to the heap and hands ownership to the caller.
    fn into_raw(self) -> *mut Self {
        Box::into_raw(Box::new(self))
    }

    /// Frees a handle: the body of every `wt_*_free`. NULL is ignored.
    ///
    /// # Safety
    /// `ptr` is NULL or came from [`Handle::into_raw`] for this type, is not yet freed and
    /// is not in use by another call.
    unsafe fn free(ptr: *mut Self) {
        if !ptr.is_null() {
            // SAFETY: guaranteed by the caller (see above).
            drop(unsafe { Box::from_raw(ptr) });
        }
    }
}
