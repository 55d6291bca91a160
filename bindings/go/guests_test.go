package wasithreads_test

import (
	"fmt"
	"os"
	"path/filepath"
)

// Hand-written WAT guests (the library accepts WAT text). Threaded ones import
// wasi::thread-spawn and a shared memory and export wasi_thread_start(tid, arg).

// The guests every language's tests share, read from tests/guests/wat (their comments
// there say what each does):
//   - printers: thread N writes "line from thread N\n"; main joins four and calls
//     proc_exit(3), or with two arguments first spawns a thread (tid 1) that traps;
//   - writers: eight threads each write 50 blocks of 1000 bytes of their own letter
//     ('A' for tid 1, ...) to stdout; main joins them and returns;
//   - blocked: three threads wait forever / spin / sleep an hour and main spins: the
//     run ends only by timeout or cancel.
var (
	printers = sharedGuest("printers.wat")
	writers  = sharedGuest("writers.wat")
	blocked  = sharedGuest("blocked.wat")
)

// sharedGuest reads tests/guests/wat/NAME of the repository (go test runs in the
// package directory, bindings/go).
func sharedGuest(name string) string {
	text, err := os.ReadFile(filepath.Join("..", "..", "tests", "guests", "wat", name))
	if err != nil {
		panic(err)
	}
	return string(text)
}

// exiter returns a guest whose thread tid 1 (inThread) or main calls proc_exit(code);
// in the first case main waits forever meanwhile.
func exiter(code int32, inThread bool) string {
	main := fmt.Sprintf("(call $exit (i32.const %d))", code)
	if inThread {
		main = fmt.Sprintf(`(drop (call $spawn (i32.const %d)))
    (drop (memory.atomic.wait32 (i32.const 8) (i32.const 0) (i64.const -1)))`, code)
	}
	return `(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "env" "memory" (memory 1 1 shared))
  (func (export "wasi_thread_start") (param $tid i32) (param $code i32)
    (call $exit (local.get $code)))
  (func (export "_start")
    ` + main + `))`
}

// returner: _start returns at once (exit code 0).
const returner = `(module (memory (export "memory") 1) (func (export "_start")))`

// tiny: the smallest runnable module, for the benchmark.
const tiny = `(module (func (export "_start")))`

// echo copies stdin to stdout until end-of-file (a plain WASI program, no threads).
const echo = `(module
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (block $eof (loop $more
      (i32.store (i32.const 0) (i32.const 1024))
      (i32.store (i32.const 4) (i32.const 4096))
      (br_if $eof (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 16)))
      (br_if $eof (i32.eqz (i32.load (i32.const 16))))
      (i32.store (i32.const 4) (i32.load (i32.const 16)))
      (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 20)))
      (br $more)))))`

// argsEnv writes its argv buffer, then its environment buffer, to stdout (two writes,
// NUL-separated strings as WASI gives them).
const argsEnv = `(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $asz (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $aget (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $esz (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $eget (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func $show (param $len i32)
    (i32.store (i32.const 16) (i32.const 8192))
    (i32.store (i32.const 20) (local.get $len))
    (drop (call $write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 32))))
  (func (export "_start")
    (drop (call $asz (i32.const 0) (i32.const 4)))
    (drop (call $aget (i32.const 1024) (i32.const 8192)))
    (call $show (i32.load (i32.const 4)))
    (drop (call $esz (i32.const 0) (i32.const 4)))
    (drop (call $eget (i32.const 1024) (i32.const 8192)))
    (call $show (i32.load (i32.const 4)))))`

// dirs writes the names of preopens fd 3 and 4 (each followed by "\n"), then tries to
// create "new.txt" in each and exits with errno(fd 3) * 1000 + errno(fd 4).
const dirs = `(module
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_dir_name" (func $name (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 900) "new.txt")
  (data (i32.const 950) "\n")
  (func $show (param $fd i32) (local $len i32)
    (drop (call $prestat (local.get $fd) (i32.const 0)))
    (local.set $len (i32.load (i32.const 4)))
    (drop (call $name (local.get $fd) (i32.const 1024) (local.get $len)))
    (i32.store (i32.const 16) (i32.const 1024))
    (i32.store (i32.const 20) (local.get $len))
    (i32.store (i32.const 24) (i32.const 950))
    (i32.store (i32.const 28) (i32.const 1))
    (drop (call $write (i32.const 1) (i32.const 16) (i32.const 2) (i32.const 32))))
  (func $create (param $fd i32) (result i32)
    (call $open (local.get $fd) (i32.const 0) (i32.const 900) (i32.const 7) (i32.const 1)
                (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 40)))
  (func (export "_start")
    (call $show (i32.const 3))
    (call $show (i32.const 4))
    (call $exit (i32.add (i32.mul (call $create (i32.const 3)) (i32.const 1000))
                         (call $create (i32.const 4))))))`

// grower grows its memory one page at a time until refused, then exits with its size in
// pages. (tests/c/host_control.c)
const grower = `(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "env" "memory" (memory 1 100 shared))
  (func (export "_start") (block $full (loop $more
    (br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1))) (br $more)))
    (call $exit (memory.size))))`

// spawner spawns threads that wait forever until thread-spawn fails, then exits with
// the number it spawned.
const spawner = `(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "env" "memory" (memory 1 1 shared))
  (func (export "wasi_thread_start") (param i32 i32)
    (drop (memory.atomic.wait32 (i32.const 8) (i32.const 0) (i64.const -1))))
  (func (export "_start") (local $n i32)
    (block $full (loop $more
      (br_if $full (i32.lt_s (call $spawn (i32.const 0)) (i32.const 0)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $n) (i32.const 1000)))))
    (call $exit (local.get $n))))`

// recurse recurses until the wasm stack is exhausted.
const recurse = `(module (memory (export "memory") 1)
  (func $deeper (call $deeper))
  (func (export "_start") (call $deeper)))`

// faulter returns a guest in which thread tid 1 (inThread) or main executes op, an
// instruction sequence that traps (an out-of-bounds load, a division by zero, ...); in
// the first case main waits forever meanwhile.
func faulter(op string, inThread bool) string {
	main := op
	if inThread {
		main = `(drop (call $spawn (i32.const 0)))
    (drop (memory.atomic.wait32 (i32.const 8) (i32.const 0) (i64.const -1)))`
	}
	return `(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "env" "memory" (memory 1 1 shared))
  (func (export "wasi_thread_start") (param i32 i32) ` + op + `)
  (func (export "_start") ` + main + `))`
}

// places: main spawns six threads; thread tid goes to place (tid-1) % 3: $spin (a busy
// loop), $waiter (memory.atomic.wait32, never notified) or $sleeper (poll_oneoff on a
// one-hour clock), called from $place from $thread_start. Main waits until all six have
// arrived, then waits in $waiter itself: the run ends only by timeout or cancel. The
// function names are in the name section, so backtraces show them.
const places = `(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "env" "memory" (memory 1 1 shared))
  (func $spin (loop $l (br $l)))
  (func $waiter (drop (memory.atomic.wait32 (i32.const 0x80) (i32.const 0) (i64.const -1))))
  (func $sleeper
    (i64.store (i32.const 0x200) (i64.const 0))
    (i32.store8 (i32.const 0x208) (i32.const 0))
    (i32.store (i32.const 0x210) (i32.const 1))
    (i64.store (i32.const 0x218) (i64.const 3600000000000))
    (i64.store (i32.const 0x220) (i64.const 0))
    (i32.store16 (i32.const 0x228) (i32.const 0))
    (drop (call $poll (i32.const 0x200) (i32.const 0x300) (i32.const 1) (i32.const 0x100))))
  (func $place (param i32)
    (block (block (block (br_table 0 1 2 (local.get 0)))
      (call $spin) (return))
      (call $waiter) (return))
    (call $sleeper))
  (func $thread_start (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (drop (i32.atomic.rmw.add (i32.const 0x40) (i32.const 1)))
    (call $place (local.get $arg)))
  (func $main (export "_start") (local $i i32)
    (loop $l
      (drop (call $spawn (i32.rem_u (local.get $i) (i32.const 3))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 6))))
    (loop $arrived (br_if $arrived (i32.ne (i32.atomic.load (i32.const 0x40)) (i32.const 6))))
    (call $waiter)))`

// createAndWrite (tests/guests/wat/create-and-write.wat) creates the file "f" in
// preopen fd 3 and writes 5 bytes to it: exits with 100 * (path_open's errno) +
// (fd_write's errno).
var createAndWrite = sharedGuest("create-and-write.wat")

// opener creates and opens the file "f" in preopen fd 3 until path_open fails (at most
// 50 times), then exits with 100 * (files opened) + (the failing errno, 0 if none).
const opener = `(module
  (import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 900) "f")
  (func (export "_start") (local $n i32) (local $errno i32)
    (block $done (loop $more
      (local.set $errno (call $open (i32.const 3) (i32.const 0) (i32.const 900) (i32.const 1) (i32.const 1)
                                    (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 40)))
      (br_if $done (local.get $errno))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $n) (i32.const 50)))))
    (call $exit (i32.add (i32.mul (local.get $n) (i32.const 100)) (local.get $errno)))))`

// tabler grows an empty table by 1000 elements until table.grow fails (at most 100
// times), then exits with the table's size in thousands.
const tabler = `(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (table $t 0 funcref)
  (func (export "_start") (local $i i32)
    (block $full (loop $more
      (br_if $full (i32.eq (table.grow $t (ref.null func) (i32.const 1000)) (i32.const -1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 100)))))
    (call $exit (i32.div_u (table.size $t) (i32.const 1000)))))`

// bigTable starts with a table of 100 elements and returns.
const bigTable = `(module (memory (export "memory") 1) (table 100 funcref) (func (export "_start")))`

// socketHi and fd3Filetype: see tests/guests/wat (shared with the Python tests).
var (
	socketHi    = sharedGuest("socket-hi.wat")
	fd3Filetype = sharedGuest("fd3-filetype.wat")
)
