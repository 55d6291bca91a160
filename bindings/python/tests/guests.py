"""Hand-written WAT guests for the tests (the library compiles WAT text directly).

Every threaded guest imports `wasi::thread-spawn` and a shared memory, and exports
`memory`, `_start` and `wasi_thread_start(tid, arg)`. Spawned threads get tids 1, 2, ...
in spawn order (one spawning thread).
"""

from pathlib import Path

_HEADER = r"""
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "env" "memory" (memory 1 1 shared))
  (export "memory" (memory 0))

  ;; Writes $len bytes at $ptr to $fd, using 16 bytes of scratch at $scratch.
  (func $write (param $fd i32) (param $ptr i32) (param $len i32) (param $scratch i32)
    (i32.store (local.get $scratch) (local.get $ptr))
    (i32.store offset=4 (local.get $scratch) (local.get $len))
    (drop (call $fd_write (local.get $fd) (local.get $scratch) (i32.const 1)
                          (i32.add (local.get $scratch) (i32.const 8)))))

  ;; Blocks this thread until the run ends (word 4 is never notified).
  (func $forever
    (loop $again
      (drop (memory.atomic.wait32 (i32.const 4) (i32.const 0) (i64.const -1)))
      (br $again)))

  ;; Adds one to the counter at 0 and wakes whoever waits on it.
  (func $count_in
    (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))
    (drop (memory.atomic.notify (i32.const 0) (i32.const -1))))

  ;; Waits until the counter at 0 reaches $n.
  (func $wait_count (param $n i32) (local $seen i32)
    (block $done
      (loop $again
        (local.set $seen (i32.atomic.load (i32.const 0)))
        (br_if $done (i32.ge_u (local.get $seen) (local.get $n)))
        (drop (memory.atomic.wait32 (i32.const 0) (local.get $seen) (i64.const -1)))
        (br $again))))

  (func $crash unreachable)
"""


def printers(threads: int, exit_code: int = 0) -> bytes:
    """Main spawns `threads` threads (arg 0..threads-1, at most 10); thread n writes
    "line from thread n\\n" to stdout and returns. Main waits for all of them, writes
    "main done\\n" and returns (exit code 0) or calls proc_exit(exit_code)."""
    assert 1 <= threads <= 10
    end = f"(call $proc_exit (i32.const {exit_code}))" if exit_code else ""
    return f"""(module {_HEADER}
  (data (i32.const 256) "line from thread 0\\n")
  (data (i32.const 300) "main done\\n")
  (func (export "wasi_thread_start") (param $tid i32) (param $n i32) (local $at i32)
    (local.set $at (i32.add (i32.const 1024) (i32.mul (local.get $n) (i32.const 64))))
    (memory.copy (local.get $at) (i32.const 256) (i32.const 19))
    (i32.store8 offset=17 (local.get $at) (i32.add (i32.const 48) (local.get $n)))
    (call $write (i32.const 1) (local.get $at) (i32.const 19) (i32.add (local.get $at) (i32.const 32)))
    (call $count_in))
  (func (export "_start") (local $n i32)
    (loop $s
      (drop (call $spawn (local.get $n)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $s (i32.lt_u (local.get $n) (i32.const {threads}))))
    (call $wait_count (i32.const {threads}))
    (call $write (i32.const 1) (i32.const 300) (i32.const 10) (i32.const 900))
    {end}))
""".encode()


def blocker(threads: int) -> bytes:
    """Main spawns `threads` threads that each count in and block forever; once all have
    counted in, main writes "ready\\n" to stdout and blocks forever. Only a timeout, a
    cancel or the host's end of the run stops it."""
    return f"""(module {_HEADER}
  (data (i32.const 300) "ready\\n")
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (call $count_in)
    (call $forever))
  (func (export "_start") (local $n i32)
    (block $spawned
      (br_if $spawned (i32.eqz (i32.const {threads})))
      (loop $s
        (drop (call $spawn (local.get $n)))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br_if $s (i32.lt_u (local.get $n) (i32.const {threads})))))
    (call $wait_count (i32.const {threads}))
    (call $write (i32.const 1) (i32.const 300) (i32.const 6) (i32.const 900))
    (call $forever)))
""".encode()


# Main spawns one thread (tid 1) that traps in $crash; main blocks forever.
TRAP_IN_THREAD = f"""(module {_HEADER}
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (call $crash))
  (func (export "_start")
    (drop (call $spawn (i32.const 0)))
    (call $forever)))
""".encode()

# `_start` itself traps in $crash (thread 0).
TRAP_IN_MAIN = f"""(module {_HEADER}
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32))
  (func (export "_start") (call $crash)))
""".encode()

# Main spawns two threads; the second (tid 2) calls proc_exit(33), the first blocks.
EXIT_IN_THREAD = f"""(module {_HEADER}
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (if (i32.eq (local.get $arg) (i32.const 1)) (then (call $proc_exit (i32.const 33))))
    (call $forever))
  (func (export "_start")
    (drop (call $spawn (i32.const 0)))
    (drop (call $spawn (i32.const 1)))
    (call $forever)))
""".encode()

# Main spins in a loop forever.
SPIN = f"""(module {_HEADER}
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32))
  (func (export "_start") (loop $l (br $l))))
""".encode()

# Copies stdin to stdout, 7 bytes at a time, then writes "<eof>" to stderr.
ECHO = f"""(module {_HEADER}
  (data (i32.const 300) "<eof>")
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32))
  (func (export "_start") (local $n i32)
    (block $eof
      (loop $again
        (i32.store (i32.const 800) (i32.const 1000))
        (i32.store (i32.const 804) (i32.const 7))
        (br_if $eof (call $fd_read (i32.const 0) (i32.const 800) (i32.const 1) (i32.const 808)))
        (local.set $n (i32.load (i32.const 808)))
        (br_if $eof (i32.eqz (local.get $n)))
        (call $write (i32.const 1) (i32.const 1000) (local.get $n) (i32.const 900))
        (br $again)))
    (call $write (i32.const 2) (i32.const 300) (i32.const 5) (i32.const 900))))
""".encode()

# Writes its argv, then its environment, NUL-separated as WASI hands them over, to stdout.
ARGS_ENV = b"""(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func $out (param $ptr i32) (param $len i32)
    (i32.store (i32.const 16) (local.get $ptr))
    (i32.store (i32.const 20) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24))))
  (func (export "_start")
    (drop (call $args_sizes_get (i32.const 0) (i32.const 4)))
    (drop (call $args_get (i32.const 4096) (i32.const 8192)))
    (call $out (i32.const 8192) (i32.load (i32.const 4)))
    (drop (call $environ_sizes_get (i32.const 0) (i32.const 4)))
    (drop (call $environ_get (i32.const 4096) (i32.const 16384)))
    (call $out (i32.const 16384) (i32.load (i32.const 4)))))
"""

# Creates "out.txt" in its first preopened directory (fd 3) and writes "written by wasm\n"
# into it; exits with the WASI errno of path_open if that fails.
WRITE_FILE = b"""(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "out.txt")
  (data (i32.const 200) "written by wasm\\n")
  (func (export "_start") (local $errno i32)
    ;; oflags CREAT|TRUNC, rights fd_write
    (local.set $errno (call $path_open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 7)
                                       (i32.const 9) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 8)))
    (if (local.get $errno) (then (call $proc_exit (local.get $errno))))
    (i32.store (i32.const 16) (i32.const 200))
    (i32.store (i32.const 20) (i32.const 16))
    (drop (call $fd_write (i32.load (i32.const 8)) (i32.const 16) (i32.const 1) (i32.const 24)))))
"""

# Recurses without end: a stack-overflow trap.
RECURSE = f"""(module {_HEADER}
  (func $down (param $n i32) (result i32)
    (i32.add (i32.const 1) (call $down (i32.add (local.get $n) (i32.const 1)))))
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32))
  (func (export "_start") (drop (call $down (i32.const 0)))))
""".encode()

# Imports thread-spawn but a non-shared memory: refused at load.
UNSHARED = b"""(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "env" "memory" (memory 1 1))
  (func (export "_start")))
"""

# No _start: loads, but a run cannot start.
NO_START = b"""(module (memory (export "memory") 1))"""

# Main and two spawned threads write "tick\n" to stdout in a loop, without end.
TICKER = f"""(module {_HEADER}
  (data (i32.const 300) "tick\\n")
  (func $tick (param $scratch i32)
    (loop $again
      (call $write (i32.const 1) (i32.const 300) (i32.const 5) (local.get $scratch))
      (br $again)))
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (call $tick (i32.add (i32.const 1024) (i32.mul (local.get $arg) (i32.const 32)))))
  (func (export "_start")
    (drop (call $spawn (i32.const 1)))
    (drop (call $spawn (i32.const 2)))
    (call $tick (i32.const 1024))))
""".encode()


def spawner(threads: int) -> bytes:
    """Main spawns `threads` threads that block forever, then calls proc_exit with the
    number of spawns that failed (returned a negative value)."""
    return f"""(module {_HEADER}
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (call $forever))
  (func (export "_start") (local $n i32) (local $failed i32)
    (loop $s
      (if (i32.lt_s (call $spawn (local.get $n)) (i32.const 0))
        (then (local.set $failed (i32.add (local.get $failed) (i32.const 1)))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $s (i32.lt_u (local.get $n) (i32.const {threads}))))
    (call $proc_exit (local.get $failed))))
""".encode()


# Opens its first preopened directory (fd 3) as "." again and again until path_open
# fails; exits with 100 * (directories opened) + the WASI errno of the failure.
OPEN_UNTIL_FULL = b"""(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) ".")
  (func (export "_start") (local $errno i32) (local $opened i32)
    (loop $again
      ;; oflags DIRECTORY
      (local.set $errno (call $path_open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 1)
                                         (i32.const 2) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 8)))
      (if (i32.eqz (local.get $errno))
        (then (local.set $opened (i32.add (local.get $opened) (i32.const 1))) (br $again))))
    (call $proc_exit (i32.add (i32.mul (local.get $opened) (i32.const 100)) (local.get $errno)))))
"""


# A table of 1 element grown by 1000: exits with 1 if table.grow failed, else 0.
GROW_TABLE = b"""(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (table $t 1 funcref)
  (func (export "_start")
    (call $proc_exit (i32.eq (table.grow $t (ref.null func) (i32.const 1000)) (i32.const -1)))))
"""


# Shared with the Go tests (tests/guests/wat): SOCKET_HI accepts one connection on the
# listener at fd 3, sends "hi", shuts down its side and exits with 0; FD3_FILETYPE exits
# with fd 3's WASI file type (6: socket_stream).
_SHARED = Path(__file__).resolve().parents[3] / "tests" / "guests" / "wat"
SOCKET_HI = (_SHARED / "socket-hi.wat").read_bytes()
FD3_FILETYPE = (_SHARED / "fd3-filetype.wat").read_bytes()
# Creates the file "f" in preopen fd 3 and writes 5 bytes to it: exits with
# 100 * (path_open's errno) + (fd_write's errno).
CREATE_AND_WRITE = (_SHARED / "create-and-write.wat").read_bytes()
