package wasithreads

/*
#include <stdint.h>
#include <stdlib.h>
#include "wasithreads.h"

// callbacks.c: the C trampolines that call the //export functions of callbacks.go, with
// the run's id in the runs registry (callbacks.go) as user_data.
wt_error_t *wtgo_set_output_callback(wt_run_config_t *config, int32_t stream, uintptr_t id);
void wtgo_set_thread_exit_callback(wt_run_config_t *config, uintptr_t id);
void wtgo_set_thread_start_callback(wt_run_config_t *config, uintptr_t id);
void wtgo_set_diagnostic_callback(wt_run_config_t *config, uintptr_t id);
*/
import "C"

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// ExitKind says why a run ended.
type ExitKind int

const (
	ExitCode      ExitKind = C.WT_EXIT_CODE      // _start returned (Code 0) or a thread called proc_exit(Code)
	ExitTrap      ExitKind = C.WT_EXIT_TRAP      // thread Tid trapped; Message says why
	ExitTimeout   ExitKind = C.WT_EXIT_TIMEOUT   // RunConfig.Timeout passed
	ExitCancelled ExitKind = C.WT_EXIT_CANCELLED // the context was cancelled, or Run.Cancel
)

func (k ExitKind) String() string {
	switch k {
	case ExitCode:
		return "exit code"
	case ExitTrap:
		return "trap"
	case ExitTimeout:
		return "timeout"
	case ExitCancelled:
		return "cancelled"
	}
	return fmt.Sprintf("ExitKind(%d)", int(k))
}

// Exit is how a run ended.
type Exit struct {
	Kind ExitKind
	// Code is, for ExitCode, 0 when _start returned, else the proc_exit argument.
	Code int32
	// Tid is the thread that ended the run: 0 = main, >0 = a spawned thread; -1 for
	// ExitTimeout and ExitCancelled.
	Tid int32
	// Message is, for ExitTrap, "wasm trap: <reason>" then the wasm backtrace (with
	// function names when the module has a name section); "" otherwise.
	Message string
}

// Success reports whether the run ended with exit code 0.
func (e *Exit) Success() bool { return e.Kind == ExitCode && e.Code == 0 }

func (e *Exit) String() string {
	switch e.Kind {
	case ExitCode:
		return fmt.Sprintf("exit code %d (thread %d)", e.Code, e.Tid)
	case ExitTrap:
		msg := e.Message
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		return fmt.Sprintf("thread %d trapped: %s", e.Tid, msg)
	}
	return e.Kind.String()
}

// ThreadExitKind says how one guest thread ended.
type ThreadExitKind int

const (
	ThreadReturned   ThreadExitKind = C.WT_THREAD_RETURNED   // _start or wasi_thread_start returned
	ThreadExited     ThreadExitKind = C.WT_THREAD_EXITED     // it called proc_exit(Code), which ended the run
	ThreadTrapped    ThreadExitKind = C.WT_THREAD_TRAPPED    // it trapped (Message), which ended the run
	ThreadTerminated ThreadExitKind = C.WT_THREAD_TERMINATED // stopped because the run ended elsewhere
)

func (k ThreadExitKind) String() string {
	switch k {
	case ThreadReturned:
		return "returned"
	case ThreadExited:
		return "exited"
	case ThreadTrapped:
		return "trapped"
	case ThreadTerminated:
		return "terminated"
	}
	return fmt.Sprintf("ThreadExitKind(%d)", int(k))
}

// ThreadExit is how one guest thread ended, as passed to RunConfig.OnThreadExit.
type ThreadExit struct {
	Kind    ThreadExitKind
	Code    int32  // the proc_exit code for ThreadExited; 0 otherwise
	Message string // the trap message and wasm backtrace for ThreadTrapped; "" otherwise
	// Backtrace says, for ThreadTerminated, where the thread was when the run's end (a
	// timeout, a cancel, a trap or proc_exit in another thread) stopped it: "wasm
	// backtrace:" then one frame a line, innermost first, "    N: name (module offset
	// 0x..)", in the function indices and code offsets of the module as loaded (what
	// wasm-objdump -d shows of it). A thread stopped inside a host call (an atomic wait,
	// poll_oneoff, a read) shows the call's caller. "" when no wasm was on the thread's
	// stack, and for the other kinds.
	Backtrace string
}

// ThreadWriter is implemented by writers that want to know which guest thread wrote. If
// RunConfig.Stdout or Stderr implements it, WriteThread is called instead of Write.
type ThreadWriter interface {
	WriteThread(tid int32, p []byte) (n int, err error)
}

// OutputFunc adapts a function to RunConfig.Stdout / Stderr: it receives each guest
// write with the id of the thread that made it. p is valid only during the call.
type OutputFunc func(tid int32, p []byte)

// WriteThread calls f(tid, p).
func (f OutputFunc) WriteThread(tid int32, p []byte) (int, error) { f(tid, p); return len(p), nil }

// Write calls f(-1, p).
func (f OutputFunc) Write(p []byte) (int, error) { f(-1, p); return len(p), nil }

// RunConfig holds the settings of one run; nil or the zero value means the library's
// defaults: argv {"wasm"}, no environment, no directories, stdio inherited from the host
// process, at most 1024 spawned threads alive at once, no timeout. A RunConfig is only
// read, when the run starts: one may serve many runs, including concurrent ones. It
// configures instances (Module.Instantiate) the same way, for the instance's whole life.
//
// Threading: Stdout, Stderr (when not an *os.File), OnThreadStart, OnThreadExit and
// OnDiagnostic are called on guest threads (or, for OnDiagnostic, the run's supervisor
// thread) — OS threads made by the library, calling into Go. Calls for one stream never
// overlap and one guest fd_write is one Write call; when Stdout and Stderr are the same
// writer, calls to it never overlap either. The other callbacks may be called
// concurrently from different threads. All of them have returned when Run returns (or
// Run.Wait, for Start), unless the TeardownGrace ran out. A panic in any of them is
// recovered and reported after the run as a *CallbackError; a writer that panicked or
// returned an error gets no more output for the rest of the run (the guest's writes
// still succeed). They must not block for long: the guest thread waits for them.
type RunConfig struct {
	// Args is the guest's argv, argv[0] first (nil: {"wasm"}).
	Args []string
	// Env holds environment variables for the guest, added in sorted key order after
	// the inherited ones (if InheritEnv).
	Env map[string]string
	// InheritEnv passes the host process's environment to the guest.
	InheritEnv bool
	// Dirs maps host directories to guest paths, read-write: {"/srv/data": "/data"}.
	// The guest cannot leave them (.., absolute paths and symlinks are refused). Without
	// Dirs and ReadOnlyDirs the guest has no file system. Preopens are numbered (fd 3,
	// 4, ...) in sorted order of host path, Dirs before ReadOnlyDirs.
	Dirs map[string]string
	// ReadOnlyDirs is like Dirs, but the guest may only read.
	ReadOnlyDirs map[string]string
	// Listeners are listening sockets the guest gets at descriptors 3, 4, ... in this
	// order, before ListenAddrs and the directories (as the Wasmtime 46 CLI's
	// tcplisten): a *net.TCPListener or *net.UnixListener (any syscall.Conn of a bound,
	// listening stream socket). Each run duplicates the descriptor; the listener stays
	// the caller's, non-blocking as Go keeps it. Accepted connections count against
	// MaxFds and are closed when the run ends.
	Listeners []syscall.Conn
	// ListenAddrs are TCP addresses ("127.0.0.1:8080", "[::1]:8080"; IP addresses
	// only) each run binds and listens on for its guest, after Listeners. A Listener of
	// your own lets several runs share one address and tells you the port 0 picked.
	ListenAddrs []string

	// Stdin is the guest's standard input; nil inherits the host process's stdin.
	// An *os.File is used directly (its descriptor is duplicated; Fd() puts it in
	// blocking mode). A *bytes.Reader, *bytes.Buffer or *strings.Reader is read fully
	// when the run starts and given to the guest as bytes. Any other reader is piped:
	// a goroutine copies it to the guest while the run goes on; the guest sees
	// end-of-file when Read returns io.EOF. When the run ends the pipe is closed; a
	// Read still blocked then keeps its goroutine until it returns (its data is dropped).
	// EmptyStdin gives the guest an empty stdin.
	Stdin io.Reader
	// StdinFile names a file each run opens as the guest's stdin when it starts; a run
	// whose file cannot be opened fails to start (ErrIO). Set Stdin or StdinFile, not
	// both.
	StdinFile string
	// Stdout and Stderr receive the guest's output; nil inherits the host process's.
	// io.Discard drops it; an *os.File gets it directly through its (duplicated)
	// descriptor, without calling into Go; any other writer is called on the guest
	// thread for each guest fd_write (see ThreadWriter and OutputFunc). p is valid only
	// during the call, as io.Writer requires.
	Stdout, Stderr io.Writer

	// MaxThreads is the most spawned threads alive at once (0: 1024). Past it the
	// guest's wasi::thread-spawn returns a negative value and the guest goes on.
	MaxThreads int
	// MaxMemory caps the guest's linear memory in bytes (rounded down to 64 KiB pages;
	// 0: the module's own maximum). memory.grow past it returns -1.
	MaxMemory int64
	// MaxFds is the most descriptors the run may have open at once, stdin, stdout,
	// stderr, the sockets and the preopened directories included (0: 256). Past it the
	// guest's path_open and sock_accept fail with errno mfile and the guest goes on. A limit without room for
	// stdio and the preopens makes the run fail to start (ErrLimit).
	MaxFds int
	// MaxTableElements caps the elements (function references) all threads' tables
	// hold together (0: 10 000 000, about 80 MB). table.grow past it returns -1; a
	// thread whose initial tables do not fit fails to start (its spawn fails; for the
	// main thread the run ends with ExitTrap).
	MaxTableElements int64
	// MaxMemories is the most private (unshared) memories all threads' instances may
	// define together (0: 1024). Each, even one of 0 pages, reserves 4 GiB of address
	// space. A thread whose memories do not fit is not started: its spawn fails (a
	// diagnostic says why); for the main thread the run fails to start (ErrLimit).
	MaxMemories int
	// MaxInstanceBytes caps the host memory all threads' instances take for themselves
	// (their globals, function references, imports; 0: 256 MiB), counted from above
	// when each thread starts. Past it as for MaxMemories.
	MaxInstanceBytes int64
	// MaxWriteBytes caps the bytes the guest writes, in all, to files under its
	// preopened directories (0: no cap). A write past it is short, then fails with the
	// WASI errno dquot and the guest goes on.
	MaxWriteBytes int64
	// MaxFilesCreated caps the files, directories and links the guest creates under its
	// preopened directories (0: no cap); past it creating one fails with dquot.
	MaxFilesCreated int64
	// Timeout ends the run with ExitTimeout once it has gone on that long (0: none;
	// rounded up to whole milliseconds); an instance, once that long has passed since
	// Instantiate. A context deadline, by contrast, ends it with ExitCancelled.
	Timeout time.Duration
	// TeardownGrace bounds how long the end of a run waits for its threads to stop (0:
	// 5 s; rounded up to whole milliseconds). Threads stop within milliseconds wherever
	// they are, except inside a callback of this RunConfig that does not return or one
	// long wasm instruction (a memory.fill of gigabytes). Past the grace Run returns
	// anyway and OnDiagnostic names those threads; calls they make to this RunConfig's
	// writers and callbacks after that are dropped.
	TeardownGrace time.Duration

	// CoreDumpPath, when set, is where a run that ends by a trap writes a WebAssembly
	// core dump (the tool-conventions Coredump.md format that Wasmtime and wasmgdb use):
	// the shared memory, the trapping thread's globals and private memories, and one
	// stack per thread. The file is written once every thread has stopped, as a new
	// file (mode 0600) renamed to the path. Its directory is opened when the run starts
	// (ErrIO if it cannot be); a failure to write is reported to OnDiagnostic and does
	// not change the run's result.
	CoreDumpPath string

	// OnThreadStart is called on each new guest thread (main included, tid 0) just
	// before it runs wasm.
	OnThreadStart func(tid int32)
	// OnThreadExit is called once for every thread of the run (main included), on that
	// thread, after it stopped running wasm.
	OnThreadExit func(tid int32, how ThreadExit)
	// Imports are the host functions the module imports (see Imports), linked into every
	// thread of each run or instance.
	Imports Imports
	// CallTimeout, for instances (Module.Instantiate), ends the instance with
	// ExitTimeout when one export call has gone on that long (0: none; rounded up to whole
	// milliseconds). It ends the whole instance, not only that call: stopping a thread in
	// the middle of its work could leave the guest's locks held. Runs ignore it.
	CallTimeout time.Duration

	// OnDiagnostic is told what the guest itself only sees as an error code, or what the
	// host should know: a thread-spawn that failed and why (MaxThreads reached, a trap in
	// the new thread's start function, the OS refusing a thread), threads that had not
	// stopped when the TeardownGrace ran out, a core dump that could not be written. tid
	// is the thread concerned (for a spawn, the spawning thread). At most 64 calls per run
	// (the 64th says that later ones are dropped).
	OnDiagnostic func(tid int32, message string)
}

// EmptyStdin, as RunConfig.Stdin, gives the guest an empty standard input: its reads
// return end-of-file at once. (A nil Stdin inherits the host process's.)
var EmptyStdin io.Reader = emptyStdin{}

type emptyStdin struct{}

func (emptyStdin) Read([]byte) (int, error) { return 0, io.EOF }

// CallbackError reports that a writer, reader, callback or host function of the
// RunConfig panicked or failed during a run or instance. Run (and Run.Wait) return it
// together with the run's *Exit, which says how the guest ended, Instance.Close with the
// instance's, and an *InstanceEnded carries it; only the first failure is kept, Count
// says how many there were.
type CallbackError struct {
	// Callback is "Stdout", "Stderr", "Stdin", "OnThreadStart", "OnThreadExit",
	// "OnDiagnostic", or, for a host function of Imports, its "module::name".
	Callback string
	Tid      int32  // the guest thread that made the call; -1 for Stdin
	Panic    any    // the value the callback panicked with; nil if it returned an error
	Err      error  // the error returned, or the panic value if it is an error
	Stack    []byte // the stack of the panicking goroutine; nil if it returned an error
	Count    int    // failures during the run, this one included
}

func (e *CallbackError) Error() string {
	var what string
	if e.Panic != nil {
		what = fmt.Sprintf("panicked: %v", e.Panic)
	} else {
		what = fmt.Sprintf("failed: %v", e.Err)
	}
	s := fmt.Sprintf("wasithreads: %s callback (guest thread %d) %s", e.Callback, e.Tid, what)
	if strings.Contains(e.Callback, "::") {
		s = fmt.Sprintf("wasithreads: host function %s (guest thread %d) %s", e.Callback, e.Tid, what)
	} else if e.Callback == "Stdin" {
		s = fmt.Sprintf("wasithreads: Stdin reader %s", what)
	}
	if e.Count > 1 {
		s += fmt.Sprintf(" (and %d more callback failures)", e.Count-1)
	}
	return s
}

// Unwrap returns Err.
func (e *CallbackError) Unwrap() error { return e.Err }

// setup is the Go side of one run: the state its callbacks reach, the stdin pipe.
type setup struct {
	state     *runState
	id        uintptr  // the run's key in the runs registry, 0 if not registered
	stdinW    *os.File // the writing end of the stdin pipe, or nil
	stdinR    io.Reader
	stdinDone sync.Once // closes stdinW
}

// Run is a run started with Module.Start. Its methods are safe for concurrent use.
// A Run nobody waits for still ends (when the guest does, at its timeout, or when its
// context is cancelled) and releases everything by itself.
type Run struct {
	mu  sync.RWMutex // read-held by Cancel while it uses ptr, write-held to free ptr
	ptr *C.wt_run_t
	setup

	done chan struct{}
	exit *Exit
	err  error
}

// Run runs the module's _start with cfg (nil: defaults) and returns how it ended, once
// every guest thread has been joined. Cancelling ctx cancels the run: it then ends with
// ExitCancelled (unless it ended otherwise first); a ctx already done returns ctx.Err()
// without starting.
//
// The error is non-nil, and the *Exit nil, when the run could not start (an *Error, or
// ErrClosed). After a run, the error is a *CallbackError if a writer, reader or callback
// failed; the *Exit is then still set.
func (m *Module) Run(ctx context.Context, cfg *RunConfig) (*Exit, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if ctx.Done() != nil {
		r, err := m.start(cfg)
		if err != nil {
			return nil, err
		}
		r.finish(ctx)
		return r.exit, r.err
	}
	// Nothing can cancel this run: wt_run, which costs less than wt_run_start +
	// wt_run_wait (about 10 µs a run: no supervisor thread).
	var s setup
	c, err := s.configure(cfg)
	if err != nil {
		s.cleanup()
		return nil, err
	}
	if c != nil {
		defer C.wt_run_config_free(c)
	}
	mp, ep, err := m.acquire()
	if err != nil {
		s.cleanup()
		return nil, err
	}
	s.startStdin()
	var ce C.wt_exit_t
	cerr := C.wt_run(ep, mp, c, &ce)
	m.release()
	s.cleanup()
	if err := takeError(opRun, cerr); err != nil {
		return nil, err
	}
	return takeExit(&ce), s.result()
}

// Start starts a run like Run but returns at once. Cancelling ctx (or Cancel) ends it
// with ExitCancelled; Wait, TryWait and Done report the end.
func (m *Module) Start(ctx context.Context, cfg *RunConfig) (*Run, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := m.start(cfg)
	if err != nil {
		return nil, err
	}
	go r.finish(ctx)
	return r, nil
}

// Cancel ends the run with ExitCancelled unless it already ended; every guest thread is
// stopped wherever it is. It returns at once. Safe any number of times, also after the
// end and from the run's own callbacks.
func (r *Run) Cancel() {
	r.mu.RLock()
	if r.ptr != nil {
		C.wt_run_cancel(r.ptr)
	}
	r.mu.RUnlock()
}

// Wait blocks until the run ended and every guest thread has been joined, and returns
// how it ended; see Module.Run for the error. Every call reports the same outcome.
func (r *Run) Wait() (*Exit, error) {
	<-r.done
	return r.exit, r.err
}

// TryWait is Wait without blocking: done is false while the run goes on.
func (r *Run) TryWait() (exit *Exit, done bool, err error) {
	select {
	case <-r.done:
		return r.exit, true, r.err
	default:
		return nil, false, nil
	}
}

// Done returns a channel closed when the run has ended and Wait would not block.
func (r *Run) Done() <-chan struct{} { return r.done }

// Close cancels the run if it is still going and waits for its end. It always returns
// nil; use Wait for the outcome.
func (r *Run) Close() error {
	r.Cancel()
	<-r.done
	return nil
}

// start builds the C config and starts the run.
func (m *Module) start(cfg *RunConfig) (*Run, error) {
	r := &Run{done: make(chan struct{})}
	c, err := r.configure(cfg)
	if err != nil {
		r.cleanup()
		return nil, err
	}
	if c != nil {
		defer C.wt_run_config_free(c) // the run copied what it needs
	}
	mp, ep, err := m.acquire()
	if err != nil {
		r.cleanup()
		return nil, err
	}
	cerr := C.wt_run_start(ep, mp, c, &r.ptr)
	m.release() // the run keeps the module alive
	if err := takeError(opRun, cerr); err != nil {
		r.cleanup()
		return nil, err
	}
	r.startStdin()
	return r, nil
}

// finish waits for the end of the run (cancelling it if ctx is done first), records the
// outcome and releases everything.
func (r *Run) finish(ctx context.Context) {
	var stop chan struct{}
	if ctx.Done() != nil {
		stop = make(chan struct{})
		go func() {
			select {
			case <-ctx.Done():
				r.Cancel() // under r.mu: never concurrent with wt_run_free below
			case <-stop:
			}
		}()
		// Let the watcher park before this thread blocks in C: with few Ps it would
		// otherwise wait for sysmon to retake the P.
		runtime.Gosched()
	}
	var ce C.wt_exit_t
	err := takeError(opWait, C.wt_run_wait(r.ptr, &ce))
	var exit *Exit
	if err == nil {
		exit = takeExit(&ce)
	}
	if stop != nil {
		close(stop)
	}
	r.mu.Lock()
	C.wt_run_free(r.ptr)
	r.ptr = nil
	r.mu.Unlock()
	// Every guest thread has been joined: no callback can come any more.
	r.cleanup()
	if err == nil {
		err = r.result()
	}
	r.exit, r.err = exit, err
	close(r.done)
}

// takeExit converts a filled wt_exit_t and releases its message.
func takeExit(ce *C.wt_exit_t) *Exit {
	exit := &Exit{Kind: ExitKind(ce.kind), Code: int32(ce.code), Tid: int32(ce.tid)}
	if ce.message != nil {
		exit.Message = C.GoString(ce.message)
	}
	C.wt_exit_clear(ce)
	return exit
}

// startStdin starts copying to the stdin pipe, if there is one.
func (s *setup) startStdin() {
	if s.stdinW != nil {
		go func() {
			s.state.copyStdin(s.stdinW, s.stdinR)
			s.closeStdin()
		}()
	}
}

// closeStdin closes the writing end of the stdin pipe; when it returns, the descriptor
// is closed. (Of two concurrent os.File.Close calls the second returns at once, before
// the first has closed the descriptor: hence the Once.)
func (s *setup) closeStdin() {
	if s.stdinW != nil {
		s.stdinDone.Do(func() { s.stdinW.Close() })
	}
}

// cleanup releases the Go side of a run that ended or never started.
func (s *setup) cleanup() {
	if s.id != 0 {
		unregisterRun(s.id)
		s.id = 0
	}
	s.closeStdin() // also ends the copying goroutine's Write
}

// result is the first callback failure of the run, or nil.
func (s *setup) result() error {
	if s.state == nil {
		return nil
	}
	return s.state.result()
}

// configure makes the C config for cfg (NULL for a nil cfg: the defaults). On error the
// caller calls s.cleanup.
func (s *setup) configure(cfg *RunConfig) (*C.wt_run_config_t, error) {
	if cfg == nil {
		return nil, nil
	}
	c := C.wt_run_config_new()
	if c == nil {
		return nil, &Error{Op: opRunConfig, Message: "out of memory"}
	}
	if err := s.fill(c, cfg); err != nil {
		C.wt_run_config_free(c)
		return nil, err
	}
	return c, nil
}

func (s *setup) fill(c *C.wt_run_config_t, cfg *RunConfig) error {
	const op = opRunConfig
	for _, a := range cfg.Args {
		if err := withCString(op, "argument", a, func(ca *C.char) *C.wt_error_t {
			return C.wt_run_config_push_arg(c, ca)
		}); err != nil {
			return err
		}
	}
	if cfg.InheritEnv {
		C.wt_run_config_inherit_env(c, true)
	}
	for _, k := range sortedKeys(cfg.Env) {
		ck, err := cString(op, "environment variable name", k)
		if err != nil {
			return err
		}
		cv, err := cString(op, "value of environment variable "+k, cfg.Env[k])
		if err != nil {
			C.free(unsafe.Pointer(ck))
			return err
		}
		cerr := C.wt_run_config_push_env(c, ck, cv)
		C.free(unsafe.Pointer(ck))
		C.free(unsafe.Pointer(cv))
		if err := takeError(op, cerr); err != nil {
			return err
		}
	}
	for i, l := range cfg.Listeners {
		if l == nil {
			return misuse(op, fmt.Sprintf("Listeners[%d] is nil", i))
		}
		raw, err := l.SyscallConn()
		if err != nil {
			return &Error{Op: op, Kind: ErrIO, Message: fmt.Sprintf("Listeners[%d]: %v", i, err)}
		}
		var cerr *C.wt_error_t
		if err := raw.Control(func(fd uintptr) {
			cerr = C.wt_run_config_preopen_socket(c, C.int32_t(fd))
		}); err != nil {
			return &Error{Op: op, Kind: ErrIO, Message: fmt.Sprintf("Listeners[%d]: %v", i, err)}
		}
		if err := takeError(op, cerr); err != nil {
			return err
		}
	}
	for _, addr := range cfg.ListenAddrs {
		if err := withCString(op, "listen address", addr, func(ca *C.char) *C.wt_error_t {
			return C.wt_run_config_preopen_tcp_listener(c, ca, nil)
		}); err != nil {
			return err
		}
	}
	for _, ro := range []bool{false, true} {
		dirs := cfg.Dirs
		if ro {
			dirs = cfg.ReadOnlyDirs
		}
		for _, host := range sortedKeys(dirs) {
			ch, err := cString(op, "host directory", host)
			if err != nil {
				return err
			}
			cg, err := cString(op, "guest path", dirs[host])
			if err != nil {
				C.free(unsafe.Pointer(ch))
				return err
			}
			var cerr *C.wt_error_t
			if ro {
				cerr = C.wt_run_config_preopen_dir_readonly(c, ch, cg)
			} else {
				cerr = C.wt_run_config_preopen_dir(c, ch, cg)
			}
			C.free(unsafe.Pointer(ch))
			C.free(unsafe.Pointer(cg))
			if err := takeError(op, cerr); err != nil {
				return err
			}
		}
	}
	u32caps := []struct {
		name string
		v    int
		set  func(C.uint32_t)
	}{
		{"MaxThreads", cfg.MaxThreads, func(v C.uint32_t) { C.wt_run_config_set_max_threads(c, v) }},
		{"MaxFds", cfg.MaxFds, func(v C.uint32_t) { C.wt_run_config_set_max_fds(c, v) }},
		{"MaxMemories", cfg.MaxMemories, func(v C.uint32_t) { C.wt_run_config_set_max_memories(c, v) }},
	}
	for _, k := range u32caps {
		switch {
		case k.v < 0 || uint64(k.v) > math.MaxUint32:
			return misuse(op, fmt.Sprintf("%s out of range: %d", k.name, k.v))
		case k.v > 0:
			k.set(C.uint32_t(k.v))
		}
	}
	u64caps := []struct {
		name string
		v    int64
		set  func(C.uint64_t)
	}{
		{"MaxMemory", cfg.MaxMemory, func(v C.uint64_t) { C.wt_run_config_set_max_memory(c, v) }},
		{"MaxTableElements", cfg.MaxTableElements, func(v C.uint64_t) { C.wt_run_config_set_max_table_elements(c, v) }},
		{"MaxInstanceBytes", cfg.MaxInstanceBytes, func(v C.uint64_t) { C.wt_run_config_set_max_instance_bytes(c, v) }},
		{"MaxWriteBytes", cfg.MaxWriteBytes, func(v C.uint64_t) { C.wt_run_config_set_max_write_bytes(c, v) }},
		{"MaxFilesCreated", cfg.MaxFilesCreated, func(v C.uint64_t) { C.wt_run_config_set_max_files_created(c, v) }},
	}
	for _, k := range u64caps {
		switch {
		case k.v < 0:
			return misuse(op, k.name+" must not be negative")
		case k.v > 0:
			k.set(C.uint64_t(k.v))
		}
	}
	if ms, err := millis(op, "Timeout", cfg.Timeout); err != nil {
		return err
	} else if ms > 0 {
		C.wt_run_config_set_timeout_ms(c, ms)
	}
	if ms, err := millis(op, "CallTimeout", cfg.CallTimeout); err != nil {
		return err
	} else if ms > 0 {
		C.wt_run_config_set_call_timeout_ms(c, ms)
	}
	if ms, err := millis(op, "TeardownGrace", cfg.TeardownGrace); err != nil {
		return err
	} else if ms > 0 {
		C.wt_run_config_set_teardown_grace_ms(c, ms)
	}
	if cfg.CoreDumpPath != "" {
		if err := withCString(op, "CoreDumpPath", cfg.CoreDumpPath, func(cp *C.char) *C.wt_error_t {
			return C.wt_run_config_set_coredump_path(c, cp)
		}); err != nil {
			return err
		}
	}

	st := &runState{onStart: cfg.OnThreadStart, onExit: cfg.OnThreadExit, onDiag: cfg.OnDiagnostic}
	s.state = st
	needsID := st.onStart != nil || st.onExit != nil || st.onDiag != nil
	for stream, w := range [3]io.Writer{1: cfg.Stdout, 2: cfg.Stderr} {
		if w == nil {
			continue // inherit, the default
		}
		if f, ok := w.(*os.File); ok {
			cerr := C.wt_run_config_set_output_fd(c, C.int32_t(stream), C.int32_t(f.Fd()))
			runtime.KeepAlive(f)
			if err := takeError(op, cerr); err != nil {
				return err
			}
			continue
		}
		if w == io.Discard {
			if err := takeError(op, C.wt_run_config_set_output_null(c, C.int32_t(stream))); err != nil {
				return err
			}
			continue
		}
		o := &outStream{w: w, name: [3]string{1: "Stdout", 2: "Stderr"}[stream]}
		o.tw, _ = w.(ThreadWriter)
		if stream == 2 && st.out[1] != nil && interfaceEqual(cfg.Stdout, cfg.Stderr) {
			o.mu = st.out[1].mu // the same writer: calls for both streams never overlap
		} else {
			o.mu = new(sync.Mutex)
		}
		st.out[stream] = o
		needsID = true
	}
	if needsID {
		s.id = registerRun(st)
		h := C.uintptr_t(s.id)
		for stream := 1; stream <= 2; stream++ {
			if st.out[stream] != nil {
				if err := takeError(op, C.wtgo_set_output_callback(c, C.int32_t(stream), h)); err != nil {
					return err
				}
			}
		}
		if st.onStart != nil {
			C.wtgo_set_thread_start_callback(c, h)
		}
		if st.onExit != nil {
			C.wtgo_set_thread_exit_callback(c, h)
		}
		if st.onDiag != nil {
			C.wtgo_set_diagnostic_callback(c, h)
		}
	}
	if err := defineImports(c, cfg.Imports, st); err != nil {
		return err
	}

	if cfg.StdinFile != "" {
		if cfg.Stdin != nil {
			return misuse(op, "set Stdin or StdinFile, not both")
		}
		return withCString(op, "StdinFile", cfg.StdinFile, func(cp *C.char) *C.wt_error_t {
			return C.wt_run_config_set_stdin_file(c, cp)
		})
	}

	switch in := cfg.Stdin.(type) {
	case nil:
	case emptyStdin:
		C.wt_run_config_set_stdin_null(c)
	case *os.File:
		cerr := C.wt_run_config_set_stdin_fd(c, C.int32_t(in.Fd()))
		runtime.KeepAlive(in)
		if err := takeError(op, cerr); err != nil {
			return err
		}
	case *bytes.Buffer:
		if err := setStdinBytes(c, in.Next(in.Len())); err != nil {
			return err
		}
	case *bytes.Reader, *strings.Reader:
		data, err := io.ReadAll(in)
		if err != nil {
			return err
		}
		if err := setStdinBytes(c, data); err != nil {
			return err
		}
	default:
		pr, pw, err := os.Pipe()
		if err != nil {
			return &Error{Op: op, Message: "making the stdin pipe: " + err.Error(), Kind: ErrIO}
		}
		cerr := C.wt_run_config_set_stdin_fd(c, C.int32_t(pr.Fd()))
		pr.Close() // the config holds its own duplicate, the run will too
		if err := takeError(op, cerr); err != nil {
			pw.Close()
			return err
		}
		s.stdinW, s.stdinR = pw, in
	}
	return nil
}

// withCString calls f with s as a C string (refused if it holds a NUL byte) and converts
// the error f returns.
func withCString(op, what, s string, f func(*C.char) *C.wt_error_t) error {
	cs, err := cString(op, what, s)
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(cs))
	return takeError(op, f(cs))
}

// millis converts a duration to whole milliseconds, rounded up.
func millis(op, what string, d time.Duration) (C.uint64_t, error) {
	if d < 0 {
		return 0, misuse(op, what+" must not be negative")
	}
	return C.uint64_t((d + time.Millisecond - 1) / time.Millisecond), nil
}

func setStdinBytes(c *C.wt_run_config_t, data []byte) error {
	cerr := C.wt_run_config_set_stdin_bytes(c, bytesArg(data), C.size_t(len(data)))
	runtime.KeepAlive(data)
	return takeError(opRunConfig, cerr)
}

func sortedKeys(m map[string]string) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// interfaceEqual is a == b without the panic for uncomparable dynamic types (as in
// os/exec).
func interfaceEqual(a, b any) (eq bool) {
	defer func() {
		if recover() != nil {
			eq = false
		}
	}()
	return a == b
}

// runState is what the C callbacks of one run reach through their cgo.Handle.
type runState struct {
	out     [3]*outStream // [1] stdout, [2] stderr; nil: not a Go writer
	onStart func(int32)
	onExit  func(int32, ThreadExit)
	onDiag  func(int32, string)

	mu       sync.Mutex
	failures int
	first    *CallbackError

	endOnce sync.Once
	end     chan struct{} // Caller.Done: closed at the end; nil if not made
}

type outStream struct {
	w      io.Writer
	tw     ThreadWriter
	name   string
	mu     *sync.Mutex // shared by both streams when they have the same writer
	failed bool        // guarded by mu
}

func (s *runState) fail(callback string, tid int32, p any, err error, stack []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures++
	if s.first == nil {
		if e, ok := p.(error); ok && err == nil {
			err = e
		}
		s.first = &CallbackError{Callback: callback, Tid: tid, Panic: p, Err: err, Stack: stack}
	}
}

// snapshot is a copy of the first failure (Count set), or nil.
func (s *runState) snapshot() *CallbackError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.first == nil {
		return nil
	}
	c := *s.first
	c.Count = s.failures
	return &c
}

func (s *runState) result() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.first == nil {
		return nil
	}
	s.first.Count = s.failures
	return s.first
}

// write delivers one guest fd_write to the stream's writer.
func (s *runState) write(stream int, tid int32, p []byte) {
	if stream < 1 || stream > 2 || s.out[stream] == nil {
		return
	}
	o := s.out[stream]
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.failed {
		return
	}
	defer func() {
		if v := recover(); v != nil {
			o.failed = true
			s.fail(o.name, tid, v, nil, stack())
		}
	}()
	var n int
	var err error
	if o.tw != nil {
		n, err = o.tw.WriteThread(tid, p)
	} else {
		n, err = o.w.Write(p)
	}
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		o.failed = true
		s.fail(o.name, tid, nil, err, nil)
	}
}

func (s *runState) threadStart(tid int32) {
	defer func() {
		if v := recover(); v != nil {
			s.fail("OnThreadStart", tid, v, nil, stack())
		}
	}()
	s.onStart(tid)
}

func (s *runState) diagnostic(tid int32, message string) {
	defer func() {
		if v := recover(); v != nil {
			s.fail("OnDiagnostic", tid, v, nil, stack())
		}
	}()
	s.onDiag(tid, message)
}

func (s *runState) threadExit(tid int32, how ThreadExit) {
	defer func() {
		if v := recover(); v != nil {
			s.fail("OnThreadExit", tid, v, nil, stack())
		}
	}()
	s.onExit(tid, how)
}

// copyStdin feeds the stdin pipe from a reader until EOF, an error, or the end of the
// run (which closes w).
func (s *runState) copyStdin(w *os.File, rd io.Reader) {
	defer func() {
		if v := recover(); v != nil {
			s.fail("Stdin", -1, v, nil, stack())
		}
	}()
	_, err := io.Copy(w, rd)
	if err != nil && !errors.Is(err, os.ErrClosed) && !errors.Is(err, syscall.EPIPE) {
		s.fail("Stdin", -1, nil, err, nil)
	}
}

func stack() []byte { return debug.Stack() }
