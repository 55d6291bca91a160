package wasithreads_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"wasithreads"
)

// safety is a timeout for runs that should end otherwise: if they do not, the test
// fails with ExitTimeout instead of hanging.
const safety = 2 * time.Minute

var (
	engineOnce sync.Once
	engine     *wasithreads.Engine
	modules    sync.Map // WAT text -> *wasithreads.Module
)

func testEngine(t testing.TB) *wasithreads.Engine {
	engineOnce.Do(func() {
		var err error
		engine, err = wasithreads.NewEngine(nil)
		if err != nil {
			t.Fatal(err)
		}
	})
	return engine
}

// load compiles a guest once per test binary.
func load(t testing.TB, wat string) *wasithreads.Module {
	t.Helper()
	if m, ok := modules.Load(wat); ok {
		return m.(*wasithreads.Module)
	}
	m, err := testEngine(t).LoadModule([]byte(wat))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	modules.Store(wat, m)
	return m
}

// loadWith compiles a guest on an engine of its own, made with cfg; both are closed when
// the test ends.
func loadWith(t testing.TB, cfg *wasithreads.EngineConfig, wat string) (*wasithreads.Engine, *wasithreads.Module) {
	t.Helper()
	eng, err := wasithreads.NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	mod, err := eng.LoadModule([]byte(wat))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mod.Close() })
	return eng, mod
}

func run(t testing.TB, wat string, cfg *wasithreads.RunConfig) *wasithreads.Exit {
	t.Helper()
	exit, err := load(t, wat).Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return exit
}

func expectExit(t testing.TB, got *wasithreads.Exit, want wasithreads.Exit) {
	t.Helper()
	if got == nil || *got != want {
		t.Fatalf("exit = %+v, want %+v", got, want)
	}
}

// tidOutput collects output per writing thread.
type tidOutput struct {
	mu  sync.Mutex
	out map[int32]string
}

func (o *tidOutput) WriteThread(tid int32, p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.out == nil {
		o.out = map[int32]string{}
	}
	o.out[tid] += string(p)
	return len(p), nil
}

func (o *tidOutput) Write(p []byte) (int, error) { return o.WriteThread(-1, p) }

// endings records thread-exit callbacks.
type endings struct {
	mu  sync.Mutex
	got map[int32]wasithreads.ThreadExit
	dup []int32
}

func (e *endings) record(tid int32, how wasithreads.ThreadExit) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.got == nil {
		e.got = map[int32]wasithreads.ThreadExit{}
	}
	if _, seen := e.got[tid]; seen {
		e.dup = append(e.dup, tid)
	}
	e.got[tid] = how
}

func (e *endings) kinds() map[int32]wasithreads.ThreadExitKind {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := map[int32]wasithreads.ThreadExitKind{}
	for tid, how := range e.got {
		k[tid] = how.Kind
	}
	return k
}

func TestVersion(t *testing.T) {
	v := wasithreads.Version()
	if strings.Count(v, ".") != 2 {
		t.Fatalf("version %q", v)
	}
}

func TestThreadedOutputExactBytes(t *testing.T) {
	var out tidOutput
	var ends endings
	exit := run(t, printers, &wasithreads.RunConfig{
		Args: []string{"guest"}, Stdout: &out, OnThreadExit: ends.record,
	})
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitCode, Code: 3, Tid: 0})
	want := map[int32]string{}
	for n := int32(0); n < 4; n++ {
		want[n+1] = fmt.Sprintf("line from thread %d\n", n)
	}
	if !reflect.DeepEqual(out.out, want) {
		t.Fatalf("output by tid = %q, want %q", out.out, want)
	}
	wantEnds := map[int32]wasithreads.ThreadExitKind{0: wasithreads.ThreadExited,
		1: wasithreads.ThreadReturned, 2: wasithreads.ThreadReturned, 3: wasithreads.ThreadReturned, 4: wasithreads.ThreadReturned}
	if got := ends.kinds(); !reflect.DeepEqual(got, wantEnds) || len(ends.dup) > 0 {
		t.Fatalf("thread endings = %v (duplicates %v), want %v", got, ends.dup, wantEnds)
	}
	if how := ends.got[0]; how.Code != 3 || how.Message != "" {
		t.Fatalf("main thread ending = %+v", how)
	}
}

func TestPlainWriterGetsWholeLines(t *testing.T) {
	// A plain io.Writer (no thread ids): each guest fd_write is one Write, never mixed.
	var buf bytes.Buffer
	exit := run(t, printers, &wasithreads.RunConfig{Stdout: &buf, Stderr: &buf})
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitCode, Code: 3})
	lines := strings.SplitAfter(buf.String(), "\n")
	sort.Strings(lines)
	want := []string{"", "line from thread 0\n", "line from thread 1\n", "line from thread 2\n", "line from thread 3\n"}
	if !reflect.DeepEqual(lines, want) {
		t.Fatalf("lines = %q", lines)
	}
}

func TestOutputToFile(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	exit := run(t, writers, &wasithreads.RunConfig{Stdout: f})
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitCode})
	data, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != 400000 {
		t.Fatalf("file has %d bytes, want 400000", len(data))
	}
	for i := 0; i < len(data); i += 1000 {
		if block := data[i : i+1000]; !bytes.Equal(block, bytes.Repeat(block[:1], 1000)) {
			t.Fatalf("block at %d is mixed", i)
		}
	}
}

func TestDiscard(t *testing.T) {
	exit := run(t, printers, &wasithreads.RunConfig{Stdout: io.Discard})
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitCode, Code: 3})
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		wat  string
		want wasithreads.Exit
	}{
		{returner, wasithreads.Exit{Kind: wasithreads.ExitCode, Code: 0, Tid: 0}},
		{exiter(0, false), wasithreads.Exit{Kind: wasithreads.ExitCode, Code: 0, Tid: 0}},
		{exiter(7, false), wasithreads.Exit{Kind: wasithreads.ExitCode, Code: 7, Tid: 0}},
		{exiter(-1, false), wasithreads.Exit{Kind: wasithreads.ExitCode, Code: -1, Tid: 0}},
		{exiter(33, true), wasithreads.Exit{Kind: wasithreads.ExitCode, Code: 33, Tid: 1}},
		{exiter(1000, true), wasithreads.Exit{Kind: wasithreads.ExitCode, Code: 1000, Tid: 1}},
	} {
		var ends endings
		exit := run(t, tc.wat, &wasithreads.RunConfig{OnThreadExit: ends.record})
		expectExit(t, exit, tc.want)
		if exit.Success() != (tc.want.Code == 0) {
			t.Fatalf("Success() = %v for %+v", exit.Success(), exit)
		}
		how := ends.got[tc.want.Tid]
		if tc.wat == returner {
			if how.Kind != wasithreads.ThreadReturned {
				t.Fatalf("main ended %v", how.Kind)
			}
		} else if how.Kind != wasithreads.ThreadExited || how.Code != tc.want.Code {
			t.Fatalf("thread %d ended %+v", tc.want.Tid, how)
		}
	}
}

func TestTrapReportsThreadAndMessage(t *testing.T) {
	var ends endings
	exit := run(t, printers, &wasithreads.RunConfig{
		Args: []string{"guest", "trap"}, Stdout: io.Discard, OnThreadExit: ends.record,
	})
	if exit.Kind != wasithreads.ExitTrap || exit.Tid != 1 || exit.Code != 0 {
		t.Fatalf("exit = %+v", exit)
	}
	if !strings.HasPrefix(exit.Message, "wasm trap: ") || !strings.Contains(exit.Message, "unreachable") ||
		!strings.Contains(exit.Message, "crash") {
		t.Fatalf("trap message %q", exit.Message)
	}
	if !strings.HasPrefix(exit.String(), "thread 1 trapped: wasm trap: ") {
		t.Fatalf("String() = %q", exit.String())
	}
	got := ends.kinds()
	if got[1] != wasithreads.ThreadTrapped || got[0] != wasithreads.ThreadTerminated {
		t.Fatalf("endings %v", got)
	}
	if msg := ends.got[1].Message; !strings.Contains(msg, "unreachable") {
		t.Fatalf("thread trap message %q", msg)
	}
}

func TestHardwareTraps(t *testing.T) {
	// Wasmtime turns out-of-bounds accesses into traps with a signal handler, which has
	// to work alongside the Go runtime's; in main and in spawned threads.
	for _, tc := range []struct{ op, want string }{
		{"(drop (i32.load (i32.const 0x7ffffff0)))", "out of bounds memory access"},
		{"(i32.store (i32.const -4) (i32.const 1))", "out of bounds memory access"},
		{"(drop (i32.div_u (i32.const 1) (i32.load (i32.const 16))))", "integer divide by zero"},
	} {
		for _, inThread := range []bool{false, true} {
			exit := run(t, faulter(tc.op, inThread), nil)
			tid := int32(0)
			if inThread {
				tid = 1
			}
			if exit.Kind != wasithreads.ExitTrap || exit.Tid != tid || !strings.Contains(exit.Message, tc.want) {
				t.Fatalf("%s (in thread: %v): exit %+v", tc.op, inThread, exit)
			}
		}
	}
	// With Wasmtime's handlers installed, a fault in Go code is still Go's panic.
	err := func() (err any) {
		defer func() { err = recover() }()
		var p *wasithreads.Exit
		sink = p.Code
		return nil
	}()
	if _, ok := err.(runtime.Error); !ok {
		t.Fatalf("nil dereference in Go gave %v", err)
	}
}

func TestStackOverflowTraps(t *testing.T) {
	_, mod := loadWith(t, &wasithreads.EngineConfig{
		OptLevel: wasithreads.OptSpeedAndSize, MaxWasmStack: 256 << 10, InterruptTick: 500 * time.Microsecond,
	}, recurse)
	exit, err := mod.Run(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if exit.Kind != wasithreads.ExitTrap || exit.Tid != 0 || !strings.Contains(exit.Message, "call stack exhausted") {
		t.Fatalf("exit = %+v", exit)
	}
}

func TestTimeout(t *testing.T) {
	var ends endings
	exit := run(t, blocked, &wasithreads.RunConfig{Timeout: 50 * time.Millisecond, OnThreadExit: ends.record})
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitTimeout, Tid: -1})
	want := map[int32]wasithreads.ThreadExitKind{0: wasithreads.ThreadTerminated, 1: wasithreads.ThreadTerminated,
		2: wasithreads.ThreadTerminated, 3: wasithreads.ThreadTerminated}
	if got := ends.kinds(); !reflect.DeepEqual(got, want) {
		t.Fatalf("endings %v", got)
	}
}

// frameLine is one frame of a backtrace: "    N: name (module offset 0x..)".
var frameLine = regexp.MustCompile(`^ +(\d+): (.+) \(module offset 0x([0-9a-f]+)\)$`)

// backtraceFrames parses a backtrace into its function names and module offsets,
// innermost first.
func backtraceFrames(t *testing.T, bt string) (names []string, offsets []uint64) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(bt, "\n"), "\n")
	if lines[0] != "wasm backtrace:" {
		t.Fatalf("backtrace %q", bt)
	}
	for n, line := range lines[1:] {
		m := frameLine.FindStringSubmatch(line)
		if m == nil || m[1] != strconv.Itoa(n) {
			t.Fatalf("frame line %q in\n%s", line, bt)
		}
		off, err := strconv.ParseUint(m[3], 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		names, offsets = append(names, m[2]), append(offsets, off)
	}
	return names, offsets
}

// checkPlaces checks that every thread of the places guest ended ThreadTerminated with a
// backtrace naming where it was.
func checkPlaces(t *testing.T, ends *endings) {
	t.Helper()
	ends.mu.Lock()
	defer ends.mu.Unlock()
	if len(ends.got) != 7 || len(ends.dup) != 0 {
		t.Fatalf("endings %+v (dup %v)", ends.got, ends.dup)
	}
	offsetOf := map[string]uint64{} // the same instruction for every thread in one place
	for tid, how := range ends.got {
		if how.Kind != wasithreads.ThreadTerminated || how.Message != "" || how.Backtrace == "" {
			t.Fatalf("thread %d: %+v", tid, how)
		}
		names, offsets := backtraceFrames(t, how.Backtrace)
		want := []string{"waiter", "main"}
		if tid != 0 {
			want = []string{[]string{"spin", "waiter", "sleeper"}[(tid-1)%3], "place", "thread_start"}
		}
		if !reflect.DeepEqual(names, want) {
			t.Fatalf("thread %d: frames %v, want %v:\n%s", tid, names, want, how.Backtrace)
		}
		if names[0] == "spin" {
			continue // stopped at the loop's interruption point, wherever that is
		}
		if seen, ok := offsetOf[names[0]]; ok && seen != offsets[0] {
			t.Fatalf("thread %d in %s at %#x, another thread there at %#x", tid, names[0], offsets[0], seen)
		}
		offsetOf[names[0]] = offsets[0]
	}
}

func TestTimeoutBacktracesSayWhereThreadsWere(t *testing.T) {
	var ends endings
	exit := run(t, places, &wasithreads.RunConfig{Timeout: 300 * time.Millisecond, OnThreadExit: ends.record})
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitTimeout, Tid: -1})
	checkPlaces(t, &ends)
}

func TestCancelBacktracesSayWhereThreadsWere(t *testing.T) {
	var ends endings
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	exit, err := load(t, places).Run(ctx, &wasithreads.RunConfig{OnThreadExit: ends.record, Timeout: safety})
	if err != nil {
		t.Fatal(err)
	}
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitCancelled, Tid: -1})
	checkPlaces(t, &ends)
}

func TestNoBacktraceWhenThreadsEndByThemselves(t *testing.T) {
	var ends endings
	exit := run(t, printers, &wasithreads.RunConfig{Stdout: io.Discard, OnThreadExit: ends.record})
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitCode, Code: 3})
	for tid, how := range ends.got {
		if how.Backtrace != "" {
			t.Fatalf("thread %d: %+v", tid, how)
		}
	}
	// The trapping thread has its message, and no Backtrace: that is for ThreadTerminated.
	ends = endings{}
	exit = run(t, printers, &wasithreads.RunConfig{Args: []string{"p", "trap"}, Stdout: io.Discard,
		OnThreadExit: ends.record})
	if exit.Kind != wasithreads.ExitTrap || exit.Tid != 1 {
		t.Fatalf("exit %+v", exit)
	}
	if how := ends.got[1]; how.Kind != wasithreads.ThreadTrapped || how.Message == "" || how.Backtrace != "" {
		t.Fatalf("thread 1: %+v", how)
	}
	if how := ends.got[0]; how.Kind != wasithreads.ThreadTerminated || !strings.Contains(how.Backtrace, "wasm backtrace:") {
		t.Fatalf("thread 0: %+v", how)
	}
}

// startedCounter closes ready once n guest threads have started.
func startedCounter(n int32) (func(int32), chan struct{}) {
	var started int32
	ready := make(chan struct{})
	return func(int32) {
		if atomic.AddInt32(&started, 1) == n {
			close(ready)
		}
	}, ready
}

func TestCancelByContextFromAnotherGoroutine(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	onStart, ready := startedCounter(4)
	go func() {
		<-ready // all four guest threads are running
		cancel()
	}()
	var ends endings
	exit, err := load(t, blocked).Run(ctx, &wasithreads.RunConfig{
		Timeout: safety, OnThreadStart: onStart, OnThreadExit: ends.record,
	})
	if err != nil {
		t.Fatal(err)
	}
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitCancelled, Tid: -1})
	if got := ends.kinds(); len(got) != 4 {
		t.Fatalf("endings %v", got)
	}
	for tid, k := range ends.kinds() {
		if k != wasithreads.ThreadTerminated {
			t.Fatalf("thread %d ended %v", tid, k)
		}
	}

	// A context that is already done: no run.
	exit, err = load(t, blocked).Run(ctx, nil)
	if exit != nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("Run(cancelled ctx) = %v, %v", exit, err)
	}
}

func TestContextDeadlineCancels(t *testing.T) {
	onStart, ready := startedCounter(4)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	var started atomic.Bool
	go func() { <-ready; started.Store(true); cancel() }()
	exit, err := load(t, blocked).Run(ctx, &wasithreads.RunConfig{Timeout: safety, OnThreadStart: onStart})
	if err != nil {
		t.Fatal(err)
	}
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitCancelled, Tid: -1})
	if !started.Load() {
		t.Fatal("run ended before its threads started")
	}
}

func TestCallbacksFromEightThreads(t *testing.T) {
	type chunk struct {
		tid  int32
		data []byte
	}
	var mu sync.Mutex
	var chunks []chunk
	var starts, exits []int32
	var inCall int32
	exit := run(t, writers, &wasithreads.RunConfig{
		Stdout: wasithreads.OutputFunc(func(tid int32, p []byte) {
			if atomic.AddInt32(&inCall, 1) != 1 {
				t.Error("output calls for one stream overlap")
			}
			defer atomic.AddInt32(&inCall, -1)
			mu.Lock()
			chunks = append(chunks, chunk{tid, append([]byte(nil), p...)})
			mu.Unlock()
		}),
		OnThreadStart: func(tid int32) { mu.Lock(); starts = append(starts, tid); mu.Unlock() },
		OnThreadExit: func(tid int32, how wasithreads.ThreadExit) {
			if how.Kind != wasithreads.ThreadReturned {
				t.Errorf("thread %d ended %v", tid, how.Kind)
			}
			mu.Lock()
			exits = append(exits, tid)
			mu.Unlock()
		},
	})
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitCode})
	if len(chunks) != 400 {
		t.Fatalf("%d output calls, want 400", len(chunks))
	}
	perTid := map[int32]int{}
	for _, c := range chunks {
		want := bytes.Repeat([]byte{byte('A' + c.tid - 1)}, 1000)
		if !bytes.Equal(c.data, want) {
			t.Fatalf("chunk from tid %d is not 1000 x %q", c.tid, want[:1])
		}
		perTid[c.tid]++
	}
	for tid := int32(1); tid <= 8; tid++ {
		if perTid[tid] != 50 {
			t.Fatalf("per-thread chunks %v", perTid)
		}
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	sort.Slice(exits, func(i, j int) bool { return exits[i] < exits[j] })
	all := []int32{0, 1, 2, 3, 4, 5, 6, 7, 8}
	if !reflect.DeepEqual(starts, all) || !reflect.DeepEqual(exits, all) {
		t.Fatalf("starts %v exits %v", starts, exits)
	}
}

type panicWriter struct{ calls int32 }

func (w *panicWriter) Write(p []byte) (int, error) {
	atomic.AddInt32(&w.calls, 1)
	panic("writer exploded")
}

type failWriter struct{ calls int32 }

var errDiskFull = errors.New("disk full")

func (w *failWriter) Write(p []byte) (int, error) {
	atomic.AddInt32(&w.calls, 1)
	return 0, errDiskFull
}

func TestWriterPanicIsRecoveredAndReported(t *testing.T) {
	w := &panicWriter{}
	var ends endings
	exit, err := load(t, printers).Run(context.Background(), &wasithreads.RunConfig{Stdout: w, OnThreadExit: ends.record})
	// The guest ran to its own end...
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitCode, Code: 3})
	if len(ends.kinds()) != 5 {
		t.Fatalf("endings %v", ends.kinds())
	}
	// ...the panic is reported after it, and the writer got no more output.
	var cbErr *wasithreads.CallbackError
	if !errors.As(err, &cbErr) {
		t.Fatalf("err = %v, want a *CallbackError", err)
	}
	if cbErr.Callback != "Stdout" || cbErr.Panic != "writer exploded" || cbErr.Tid < 1 || cbErr.Tid > 4 ||
		cbErr.Count != 1 || !bytes.Contains(cbErr.Stack, []byte("panicWriter")) {
		t.Fatalf("callback error %+v", cbErr)
	}
	if !strings.Contains(err.Error(), "Stdout callback") || !strings.Contains(err.Error(), "writer exploded") {
		t.Fatalf("message %q", err)
	}
	if w.calls != 1 {
		t.Fatalf("writer called %d times after panicking", w.calls)
	}
}

var sink int32

func TestRuntimePanicsInCallbacks(t *testing.T) {
	// A nil dereference (a signal turned into a panic on a guest thread) and an error
	// value, from the thread callbacks: each call is recovered, the first is reported.
	var m map[int32]int
	exit, err := load(t, printers).Run(context.Background(), &wasithreads.RunConfig{
		Stdout:        io.Discard,
		OnThreadStart: func(tid int32) { m[tid]++ }, // assignment to entry in nil map
		OnThreadExit: func(tid int32, how wasithreads.ThreadExit) {
			var p *wasithreads.ThreadExit
			sink = p.Code // nil pointer dereference
		},
	})
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitCode, Code: 3})
	var cbErr *wasithreads.CallbackError
	if !errors.As(err, &cbErr) || cbErr.Count != 10 {
		t.Fatalf("err = %#v", err)
	}
	var rtErr runtime.Error
	if !errors.As(err, &rtErr) {
		t.Fatalf("err %v does not wrap the runtime.Error", err)
	}
	// The same callbacks with a failing writer: errors are reported like panics.
	fw := &failWriter{}
	_, err = load(t, printers).Run(context.Background(), &wasithreads.RunConfig{Stdout: fw})
	if !errors.Is(err, errDiskFull) || !errors.As(err, &cbErr) || cbErr.Panic != nil || fw.calls != 1 {
		t.Fatalf("err = %v, calls %d", err, fw.calls)
	}
}

func TestBadModules(t *testing.T) {
	eng := testEngine(t)
	for _, tc := range []struct {
		bytes, want string
	}{
		{"\xde\xad\xbe\xef", "not a WebAssembly module"},
		{"", "empty"},
		{"\x00asm\x01\x00", "invalid WebAssembly"},
		{`(module (import "wasi" "thread-spawn" (func (param i32) (result i32)))
		  (import "env" "memory" (memory 1 1)) (func (export "_start")))`, "shared memory"},
		{`(module (import "env" "t" (table 1 funcref)) (func (export "_start")))`, "env::t"},
		{`(module (func (export "_start")`, "expected"},
	} {
		mod, err := eng.LoadModule([]byte(tc.bytes))
		var wtErr *wasithreads.Error
		if mod != nil || !errors.As(err, &wtErr) || !strings.Contains(wtErr.Message, tc.want) || wtErr.Op != "load module" {
			t.Fatalf("LoadModule(%q) = %v, %v; want an error containing %q", tc.bytes, mod, err, tc.want)
		}
		if err := eng.Validate([]byte(tc.bytes)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("Validate(%q) = %v", tc.bytes, err)
		}
	}
	if err := eng.Validate([]byte(writers)); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.LoadModuleFile("/nonexistent/guest.wasm"); err == nil || !strings.Contains(err.Error(), "nonexistent") {
		t.Fatalf("LoadModuleFile: %v", err)
	}
	// A module without _start loads but cannot run.
	mod, err := eng.LoadModule([]byte(`(module (memory (export "memory") 1))`))
	if err != nil {
		t.Fatal(err)
	}
	defer mod.Close()
	if exit, err := mod.Run(context.Background(), nil); exit != nil || err == nil || !strings.Contains(err.Error(), "_start") {
		t.Fatalf("Run without _start = %v, %v", exit, err)
	}
}

func TestLoadModuleFileAndSerialize(t *testing.T) {
	eng := testEngine(t)
	path := filepath.Join(t.TempDir(), "guest.wat")
	if err := os.WriteFile(path, []byte(exiter(9, true)), 0o644); err != nil {
		t.Fatal(err)
	}
	mod, err := eng.LoadModuleFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer mod.Close()
	data, err := mod.Serialize()
	if err != nil || len(data) == 0 {
		t.Fatalf("Serialize: %d bytes, %v", len(data), err)
	}
	cached, err := eng.DeserializeModule(data)
	if err != nil {
		t.Fatal(err)
	}
	defer cached.Close()
	exit, err := cached.Run(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitCode, Code: 9, Tid: 1})
	if _, err := eng.DeserializeModule([]byte("junk")); err == nil || !strings.Contains(err.Error(), "not a module serialized") {
		t.Fatalf("DeserializeModule(junk) = %v", err)
	}
}

func TestStdin(t *testing.T) {
	input := "line one\nline two\n"
	file := filepath.Join(t.TempDir(), "in")
	if err := os.WriteFile(file, []byte(input), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	big := strings.Repeat("0123456789abcdef", 40000) // 640 KB: more than a pipe holds
	for _, tc := range []struct {
		name string
		in   io.Reader
		want string
	}{
		{"strings.Reader", strings.NewReader(input), input},
		{"bytes.Buffer", bytes.NewBufferString(input), input},
		{"bytes.Reader", bytes.NewReader([]byte(input)), input},
		{"empty", strings.NewReader(""), ""},
		{"os.File", f, input},
		{"piped reader", iotest.OneByteReader(strings.NewReader(input)), input},
		{"piped big", io.MultiReader(strings.NewReader(big)), big},
	} {
		var out bytes.Buffer
		exit := run(t, echo, &wasithreads.RunConfig{Stdin: tc.in, Stdout: &out})
		expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitCode})
		if out.String() != tc.want {
			t.Fatalf("%s: echoed %d bytes, want %d", tc.name, out.Len(), len(tc.want))
		}
	}
	// A reader that fails: the guest sees end-of-file, the error is reported.
	errRead := errors.New("read failed")
	var out bytes.Buffer
	exit, err := load(t, echo).Run(context.Background(), &wasithreads.RunConfig{
		Stdin: io.MultiReader(strings.NewReader("partial"), iotest.ErrReader(errRead)), Stdout: &out,
	})
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitCode})
	var cbErr *wasithreads.CallbackError
	if out.String() != "partial" || !errors.Is(err, errRead) || !errors.As(err, &cbErr) || cbErr.Callback != "Stdin" {
		t.Fatalf("echoed %q, err %v", out.String(), err)
	}
}

func TestStdinPipeEndsWithTheRun(t *testing.T) {
	// A reader that never returns data: the guest blocks reading it until the run is
	// cancelled; the run still ends and releases the pipe.
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	onStart, ready := startedCounter(1)
	go func() { <-ready; cancel() }()
	exit, err := load(t, echo).Run(ctx, &wasithreads.RunConfig{Stdin: pr, OnThreadStart: onStart, Timeout: safety})
	if err != nil {
		t.Fatal(err)
	}
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitCancelled, Tid: -1})
}

func TestArgsAndEnv(t *testing.T) {
	var chunks []string
	collect := wasithreads.OutputFunc(func(tid int32, p []byte) { chunks = append(chunks, string(p)) })
	exit := run(t, argsEnv, &wasithreads.RunConfig{
		Args: []string{"prog", "a b", "ü"}, Env: map[string]string{"K": "V", "A": "1", "EMPTY": ""}, Stdout: collect,
	})
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitCode})
	want := []string{"prog\x00a b\x00ü\x00", "A=1\x00EMPTY=\x00K=V\x00"}
	if !reflect.DeepEqual(chunks, want) {
		t.Fatalf("guest saw %q, want %q", chunks, want)
	}
	// Defaults: argv {"wasm"}, no environment.
	chunks = nil
	run(t, argsEnv, &wasithreads.RunConfig{Stdout: collect})
	if !reflect.DeepEqual(chunks, []string{"wasm\x00", ""}) {
		t.Fatalf("defaults: guest saw %q", chunks)
	}
	// Inherited environment comes first.
	t.Setenv("WASITHREADS_GO_TEST", "inherited")
	chunks = nil
	run(t, argsEnv, &wasithreads.RunConfig{InheritEnv: true, Env: map[string]string{"ZZ": "last"}, Stdout: collect})
	if len(chunks) != 2 || !strings.Contains(chunks[1], "\x00WASITHREADS_GO_TEST=inherited\x00") ||
		!strings.HasSuffix(chunks[1], "\x00ZZ=last\x00") {
		t.Fatalf("inherited: guest saw %q", chunks)
	}
	// Bad strings are refused before the run.
	for _, cfg := range []*wasithreads.RunConfig{
		{Args: []string{"a\x00b"}},
		{Env: map[string]string{"A=B": "c"}},
		{Env: map[string]string{"": "c"}},
		{Args: []string{"\xff"}},
		{MaxThreads: -1},
		{Timeout: -time.Second},
		{Dirs: map[string]string{"/nonexistent-wasithreads-dir": "/"}},
	} {
		if exit, err := load(t, argsEnv).Run(context.Background(), cfg); exit != nil || err == nil {
			t.Fatalf("%+v: Run = %v, %v; want an error", cfg, exit, err)
		}
	}
}

func TestDirs(t *testing.T) {
	rw, ro := t.TempDir(), t.TempDir()
	var out bytes.Buffer
	exit := run(t, dirs, &wasithreads.RunConfig{
		Dirs: map[string]string{rw: "/rw"}, ReadOnlyDirs: map[string]string{ro: "/ro"}, Stdout: &out,
	})
	if out.String() != "/rw\n/ro\n" {
		t.Fatalf("preopens %q", out.String())
	}
	// Creating a file works in /rw (errno 0), not in /ro.
	if exit.Kind != wasithreads.ExitCode || exit.Code/1000 != 0 || exit.Code%1000 == 0 {
		t.Fatalf("exit %+v", exit)
	}
	if _, err := os.Stat(filepath.Join(rw, "new.txt")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(ro, "new.txt")); !os.IsNotExist(err) {
		t.Fatalf("read-only dir: %v", err)
	}
}

func TestLimits(t *testing.T) {
	exit := run(t, grower, &wasithreads.RunConfig{MaxMemory: 5 << 16})
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitCode, Code: 5})
	exit = run(t, grower, nil)
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitCode, Code: 100})
	exit = run(t, spawner, &wasithreads.RunConfig{MaxThreads: 3})
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitCode, Code: 3})
}

func TestStartCancelWaitTryWait(t *testing.T) {
	onStart, ready := startedCounter(4)
	var ends endings
	r, err := load(t, blocked).Start(context.Background(), &wasithreads.RunConfig{
		Timeout: safety, OnThreadStart: onStart, OnThreadExit: ends.record,
	})
	if err != nil {
		t.Fatal(err)
	}
	<-ready
	if exit, done, err := r.TryWait(); done || exit != nil || err != nil {
		t.Fatalf("TryWait on a running run = %v, %v, %v", exit, done, err)
	}
	go r.Cancel()
	exit, err := r.Wait()
	if err != nil {
		t.Fatal(err)
	}
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitCancelled, Tid: -1})
	<-r.Done()
	if again, done, err := r.TryWait(); !done || again != exit || err != nil {
		t.Fatalf("TryWait after the end = %v, %v, %v", again, done, err)
	}
	if again, _ := r.Wait(); again != exit {
		t.Fatal("Wait reports another outcome")
	}
	r.Cancel() // after the end: nothing happens
	r.Close()
	r.Close()
	if len(ends.kinds()) != 4 {
		t.Fatalf("endings %v", ends.kinds())
	}

	// Close cancels a run still going; a cancelled Start context does too.
	onStart, ready = startedCounter(4)
	r, err = load(t, blocked).Start(context.Background(), &wasithreads.RunConfig{Timeout: safety, OnThreadStart: onStart})
	if err != nil {
		t.Fatal(err)
	}
	<-ready
	r.Close()
	if exit, _ := r.Wait(); exit.Kind != wasithreads.ExitCancelled {
		t.Fatalf("after Close: %+v", exit)
	}
	ctx, cancel := context.WithCancel(context.Background())
	onStart, ready = startedCounter(4)
	r, err = load(t, blocked).Start(ctx, &wasithreads.RunConfig{Timeout: safety, OnThreadStart: onStart})
	if err != nil {
		t.Fatal(err)
	}
	<-ready
	cancel()
	if exit, _ := r.Wait(); exit.Kind != wasithreads.ExitCancelled {
		t.Fatalf("after cancel: %+v", exit)
	}

	// A run cancelled from its own output callback.
	var self *wasithreads.Run
	var mu sync.Mutex
	mu.Lock()
	r, err = load(t, printers).Start(context.Background(), &wasithreads.RunConfig{
		Stdout: wasithreads.OutputFunc(func(int32, []byte) { mu.Lock(); self.Cancel(); mu.Unlock() }),
	})
	if err != nil {
		t.Fatal(err)
	}
	self = r
	mu.Unlock()
	if exit, err := r.Wait(); err != nil || exit.Kind != wasithreads.ExitCancelled {
		t.Fatalf("self-cancel: %+v, %v", exit, err)
	}
}

func TestConcurrentRuns(t *testing.T) {
	mod := load(t, printers)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 10; j++ {
				var out tidOutput
				exit, err := mod.Run(context.Background(), &wasithreads.RunConfig{Stdout: &out})
				if err != nil || exit.Code != 3 || len(out.out) != 4 {
					errs <- fmt.Errorf("run: %v %v %v", exit, err, out.out)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestCloseAndFinalizers(t *testing.T) {
	eng, err := wasithreads.NewEngine(&wasithreads.EngineConfig{OptLevel: wasithreads.OptNone})
	if err != nil {
		t.Fatal(err)
	}
	mod, err := eng.LoadModule([]byte(exiter(4, true)))
	if err != nil {
		t.Fatal(err)
	}
	// The module outlives its engine's Close.
	if eng.Close() != nil || eng.Close() != nil {
		t.Fatal("Close")
	}
	if _, err := eng.LoadModule([]byte(returner)); !errors.Is(err, wasithreads.ErrClosed) {
		t.Fatalf("LoadModule after Close: %v", err)
	}
	if err := eng.Validate([]byte(returner)); !errors.Is(err, wasithreads.ErrClosed) {
		t.Fatalf("Validate after Close: %v", err)
	}
	exit, err := mod.Run(context.Background(), nil)
	if err != nil || exit.Code != 4 {
		t.Fatalf("run after engine Close: %v, %v", exit, err)
	}
	mod.Close()
	mod.Close()
	if _, err := mod.Run(context.Background(), nil); !errors.Is(err, wasithreads.ErrClosed) {
		t.Fatalf("Run after Close: %v", err)
	}
	if _, err := mod.Serialize(); !errors.Is(err, wasithreads.ErrClosed) {
		t.Fatalf("Serialize after Close: %v", err)
	}

	if _, err := wasithreads.NewEngine(&wasithreads.EngineConfig{OptLevel: 9}); err == nil {
		t.Fatal("bad opt level accepted")
	}

	// Objects never closed are freed by finalizers (without double frees with Close).
	for i := 0; i < 20; i++ {
		e, err := wasithreads.NewEngine(nil)
		if err != nil {
			t.Fatal(err)
		}
		m, err := e.LoadModule([]byte(returner))
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			m.Close()
		}
		if i%3 == 0 {
			e.Close()
		}
	}
	for i := 0; i < 4; i++ {
		runtime.GC()
	}
}

// counts returns the number of OS threads of this process, split into Go's (named like
// the executable) and the library's (pool workers and others it names), and the number
// of open descriptors.
func counts(t *testing.T) (goThreads, libThreads, fds int) {
	self, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Skip("no /proc")
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		comm, err := os.ReadFile("/proc/self/task/" + task.Name() + "/comm")
		if err != nil {
			continue // the thread just exited
		}
		if bytes.Equal(comm, self) {
			goThreads++
		} else {
			libThreads++
		}
	}
	return goThreads, libThreads, len(openFds(t))
}

// openFds lists this process's descriptors with what they refer to.
func openFds(t *testing.T) []string {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var fds []string
	for _, e := range ents {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the descriptor ReadDir itself used
		}
		fds = append(fds, e.Name()+" -> "+target)
	}
	return fds
}

func TestNoThreadOrFdGrowth(t *testing.T) {
	mod := load(t, printers)
	iteration := func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var out tidOutput
		var exits int32
		exit, err := mod.Run(ctx, &wasithreads.RunConfig{
			Stdout: &out, Stderr: io.Discard,
			Stdin:        iotest.HalfReader(strings.NewReader("piped")), // a goroutine and a pipe
			OnThreadExit: func(int32, wasithreads.ThreadExit) { atomic.AddInt32(&exits, 1) },
		})
		if err != nil || exit.Code != 3 || len(out.out) != 4 || exits != 5 {
			t.Fatalf("run: %v, %v, %v, %d exits", exit, err, out.out, exits)
		}
	}
	for i := 0; i < 20; i++ { // warm up: the Go runtime and the library's thread pool
		iteration()
	}
	go0, lib0, fds0 := counts(t)
	before := openFds(t)
	for i := 0; i < 200; i++ {
		iteration()
		// Every descriptor of a run is closed when Run returns, not some time later.
		if fds := len(openFds(t)); fds > fds0 {
			t.Fatalf("run %d left %d descriptors open: %q, before the runs: %q", i, fds-fds0, openFds(t), before)
		}
	}
	go1, lib1, fds1 := counts(t)
	if fds1 > fds0 {
		t.Logf("descriptors before: %q\nafter: %q", before, openFds(t))
	}
	t.Logf("over 200 runs: Go threads %d -> %d, library threads %d -> %d, fds %d -> %d", go0, go1, lib0, lib1, fds0, fds1)
	if fds1 > fds0 {
		t.Fatalf("descriptors grew from %d to %d over 200 runs", fds0, fds1)
	}
	// A leak of one thread per run would show as 200 (library) or more. Both sides keep
	// threads for reuse, so a few more may appear without a leak: the library's pool
	// (guest threads run on pool workers that idle out after 0.5 s) makes a new worker
	// when one is still on its way back as the next run spawns — at most one run's worth
	// (5 threads) — and the Go runtime makes a thread per goroutine in a C call at once,
	// plus GC workers, once.
	if lib1 > lib0+5 {
		t.Fatalf("library threads grew from %d to %d over 200 runs", lib0, lib1)
	}
	if go1 > go0+4 {
		t.Fatalf("Go threads grew from %d to %d over 200 runs", go0, go1)
	}
}
