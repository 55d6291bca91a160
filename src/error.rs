//! Error kinds: what sort of failure an error of the Rust API is, for a host to branch
//! on (the C API's `wt_error_kind`, the bindings' exception classes and sentinels).
//!
//! A kind is decided where an error is made, never read from its message: the code that
//! makes an error marks it with [`kind`] (a [`Result`] extension) or [`error`], and
//! [`ErrorKind::of`] finds the mark in the error's cause chain. The mark is invisible in
//! the message: `format!("{e:#}")` is the same with or without it. The first mark made
//! stays: marking an error that already has a kind (one made deeper, with more
//! knowledge) keeps the deeper kind, so a caller's mark is a default for errors that
//! came unmarked from Wasmtime or the standard library.

use std::fmt;

/// What sort of failure an error of this library is. Get it with [`ErrorKind::of`]; the
/// OS error behind it, if any, with [`os_errno`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An internal error of the library (a panic caught at the C boundary, an unexpected
    /// failure inside Wasmtime), or one no other kind fits.
    Other,
    /// The bytes are not a module wasithreads can compile: empty, neither WebAssembly nor
    /// WAT, invalid, a shape it does not support (two shared memories, a 64-bit one, …),
    /// or serialized bytes it refuses (another version or engine settings, truncated).
    BadModule,
    /// A valid module that cannot run as it is: an import wasithreads does not provide,
    /// `wasi::thread-spawn` without a shared memory, a missing or mistyped `_start`, a
    /// memory the module needs that is not there.
    Link,
    /// A configured limit too low for the module (`max_memory` below its minimum memory)
    /// or for stdio and the directories (`max_fds`), or the OS refusing a thread or
    /// memory.
    Limit,
    /// The API was misused: a NULL or non-UTF-8 argument, a setting out of range, a
    /// module of another engine, a core dump path that names no file, …
    Misuse,
    /// A host file, directory or descriptor operation failed (the module file, a
    /// preopened directory, a stdio file or descriptor, the core dump's directory,
    /// Wasmtime's cache configuration); [`os_errno`] gives the OS error.
    Io,
    /// An [`Instance`](crate::Instance) ended (a trap or `proc_exit` in any of its
    /// threads, its timeout, a cancel or close): the call could not run or did not return.
    /// The error is an [`InstanceEnded`](crate::InstanceEnded) with the instance's exit.
    Ended,
}

impl ErrorKind {
    /// The kind of an error the Rust API returned: the mark its maker gave it, or
    /// [`ErrorKind::Other`] when it has none.
    pub fn of(error: &anyhow::Error) -> ErrorKind {
        marked(error).unwrap_or(ErrorKind::Other)
    }
}

/// The OS error number (`errno`) behind an error, if one of its causes is an OS error
/// (a [`std::io::Error`] with an OS code, or a `rustix` errno): set for
/// [`ErrorKind::Io`] errors that a failed OS call caused, and for a [`ErrorKind::Limit`]
/// when the OS refused a thread.
pub fn os_errno(error: &anyhow::Error) -> Option<i32> {
    error.chain().find_map(|e| {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            io.raw_os_error()
        } else {
            e.downcast_ref::<rustix::io::Errno>().map(|n| n.raw_os_error())
        }
    })
}

/// The kind marked on `error`, if any.
fn marked(error: &anyhow::Error) -> Option<ErrorKind> {
    error.chain().find_map(|e| e.downcast_ref::<Marked>()).map(|m| m.kind)
}

/// An error with its kind. It shows as the error it wraps: the same text, the same
/// causes (`source`), so a cause chain is unchanged by the mark.
struct Marked {
    kind: ErrorKind,
    inner: anyhow::Error,
}

impl fmt::Display for Marked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The outermost message only; the causes follow through `source`.
        fmt::Display::fmt(&*self.inner, f)
    }
}

impl fmt::Debug for Marked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl std::error::Error for Marked {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source()
    }
}

/// The error of type `T` in `error` or its causes, also inside a kind's mark.
pub(crate) fn find<T: fmt::Display + fmt::Debug + Send + Sync + 'static>(error: &anyhow::Error) -> Option<&T> {
    error
        .downcast_ref::<T>()
        .or_else(|| error.chain().find_map(|e| e.downcast_ref::<Marked>().and_then(|m| m.inner.downcast_ref::<T>())))
}

/// `error` marked with `kind`, unless it already has a kind.
pub(crate) fn with_kind(kind: ErrorKind, error: impl Into<anyhow::Error>) -> anyhow::Error {
    let inner = error.into();
    if marked(&inner).is_some() {
        return inner;
    }
    anyhow::Error::new(Marked { kind, inner })
}

/// A new error of `kind` with `message`.
pub(crate) fn error(kind: ErrorKind, message: impl fmt::Display + fmt::Debug + Send + Sync + 'static) -> anyhow::Error {
    with_kind(kind, anyhow::Error::msg(message))
}

/// Marks the error of a `Result` with a kind (see [`with_kind`]).
pub(crate) trait ResultKind<T> {
    /// The result, its error marked with `kind` unless it has one.
    fn kind(self, kind: ErrorKind) -> anyhow::Result<T>;
}

impl<T, E: Into<anyhow::Error>> ResultKind<T> for Result<T, E> {
    fn kind(self, kind: ErrorKind) -> anyhow::Result<T> {
        self.map_err(|e| with_kind(kind, e))
    }
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    use super::*;

    #[test]
    fn the_mark_leaves_the_message_and_causes_alone() {
        let io = std::io::Error::from_raw_os_error(libc::ENOENT);
        let plain = anyhow::Error::new(std::io::Error::from_raw_os_error(libc::ENOENT)).context("reading x");
        let marked = with_kind(ErrorKind::Io, anyhow::Error::new(io).context("reading x")).context("loading x");
        assert_eq!(format!("{marked:#}"), format!("{:#}", plain.context("loading x")));
        assert_eq!(ErrorKind::of(&marked), ErrorKind::Io);
        assert_eq!(os_errno(&marked), Some(libc::ENOENT));
    }

    #[test]
    fn the_first_mark_stays() {
        let e = error(ErrorKind::Link, "unknown import");
        let e = with_kind(ErrorKind::BadModule, e.context("loading x"));
        assert_eq!(ErrorKind::of(&e), ErrorKind::Link);
        assert_eq!(format!("{e:#}"), "loading x: unknown import");
        assert_eq!(os_errno(&e), None);
    }

    #[test]
    fn an_unmarked_error_is_other() {
        assert_eq!(ErrorKind::of(&anyhow::anyhow!("something")), ErrorKind::Other);
        let r: Result<(), std::io::Error> = Err(std::io::Error::from_raw_os_error(libc::EACCES));
        let e = r.context("opening").kind(ErrorKind::Io).unwrap_err();
        assert_eq!((ErrorKind::of(&e), os_errno(&e)), (ErrorKind::Io, Some(libc::EACCES)));
    }
}
