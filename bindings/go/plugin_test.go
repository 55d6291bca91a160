package wasithreads_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"wasithreads"
)

// pluginWat is tests/guests/wat/plugin.wat (its comment lists the exports): a plugin
// shaped like a threaded C reactor, importing env.twice(i32) -> i32 and env.block().
var pluginWat = sharedGuest("plugin.wat")

// waitEnd blocks until fd (a Caller's EndFd) is readable.
var waitEnd = wasithreads.WaitReadable

// blocker is a host function for env.block: it counts itself in, then waits for the
// end of its instance, as a host function blocked on a queue would: through EndFd, or
// with useDone through Caller.Done.
type blocker struct {
	in      atomic.Int32
	ending  atomic.Int32 // how many saw IsEnding after the end fd fired
	inCh    chan struct{}
	useDone bool
}

func newBlocker() *blocker { return &blocker{inCh: make(chan struct{}, 64)} }

func (b *blocker) fn() *wasithreads.Func {
	return wasithreads.HostFunc(func(c *wasithreads.Caller) error {
		fd := c.EndFd()
		if fd < 0 {
			return errors.New("no end fd")
		}
		b.in.Add(1)
		b.inCh <- struct{}{}
		if b.useDone {
			never := make(chan struct{})
			select {
			case <-never:
			case <-c.Done():
			}
		} else {
			waitEnd(fd)
		}
		if c.IsEnding() {
			b.ending.Add(1)
		}
		return errors.New("ending")
	})
}

// await waits until n calls are blocked.
func (b *blocker) await(n int) {
	for i := 0; i < n; i++ {
		<-b.inCh
	}
}

// twiceCalls records env.twice calls: argument -> calling tid.
type twiceCalls struct {
	mu    sync.Mutex
	tids  map[int32]int32
	panic atomic.Bool
	fail  atomic.Bool
}

var errTwice = errors.New("twice refuses")

func (tc *twiceCalls) fn() *wasithreads.Func {
	return wasithreads.HostFunc(func(c *wasithreads.Caller, x int32) (int32, error) {
		if tc.panic.Load() {
			panic(fmt.Sprintf("twice(%d) panics", x))
		}
		if tc.fail.Load() {
			return 0, errTwice
		}
		tc.mu.Lock()
		if tc.tids == nil {
			tc.tids = map[int32]int32{}
		}
		tc.tids[x] = c.Tid()
		tc.mu.Unlock()
		return 2 * x, nil
	})
}

func (tc *twiceCalls) tid(x int32) (int32, bool) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	t, ok := tc.tids[x]
	return t, ok
}

// pluginInstance instantiates plugin.wat with fresh host functions; Close at cleanup.
func pluginInstance(t *testing.T) (*wasithreads.Instance, *twiceCalls, *blocker) {
	t.Helper()
	tc, b := &twiceCalls{}, newBlocker()
	cfg := &wasithreads.RunConfig{
		Imports: wasithreads.Imports{"env": {"twice": tc.fn(), "block": b.fn()}},
		Timeout: safety,
	}
	inst, err := load(t, pluginWat).Instantiate(context.Background(), cfg)
	if err != nil {
		t.Fatalf("instantiate: %v", err)
	}
	t.Cleanup(func() { inst.Close() })
	return inst, tc, b
}

// call1 calls an export with one result and fails the test on an error.
func call1(t testing.TB, inst *wasithreads.Instance, name string, args ...interface{}) interface{} {
	t.Helper()
	res, err := inst.Call(context.Background(), name, args...)
	if err != nil {
		t.Fatalf("%s%v: %v", name, args, err)
	}
	if len(res) != 1 {
		t.Fatalf("%s%v: %d results", name, args, len(res))
	}
	return res[0]
}

// expectEnded checks that err is an *InstanceEnded with an exit of kind k and returns it.
func expectEnded(t testing.TB, err error, k wasithreads.ExitKind) *wasithreads.InstanceEnded {
	t.Helper()
	var end *wasithreads.InstanceEnded
	if !errors.As(err, &end) || !errors.Is(err, wasithreads.ErrEnded) {
		t.Fatalf("error %v (%T), want an *InstanceEnded", err, err)
	}
	if end.Exit == nil || end.Exit.Kind != k {
		t.Fatalf("exit %+v, want kind %v", end.Exit, k)
	}
	return end
}

func TestInstanceCallsAndHostFunctions(t *testing.T) {
	inst, tc, _ := pluginInstance(t)
	if m := inst.CallMode(); m != wasithreads.CallsParallel {
		t.Errorf("call mode %v, want parallel", m)
	}
	if got := call1(t, inst, "inited"); got != int32(7) {
		t.Errorf("inited() = %v: _initialize did not run", got)
	}
	if got := call1(t, inst, "add", int32(2), int32(3)); got != int32(5) {
		t.Errorf("add(2, 3) = %v", got)
	}
	if got := call1(t, inst, "add", 40, -2); got != int32(38) {
		t.Errorf("add(40, -2) = %v", got)
	}
	if got := call1(t, inst, "add", uint32(0xffffffff), 1); got != int32(0) {
		t.Errorf("add(0xffffffff, 1) = %v", got)
	}
	vals, err := inst.CallVals(context.Background(), "add", wasithreads.ValI32(7), wasithreads.ValI32(8))
	if err != nil || len(vals) != 1 || vals[0].I32() != 15 {
		t.Errorf("CallVals add(7, 8) = %v, %v", vals, err)
	}
	// A call runs on a guest thread of its own (tid > 0), the host function on that thread.
	callTid := call1(t, inst, "whoami").(int32)
	if callTid <= 0 {
		t.Errorf("whoami() = %d, want a guest thread of the call's own", callTid)
	}
	if got := call1(t, inst, "twice_plus", 20); got != int32(41) {
		t.Errorf("twice_plus(20) = %v", got)
	}
	if tid, ok := tc.tid(20); !ok || tid <= 0 {
		t.Errorf("twice(20) ran on tid %d (called: %v)", tid, ok)
	}
	// A guest pthread started inside the call calls the host function.
	if got := call1(t, inst, "spawn_twice", 5); got != int32(10) {
		t.Errorf("spawn_twice(5) = %v", got)
	}
	if tid, ok := tc.tid(5); !ok || tid <= 0 {
		t.Errorf("twice(5) from the spawned thread ran on tid %d (called: %v)", tid, ok)
	}

	types := map[string]string{}
	for _, e := range inst.Exports() {
		types[e.Name] = e.String()
	}
	for name, want := range map[string]string{
		"add":    "add(i32, i32) -> (i32)",
		"sum":    "sum(i32, i32) -> (i64)",
		"boom":   "boom() -> ()",
		"quit":   "quit(i32) -> ()",
		"whoami": "whoami() -> (i32)",
	} {
		if types[name] != want {
			t.Errorf("export %s: %q, want %q", name, types[name], want)
		}
	}
	if et, ok := inst.ExportType("spin"); !ok || len(et.Params) != 1 || et.Params[0] != wasithreads.I32 {
		t.Errorf("ExportType(spin) = %v, %v", et, ok)
	}
	if _, ok := inst.ExportType("memory"); ok {
		t.Error("ExportType(memory): not a function")
	}
}

func TestInstanceMemory(t *testing.T) {
	inst, _, _ := pluginInstance(t)
	mem := inst.Memory()
	if len(mem) != 2*65536 || inst.MemorySize() != 2*65536 {
		t.Fatalf("memory of %d bytes (MemorySize %d), want 2 pages", len(mem), inst.MemorySize())
	}
	data := make([]byte, 3000)
	var want int64
	for i := range data {
		data[i] = byte(i * 7)
		want += int64(data[i])
	}
	if n, err := inst.WriteAt(data, 8192); n != len(data) || err != nil {
		t.Fatalf("WriteAt = %d, %v", n, err)
	}
	if got := call1(t, inst, "sum", 8192, len(data)); got != want {
		t.Errorf("sum of the bytes written = %v, want %d", got, want)
	}
	if !bytes.Equal(mem[8192:8192+len(data)], data) {
		t.Error("Memory() does not show what WriteAt wrote")
	}
	copy(mem[20000:], "in place")
	got := make([]byte, 8)
	if n, err := inst.ReadAt(got, 20000); n != 8 || err != nil || string(got) != "in place" {
		t.Errorf("ReadAt = %d, %v, %q", n, err, got)
	}
	// io.ReaderAt at the end: a short read and io.EOF.
	tail := make([]byte, 10)
	if n, err := inst.ReadAt(tail, int64(len(mem))-4); n != 4 || err != io.EOF {
		t.Errorf("ReadAt across the end = %d, %v; want 4, io.EOF", n, err)
	}
	if n, err := inst.ReadAt(tail, int64(len(mem))); n != 0 || err != io.EOF {
		t.Errorf("ReadAt at the end = %d, %v; want 0, io.EOF", n, err)
	}
	// WriteAt is all or nothing.
	if n, err := inst.WriteAt([]byte("xyz"), int64(len(mem))-1); n != 0 || !errors.Is(err, wasithreads.ErrMisuse) {
		t.Errorf("WriteAt across the end = %d, %v; want 0, ErrMisuse", n, err)
	}
	if mem[len(mem)-1] != 0 {
		t.Error("WriteAt across the end wrote a byte")
	}
	if _, err := inst.ReadAt(tail, -1); !errors.Is(err, wasithreads.ErrMisuse) {
		t.Errorf("ReadAt at -1: %v", err)
	}
	var _ io.ReaderAt = inst
	var _ io.WriterAt = inst
	section := io.NewSectionReader(inst, 8192, int64(len(data)))
	all, err := io.ReadAll(section)
	if err != nil || !bytes.Equal(all, data) {
		t.Errorf("io.SectionReader over the instance: %v", err)
	}
}

func TestInstanceWrongArgumentsLeaveItAlive(t *testing.T) {
	inst, _, _ := pluginInstance(t)
	for _, c := range []struct {
		name string
		args []interface{}
		want string
	}{
		{"add", []interface{}{1}, "takes 2 arguments, got 1"},
		{"add", []interface{}{1, 2, 3}, "takes 2 arguments, got 3"},
		{"add", []interface{}{"x", 2}, "argument 1 (string x) is not an i32"},
		{"add", []interface{}{1, int64(2)}, "argument 2 (int64 2) is not an i32"},
		{"add", []interface{}{1, 1 << 40}, "is not an i32"},
		{"add", []interface{}{1.5, 2}, "is not an i32"},
		{"add", []interface{}{wasithreads.ValI64(1), 2}, "is not an i32"},
		{"sum", []interface{}{0, nil}, "is not an i32"},
		{"nope", nil, `no export "nope"`},
		{"memory", nil, `no export "memory"`},
	} {
		_, err := inst.Call(context.Background(), c.name, c.args...)
		if !errors.Is(err, wasithreads.ErrMisuse) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s%v: %v; want ErrMisuse saying %q", c.name, c.args, err, c.want)
		}
		if errors.Is(err, wasithreads.ErrEnded) {
			t.Errorf("%s%v ended the instance", c.name, c.args)
		}
	}
	if _, err := inst.CallVals(context.Background(), "add", wasithreads.ValI32(1), wasithreads.ValF64(2)); !errors.Is(err, wasithreads.ErrMisuse) {
		t.Errorf("CallVals with an f64 for an i32: %v", err)
	}
	if got := call1(t, inst, "add", 1, 2); got != int32(3) {
		t.Errorf("add after misuse = %v", got)
	}
}

// lcg is plugin.wat's spin.
func lcg(n int32) int32 {
	x := n
	for ; n != 0; n-- {
		x = x*1664525 + 1013904223
	}
	return x
}

// inGoroutines runs f(0) ... f(n-1) in n goroutines at once and reports their errors.
func inGoroutines(t *testing.T, n int, f func(g int32) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for g := 0; g < n; g++ {
		wg.Add(1)
		go func(g int32) {
			defer wg.Done()
			if err := f(g); err != nil {
				errs <- err
			}
		}(int32(g))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestInstanceEightGoroutines(t *testing.T) {
	inst, _, _ := pluginInstance(t)
	const goroutines, rounds = 8, 500
	inGoroutines(t, goroutines, func(g int32) error {
		ctx := context.Background()
		for i := int32(0); i < rounds; i++ {
			res, err := inst.Call(ctx, "add", g, i)
			if err != nil || res[0] != g+i {
				return fmt.Errorf("goroutine %d: add(%d, %d) = %v, %v", g, g, i, res, err)
			}
			n := g*100 + i
			if res, err = inst.Call(ctx, "spin", n); err != nil || res[0] != lcg(n) {
				return fmt.Errorf("goroutine %d: spin(%d) = %v, %v; want %d", g, n, res, err, lcg(n))
			}
			if res, err = inst.Call(ctx, "twice_plus", n); err != nil || res[0] != 2*n+1 {
				return fmt.Errorf("goroutine %d: twice_plus(%d) = %v, %v", g, n, res, err)
			}
		}
		return nil
	})
	exit, err := inst.Close()
	if err != nil || exit.Kind != wasithreads.ExitCancelled {
		t.Errorf("Close = %v, %v; want cancelled (nothing ended it before), no error", exit, err)
	}
}

func TestInstanceTrapEndsIt(t *testing.T) {
	inst, _, _ := pluginInstance(t)
	_, err := inst.Call(context.Background(), "boom")
	end := expectEnded(t, err, wasithreads.ExitTrap)
	if !strings.Contains(end.Exit.Message, "unreachable") || end.Exit.Tid <= 0 {
		t.Errorf("trap exit %+v", end.Exit)
	}
	if end.Callback != nil {
		t.Errorf("no host function failed, got %v", end.Callback)
	}
	// Every later call reports the same exit at once.
	for i := 0; i < 3; i++ {
		_, err := inst.Call(context.Background(), "add", 1, 2)
		if later := expectEnded(t, err, wasithreads.ExitTrap); *later.Exit != *end.Exit {
			t.Errorf("later call: %+v, want %+v", later.Exit, end.Exit)
		}
	}
	// The memory stays readable until Close.
	if _, err := inst.ReadAt(make([]byte, 4), 600); err != nil {
		t.Errorf("ReadAt after the end: %v", err)
	}
	exit, err := inst.Close()
	if err != nil || *exit != *end.Exit {
		t.Errorf("Close = %+v, %v; want %+v", exit, err, end.Exit)
	}
	exit2, err2 := inst.Close()
	if exit2 != exit || err2 != nil {
		t.Errorf("second Close = %+v, %v", exit2, err2)
	}
	_, err = inst.Call(context.Background(), "add", 1, 2)
	expectEnded(t, err, wasithreads.ExitTrap)
	if inst.Memory() != nil || inst.MemorySize() != 0 {
		t.Error("Memory after Close")
	}
	if _, err := inst.ReadAt(make([]byte, 4), 0); !errors.Is(err, wasithreads.ErrEnded) {
		t.Errorf("ReadAt after Close: %v", err)
	}
	if _, err := inst.WriteAt(make([]byte, 4), 0); !errors.Is(err, wasithreads.ErrEnded) {
		t.Errorf("WriteAt after Close: %v", err)
	}
	inst.Cancel() // harmless
}

func TestInstanceProcExit(t *testing.T) {
	inst, _, _ := pluginInstance(t)
	_, err := inst.Call(context.Background(), "quit", 3)
	end := expectEnded(t, err, wasithreads.ExitCode)
	if end.Exit.Code != 3 {
		t.Errorf("exit %+v, want code 3", end.Exit)
	}
}

func TestHostFunctionPanicEndsTheInstance(t *testing.T) {
	inst, tc, _ := pluginInstance(t)
	tc.panic.Store(true)
	_, err := inst.Call(context.Background(), "twice_plus", 4)
	end := expectEnded(t, err, wasithreads.ExitTrap)
	if !strings.Contains(end.Exit.Message, "host function `env::twice` failed: panic: twice(4) panics") {
		t.Errorf("trap message %q", end.Exit.Message)
	}
	var cb *wasithreads.CallbackError
	if !errors.As(err, &cb) {
		t.Fatalf("no *CallbackError in %v", err)
	}
	if cb.Callback != "env::twice" || cb.Panic != "twice(4) panics" || cb.Tid <= 0 || len(cb.Stack) == 0 || cb.Count != 1 {
		t.Errorf("callback error %+v", cb)
	}
	if !strings.Contains(err.Error(), "host function env::twice (guest thread") {
		t.Errorf("error text %q", err)
	}
	exit, err := inst.Close()
	if !errors.As(err, &cb) || cb.Panic != "twice(4) panics" || *exit != *end.Exit {
		t.Errorf("Close = %+v, %v", exit, err)
	}
}

func TestHostFunctionErrorEndsTheInstance(t *testing.T) {
	inst, tc, _ := pluginInstance(t)
	tc.fail.Store(true)
	_, err := inst.Call(context.Background(), "spawn_twice", 4) // from a spawned guest thread
	end := expectEnded(t, err, wasithreads.ExitTrap)
	if !strings.Contains(end.Exit.Message, "host function `env::twice` failed: twice refuses") {
		t.Errorf("trap message %q", end.Exit.Message)
	}
	if !errors.Is(err, errTwice) || end.Callback == nil || end.Callback.Panic != nil {
		t.Errorf("the host function's error is not reachable: %v (%+v)", err, end.Callback)
	}
	if _, err := inst.Close(); !errors.Is(err, errTwice) {
		t.Errorf("Close error %v", err)
	}
}

func TestCancelWithCallsInFlight(t *testing.T) {
	inst, _, b := pluginInstance(t)
	const spinners, blockers = 8, 2
	var wg sync.WaitGroup
	errs := make(chan error, spinners+blockers)
	for g := 0; g < spinners+blockers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for {
				var err error
				if g < blockers {
					_, err = inst.Call(context.Background(), "block")
				} else {
					_, err = inst.Call(context.Background(), "spin", 1<<30)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	b.await(blockers)
	inst.Cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		expectEnded(t, err, wasithreads.ExitCancelled)
	}
	// The blocked host functions returned errors while ending: no failure.
	exit, err := inst.Close()
	if err != nil || exit.Kind != wasithreads.ExitCancelled || exit.Tid != -1 {
		t.Errorf("Close = %+v, %v", exit, err)
	}
	// Close joined every thread: each host function has returned.
	if got := b.ending.Load(); got != blockers {
		t.Errorf("%d blocked host functions saw IsEnding, want %d", got, blockers)
	}
}

func TestCallContextCancelEndsTheInstance(t *testing.T) {
	inst, _, b := pluginInstance(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := inst.Call(ctx, "block")
		done <- err
	}()
	b.await(1)
	cancel()
	err := <-done
	expectEnded(t, err, wasithreads.ExitCancelled)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("%v is not context.Canceled", err)
	}
	_, err = inst.Call(context.Background(), "add", 1, 2)
	if expectEnded(t, err, wasithreads.ExitCancelled); errors.Is(err, context.Canceled) {
		t.Error("a later call's error says its context was cancelled")
	}
	// A context already done does not call (nor end anything).
	inst2, _, _ := pluginInstance(t)
	if _, err := inst2.Call(ctx, "add", 1, 2); err != context.Canceled {
		t.Errorf("call with a done context: %v", err)
	}
	if got := call1(t, inst2, "add", 1, 2); got != int32(3) {
		t.Errorf("add = %v", got)
	}
}

func TestInstantiateErrors(t *testing.T) {
	mod := load(t, pluginWat)
	ctx := context.Background()
	block := wasithreads.HostFunc(func() {})
	_, err := mod.Instantiate(ctx, nil)
	if !errors.Is(err, wasithreads.ErrLink) || !strings.Contains(err.Error(), "env") {
		t.Errorf("no imports: %v", err)
	}
	_, err = mod.Instantiate(ctx, &wasithreads.RunConfig{Imports: wasithreads.Imports{"env": {
		"twice": wasithreads.HostFunc(func(x int64) int64 { return x }), "block": block}}})
	if !errors.Is(err, wasithreads.ErrLink) || !strings.Contains(err.Error(), "twice") {
		t.Errorf("an import of another type: %v", err)
	}
	for _, bad := range []struct {
		f    *wasithreads.Func
		want string
	}{
		{wasithreads.HostFunc(func(s string) {}), "parameter 1"},
		{wasithreads.HostFunc(func() int { return 0 }), "result 1"},
		{wasithreads.HostFunc(func(x ...int32) {}), "variadic"},
		{wasithreads.HostFunc(42), "needs a func"},
		{wasithreads.HostFunc((func())(nil)), "needs a func"},
		{wasithreads.NewHostFunc(nil, nil, nil), "nil func"},
		{wasithreads.NewHostFunc([]wasithreads.ValKind{9}, nil, func(*wasithreads.Caller, []wasithreads.Val) ([]wasithreads.Val, error) { return nil, nil }), "unknown kind"},
		{nil, "is nil"},
	} {
		_, err = mod.Instantiate(ctx, &wasithreads.RunConfig{Imports: wasithreads.Imports{"env": {"twice": bad.f, "block": block}}})
		if !errors.Is(err, wasithreads.ErrMisuse) || !strings.Contains(err.Error(), "env::twice") || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("bad host function: %v; want ErrMisuse naming env::twice and %q", err, bad.want)
		}
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err = mod.Instantiate(done, nil); err != context.Canceled {
		t.Errorf("done context: %v", err)
	}
	// _initialize that ends the instance: ErrEnded, with the host function's panic,
	// without waiting the TeardownGrace for the calling thread.
	initTraps := `(module
  (import "env" "hello" (func $hello (param i32)))
  (memory (export "memory") 1)
  (func (export "_initialize") (call $hello (i32.const 1))))`
	_, err = load(t, initTraps).Instantiate(ctx, &wasithreads.RunConfig{Imports: wasithreads.Imports{
		"env": {"hello": wasithreads.HostFunc(func(int32) { panic("no hello") })}}})
	var cb *wasithreads.CallbackError
	if !errors.Is(err, wasithreads.ErrEnded) || !errors.As(err, &cb) || cb.Panic != "no hello" ||
		!strings.Contains(err.Error(), "no hello") {
		t.Errorf("_initialize trapping in a host function: %v", err)
	}
	// The same module with a host function that works: a serial-mode instance.
	var said atomic.Int32
	inst, err := load(t, initTraps).Instantiate(ctx, &wasithreads.RunConfig{Imports: wasithreads.Imports{
		"env": {"hello": wasithreads.HostFunc(func(x int32) { said.Store(x) })}}})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	if inst.CallMode() != wasithreads.CallsSerial || said.Load() != 1 || len(inst.Exports()) != 1 {
		t.Errorf("mode %v, hello(%d), exports %v", inst.CallMode(), said.Load(), inst.Exports())
	}
	if inst.Memory() != nil {
		t.Error("Memory() of an unshared memory")
	}
	if _, err := inst.ReadAt(make([]byte, 4), 0); err != nil {
		t.Errorf("ReadAt of an unshared memory: %v", err)
	}
}

func TestNewHostFuncAndValues(t *testing.T) {
	guest := `(module
  (import "env" "mix" (func $mix (param i32 i64 f32 f64) (result f64 i32)))
  (import "env" "mix2" (func $mix2 (param i32 i64 f32 f64) (result f64 i32)))
  (memory 1)
  (func (export "go") (param i32 i64 f32 f64) (result f64 i32)
    (call $mix (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "go2") (param i32 i64 f32 f64) (result f64 i32)
    (call $mix2 (local.get 0) (local.get 1) (local.get 2) (local.get 3))))`
	// The same through reflection, with unsigned and named types.
	type count uint32
	mix2 := wasithreads.HostFunc(func(a count, b uint64, x float32, y float64) (float64, uint32, error) {
		return float64(a) + float64(b) + float64(x) + y, uint32(a) * 2, nil
	})
	kinds := []wasithreads.ValKind{wasithreads.I32, wasithreads.I64, wasithreads.F32, wasithreads.F64}
	mix := wasithreads.NewHostFunc(kinds, []wasithreads.ValKind{wasithreads.F64, wasithreads.I32},
		func(c *wasithreads.Caller, a []wasithreads.Val) ([]wasithreads.Val, error) {
			if a[0].I32() == 99 {
				return []wasithreads.Val{wasithreads.ValI32(1)}, nil // wrong count
			}
			sum := float64(a[0].I32()) + float64(a[1].I64()) + float64(a[2].F32()) + a[3].F64()
			return []wasithreads.Val{wasithreads.ValF64(sum), wasithreads.ValI32(int32(c.Tid()))}, nil
		})
	if p, r := mix.Params(), mix.Results(); len(p) != 4 || len(r) != 2 || r[0] != wasithreads.F64 {
		t.Errorf("Params %v Results %v", p, r)
	}
	inst, err := load(t, guest).Instantiate(context.Background(), &wasithreads.RunConfig{
		Imports: wasithreads.Imports{"env": {"mix": mix, "mix2": mix2}}})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	res, err := inst.Call(context.Background(), "go", -1, int64(1)<<40, float32(0.5), 0.25)
	if err != nil || len(res) != 2 || res[0] != float64(-1)+float64(int64(1)<<40)+0.75 || res[1] != int32(0) {
		t.Errorf("go(...) = %v, %v", res, err)
	}
	res, err = inst.Call(context.Background(), "go2", uint32(0x80000000), uint64(1)<<63, float32(0.5), 0.25)
	if err != nil || len(res) != 2 || res[0] != float64(0x80000000)+float64(uint64(1)<<63)+0.75 || res[1] != int32(0) {
		t.Errorf("go2(...) = %v, %v", res, err)
	}
	res, err = inst.Call(context.Background(), "go2", -1, int64(-1), float32(-0.5), -1.0)
	if err != nil || res[0] != float64(0xffffffff)+float64(uint64(1<<64-1))-1.5 || res[1] != int32(-2) {
		t.Errorf("go2(-1, ...) = %v, %v", res, err)
	}
	if _, err := inst.Call(context.Background(), "go", 1, 2, 0.1, 0.25); !errors.Is(err, wasithreads.ErrMisuse) {
		t.Errorf("0.1 for an f32: %v", err)
	}
	_, err = inst.Call(context.Background(), "go", 99, 0, float32(0), 0.0)
	end := expectEnded(t, err, wasithreads.ExitTrap)
	if end.Callback == nil || !strings.Contains(end.Callback.Error(), "returned 1 results, the signature has 2") {
		t.Errorf("a host function returning the wrong count: %v", err)
	}
	for _, v := range []wasithreads.Val{wasithreads.ValI32(-5), wasithreads.ValI64(-5), wasithreads.ValF32(1.5), wasithreads.ValF64(-2.25)} {
		if fmt.Sprint(v.Get()) != strings.TrimPrefix(v.String(), v.Kind().String()+":") {
			t.Errorf("Val %v Get %v", v, v.Get())
		}
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Val.I64 of an i32 did not panic")
			}
		}()
		wasithreads.ValI32(1).I64()
	}()
}

// hostCaller is a command guest: eight spawned threads and then main call
// env.note(x) -> x (thread i passes i, main 100); main waits for the threads.
const hostCaller = `(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "env" "memory" (memory 1 1 shared))
  (import "env" "note" (func $note (param i32) (result i32)))
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (drop (call $note (local.get $arg)))
    (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))
    (drop (memory.atomic.notify (i32.const 0) (i32.const 1))))
  (func (export "_start") (local $i i32) (local $v i32)
    (loop $l
      (drop (call $spawn (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 8))))
    (block $done (loop $w
      (local.set $v (i32.atomic.load (i32.const 0)))
      (br_if $done (i32.ge_u (local.get $v) (i32.const 8)))
      (drop (memory.atomic.wait32 (i32.const 0) (local.get $v) (i64.const -1)))
      (br $w)))
    (drop (call $note (i32.const 100)))))`

func TestRunWithHostFunctions(t *testing.T) {
	for _, cancellable := range []bool{false, true} {
		var mu sync.Mutex
		tids := map[int32]int32{}
		cfg := &wasithreads.RunConfig{Timeout: safety, Imports: wasithreads.Imports{"env": {
			"note": wasithreads.HostFunc(func(c *wasithreads.Caller, x int32) int32 {
				mu.Lock()
				tids[x] = c.Tid()
				mu.Unlock()
				return x
			})}}}
		ctx := context.Background()
		if cancellable {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			defer cancel()
		}
		exit, err := load(t, hostCaller).Run(ctx, cfg)
		if err != nil || !exit.Success() {
			t.Fatalf("run: %v, %v", exit, err)
		}
		if len(tids) != 9 || tids[100] != 0 {
			t.Errorf("calls by argument -> tid: %v", tids)
		}
		seen := map[int32]bool{}
		for x := int32(0); x < 8; x++ {
			if tid := tids[x]; tid <= 0 || seen[tid] {
				t.Errorf("note(%d) on tid %d", x, tid)
			}
			seen[tids[x]] = true
		}
	}
	// A panic in one of them ends the run with a trap and comes back as *CallbackError.
	cfg := &wasithreads.RunConfig{Imports: wasithreads.Imports{"env": {
		"note": wasithreads.HostFunc(func(x int32) int32 {
			if x == 3 {
				panic("note 3")
			}
			return x
		})}}}
	exit, err := load(t, hostCaller).Run(context.Background(), cfg)
	var cb *wasithreads.CallbackError
	if exit == nil || exit.Kind != wasithreads.ExitTrap || !errors.As(err, &cb) || cb.Panic != "note 3" ||
		cb.Callback != "env::note" {
		t.Errorf("run with a panicking host function: %v, %v", exit, err)
	}
}

func TestInstanceFinalizer(t *testing.T) {
	mod := load(t, pluginWat)
	const n = 20
	// Each instance's host function is unreachable once the library released its
	// definition, which it does when the instance is freed.
	released := make(chan struct{}, n)
	for i := 0; i < n; i++ {
		twice := (&twiceCalls{}).fn()
		runtime.SetFinalizer(twice, func(*wasithreads.Func) { released <- struct{}{} })
		inst, err := mod.Instantiate(context.Background(), &wasithreads.RunConfig{
			Imports: wasithreads.Imports{"env": {"twice": twice, "block": newBlocker().fn()}}})
		if err != nil {
			t.Fatal(err)
		}
		if got := call1(t, inst, "twice_plus", 1); got != int32(3) {
			t.Fatalf("twice_plus = %v", got)
		}
	}
	// Dropped without Close: the finalizers close and free them (in goroutines of their
	// own), which releases the host functions.
	for got := 0; got < n; {
		runtime.GC()
		select {
		case <-released:
			got++
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestCallTimeoutEndsTheInstance(t *testing.T) {
	b := newBlocker()
	inst, err := load(t, pluginWat).Instantiate(context.Background(), &wasithreads.RunConfig{
		Imports:     wasithreads.Imports{"env": {"twice": (&twiceCalls{}).fn(), "block": b.fn()}},
		CallTimeout: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	if got := call1(t, inst, "add", 1, 2); got != int32(3) {
		t.Errorf("add = %v", got)
	}
	_, err = inst.Call(context.Background(), "block")
	expectEnded(t, err, wasithreads.ExitTimeout)
	_, err = inst.Call(context.Background(), "add", 1, 2)
	expectEnded(t, err, wasithreads.ExitTimeout)
	inst.Close()
	if b.ending.Load() != 1 {
		t.Error("the blocked host function did not see the end")
	}
}
