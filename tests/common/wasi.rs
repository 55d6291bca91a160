//! WASI preview 1 numbers the guests of the tests pass and the tests expect back.

// Errnos.
pub const SUCCESS: i32 = 0;
pub const AGAIN: i32 = 6;
pub const BADF: i32 = 8;
pub const EXIST: i32 = 20;
pub const INVAL: i32 = 28;
pub const ISDIR: i32 = 31;
pub const LOOP: i32 = 32;
pub const MFILE: i32 = 33;
pub const NAMETOOLONG: i32 = 37;
pub const NOENT: i32 = 44;
pub const NOTDIR: i32 = 54;
pub const NOTEMPTY: i32 = 55;
pub const NOTSUP: i32 = 58;
pub const NXIO: i32 = 60;
pub const PERM: i32 = 63;
pub const SPIPE: i32 = 70;

// Rights bits.
pub const FD_READ: i64 = 1 << 1;
pub const FD_WRITE: i64 = 1 << 6;
/// Every right preview 1 defines (bits 0 to 28).
pub const ALL_RIGHTS: i64 = (1 << 29) - 1;

// oflags.
pub const CREAT: i32 = 1;
pub const DIRECTORY: i32 = 2;
pub const EXCL: i32 = 4;
pub const TRUNC: i32 = 8;

// fdflags.
pub const APPEND: i32 = 1;
pub const NONBLOCK: i32 = 4;

// lookupflags.
pub const FOLLOW: i32 = 1;

/// An hour in nanoseconds: a sleep or deadline no test waits out.
pub const HOUR_NS: i64 = 3_600_000_000_000;
