//! Arguments, environment, clocks, randomness, `proc_exit`, `proc_raise`, `sched_yield`:
//! calls that touch no descriptor and take no lock.

use std::time::{SystemTime, UNIX_EPOCH};

use wasmtime_wasi::p1::types::{self, Clockid, Errno};
use wiggle::{GuestMemory, GuestPtr};

use super::{errno, stat, Call};

/// Writes `strings` NUL-terminated into `buf` and a pointer to each into `ptrs`.
fn write_strings(
    memory: &mut GuestMemory<'_>,
    strings: &[String],
    mut ptrs: GuestPtr<GuestPtr<u8>>,
    mut buf: GuestPtr<u8>,
) -> Result<(), types::Error> {
    for s in strings {
        memory.write(ptrs, buf)?;
        ptrs = ptrs.add(1)?;
        let bytes = s.as_bytes();
        let len = u32::try_from(bytes.len()).map_err(|_| Errno::Overflow)?;
        memory.copy_from_slice(bytes, buf.as_array(len))?;
        buf = buf.add(len)?;
        memory.write(buf, 0u8)?;
        buf = buf.add(1)?;
    }
    Ok(())
}

/// The count of `strings` and the bytes they take NUL-terminated.
fn sizes(strings: &[String]) -> Result<(types::Size, types::Size), types::Error> {
    let count = u32::try_from(strings.len()).map_err(|_| Errno::Overflow)?;
    let bytes: usize = strings.iter().map(|s| s.len() + 1).sum();
    Ok((count, u32::try_from(bytes).map_err(|_| Errno::Overflow)?))
}

pub(super) fn args_get(
    call: &Call<'_>,
    memory: &mut GuestMemory<'_>,
    argv: GuestPtr<GuestPtr<u8>>,
    argv_buf: GuestPtr<u8>,
) -> Result<(), types::Error> {
    write_strings(memory, &call.wasi.args, argv, argv_buf)
}

pub(super) fn args_sizes_get(
    call: &Call<'_>,
    _memory: &mut GuestMemory<'_>,
) -> Result<(types::Size, types::Size), types::Error> {
    sizes(&call.wasi.args)
}

pub(super) fn environ_get(
    call: &Call<'_>,
    memory: &mut GuestMemory<'_>,
    environ: GuestPtr<GuestPtr<u8>>,
    environ_buf: GuestPtr<u8>,
) -> Result<(), types::Error> {
    write_strings(memory, &call.wasi.env, environ, environ_buf)
}

pub(super) fn environ_sizes_get(
    call: &Call<'_>,
    _memory: &mut GuestMemory<'_>,
) -> Result<(types::Size, types::Size), types::Error> {
    sizes(&call.wasi.env)
}

/// The host clock behind a WASI clock id (monotonic is measured from the run's start).
fn host_clock(id: Clockid) -> rustix::time::ClockId {
    match id {
        Clockid::Realtime => rustix::time::ClockId::Realtime,
        Clockid::Monotonic => rustix::time::ClockId::Monotonic,
        Clockid::ProcessCputimeId => rustix::time::ClockId::ProcessCPUTime,
        Clockid::ThreadCputimeId => rustix::time::ClockId::ThreadCPUTime,
    }
}

pub(super) fn clock_res_get(
    _call: &Call<'_>,
    _memory: &mut GuestMemory<'_>,
    id: Clockid,
) -> Result<types::Timestamp, types::Error> {
    let res = rustix::time::clock_getres(host_clock(id));
    Ok(stat::nanos(res.tv_sec, res.tv_nsec).max(1))
}

pub(super) fn clock_time_get(
    call: &Call<'_>,
    _memory: &mut GuestMemory<'_>,
    id: Clockid,
    _precision: types::Timestamp,
) -> Result<types::Timestamp, types::Error> {
    Ok(match id {
        Clockid::Realtime => {
            let since = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|_| Errno::Overflow)?;
            u64::try_from(since.as_nanos()).map_err(|_| Errno::Overflow)?
        }
        // Nanoseconds since the run started; `poll.rs` measures absolute monotonic
        // deadlines from the same zero.
        Clockid::Monotonic => u64::try_from(call.wasi.clock_zero.elapsed().as_nanos()).unwrap_or(u64::MAX),
        other => {
            let t = rustix::time::clock_gettime(host_clock(other));
            stat::nanos(t.tv_sec, t.tv_nsec)
        }
    })
}

pub(super) fn proc_exit(_call: &Call<'_>, _memory: &mut GuestMemory<'_>, status: types::Exitcode) -> wasmtime::Error {
    // Ends the calling thread; the thread's runner then ends the run with this code.
    wasmtime::Error::new(wasmtime_wasi::I32Exit(status as i32))
}

pub(super) fn proc_raise(
    _call: &Call<'_>,
    _memory: &mut GuestMemory<'_>,
    _sig: types::Signal,
) -> Result<(), types::Error> {
    Err(Errno::Notsup.into())
}

pub(super) fn sched_yield(_call: &Call<'_>, _memory: &mut GuestMemory<'_>) -> Result<(), types::Error> {
    std::thread::yield_now();
    Ok(())
}

/// Most random bytes produced (and buffered) at once.
const RANDOM_CHUNK: u32 = 64 * 1024;

/// Random bytes from the calling thread's CSPRNG (`rand`'s `ThreadRng`: ChaCha12, seeded
/// and periodically reseeded from the OS), as Wasmtime's WASI does: no system call per
/// call, nothing shared between threads.
pub(super) fn random_get(
    call: &Call<'_>,
    memory: &mut GuestMemory<'_>,
    buf: GuestPtr<u8>,
    buf_len: types::Size,
) -> Result<(), types::Error> {
    use rand::Rng as _;
    let mut rng = rand::rng();
    let mut small = [0u8; 256];
    let mut large = Vec::new();
    let chunk: &mut [u8] = if buf_len as usize <= small.len() {
        &mut small[..buf_len as usize]
    } else {
        large.resize(buf_len.min(RANDOM_CHUNK) as usize, 0);
        &mut large
    };
    let mut done = 0u32;
    while done < buf_len {
        // A 4 GiB request takes seconds: stop between chunks when the run ends.
        call.signal.bail_if_ending().map_err(errno::trap)?;
        let n = (buf_len - done).min(chunk.len() as u32);
        let part = &mut chunk[..n as usize];
        rng.fill_bytes(part);
        memory.copy_from_slice(part, buf.add(done)?.as_array(n))?;
        done += n;
    }
    Ok(())
}
