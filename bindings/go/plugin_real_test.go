package wasithreads_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"wasithreads"
)

// The real C plugin, tests/guests/plugin-c/plugin.c (its banner lists every export and
// import): built by clang against Rust's threaded wasi-libc. cargo test caches it at
// target/guests/plugin-c/plugin.wasm; without that file the test builds it with
// build.sh, and a failure to build is a failure (scripts/setup.sh installs the
// toolchain), never a skip.
var (
	realPluginOnce sync.Once
	realPluginMod  *wasithreads.Module
	realPluginErr  error
)

func realPlugin(t testing.TB) *wasithreads.Module {
	t.Helper()
	realPluginOnce.Do(func() {
		path := filepath.Join("..", "..", "target", "guests", "plugin-c", "plugin.wasm")
		if _, err := os.Stat(path); err != nil {
			dir, err := os.MkdirTemp("", "wasithreads-go-plugin")
			if err != nil {
				realPluginErr = err
				return
			}
			defer os.RemoveAll(dir)
			path = filepath.Join(dir, "plugin.wasm")
			out, err := exec.Command("bash", filepath.Join("..", "..", "tests", "guests", "plugin-c", "build.sh"), path).CombinedOutput()
			if err != nil {
				realPluginErr = fmt.Errorf("building the C plugin with tests/guests/plugin-c/build.sh: %v\n%s", err, out)
				return
			}
		}
		realPluginMod, realPluginErr = testEngine(t).LoadModuleFile(path)
	})
	if realPluginErr != nil {
		t.Fatal(realPluginErr)
	}
	return realPluginMod
}

// realHost holds the C plugin's host functions: env.host_log, env.host_add,
// env.host_block.
type realHost struct {
	mu     sync.Mutex
	logs   map[string]int32 // message -> tid
	adds   atomic.Int64
	block  *blocker
	starts atomic.Int32
	exits  atomic.Int32
	kinds  sync.Map // tid -> wasithreads.ThreadExitKind
}

func (h *realHost) config() *wasithreads.RunConfig {
	h.logs = map[string]int32{}
	h.block = newBlocker()
	h.block.useDone = true // plugin_test.go's blocked host functions poll EndFd
	return &wasithreads.RunConfig{
		Timeout: safety,
		Imports: wasithreads.Imports{"env": {
			"host_log": wasithreads.HostFunc(func(c *wasithreads.Caller, ptr, n int32) {
				msg := string(c.Memory()[ptr : ptr+n])
				h.mu.Lock()
				h.logs[msg] = c.Tid()
				h.mu.Unlock()
			}),
			"host_add": wasithreads.HostFunc(func(a, b int64) int64 {
				h.adds.Add(1)
				return a + b
			}),
			"host_block": h.block.fn(),
		}},
		OnThreadStart: func(int32) { h.starts.Add(1) },
		OnThreadExit: func(tid int32, how wasithreads.ThreadExit) {
			h.kinds.Store(tid, how.Kind)
			h.exits.Add(1)
		},
	}
}

func realInstance(t *testing.T) (*wasithreads.Instance, *realHost) {
	t.Helper()
	h := &realHost{}
	inst, err := realPlugin(t).Instantiate(context.Background(), h.config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Close() })
	return inst, h
}

func TestRealPluginHostFunctionsFromPthreads(t *testing.T) {
	inst, h := realInstance(t)
	if inst.CallMode() != wasithreads.CallsParallel {
		t.Errorf("call mode %v", inst.CallMode())
	}
	if got := call1(t, inst, "call_host_from_threads", 8); got != int32(8) {
		t.Fatalf("call_host_from_threads(8) = %v", got)
	}
	tids := map[int32]bool{}
	for i := 0; i < 8; i++ {
		h.mu.Lock()
		tid, ok := h.logs[fmt.Sprintf("thread %d", i)]
		h.mu.Unlock()
		if !ok || tid <= 0 || tids[tid] {
			t.Errorf("host_log(\"thread %d\"): tid %d (logged: %v)", i, tid, ok)
		}
		tids[tid] = true
	}
	call1(t, inst, "log_message", 42)
	h.mu.Lock()
	_, ok := h.logs["plugin says 42"]
	h.mu.Unlock()
	if !ok {
		t.Error("log_message(42) did not reach host_log")
	}
	if got := call1(t, inst, "host_add_loop", 1000); got != int64(1000*999/2+1000) {
		t.Errorf("host_add_loop(1000) = %v", got)
	}
}

func TestRealPluginMemoryRoundTrip(t *testing.T) {
	inst, _ := realInstance(t)
	const n = 100000
	ptr := call1(t, inst, "malloc", 4*n).(int32)
	if ptr == 0 {
		t.Fatal("malloc failed")
	}
	buf := make([]byte, 4*n)
	var want int64
	for i := 0; i < n; i++ {
		v := uint32(i*2654435761) >> 8
		binary.LittleEndian.PutUint32(buf[4*i:], v)
		want += int64(v)
	}
	if _, err := inst.WriteAt(buf, int64(ptr)); err != nil {
		t.Fatal(err)
	}
	for _, threads := range []int{1, 4, 8} {
		if got := call1(t, inst, "parallel_sum", ptr, n, threads); got != want {
			t.Errorf("parallel_sum with %d threads = %v, want %d", threads, got, want)
		}
	}
	// The guest writes, the host reads in place: parallel_sum64 stores its result.
	out := call1(t, inst, "malloc", 8).(int32)
	if got := call1(t, inst, "parallel_sum64", ptr, n/2, 4, out); got != int32(0) {
		t.Fatalf("parallel_sum64 = %v", got)
	}
	var want64 uint64
	for i := 0; i < n/2; i++ {
		want64 += binary.LittleEndian.Uint64(buf[8*i:])
	}
	if got := binary.LittleEndian.Uint64(inst.Memory()[out:]); got != want64 {
		t.Errorf("parallel_sum64 stored %d, want %d", got, want64)
	}
	for _, p := range []int32{ptr, out} {
		if _, err := inst.Call(context.Background(), "free", p); err != nil {
			t.Error(err)
		}
	}
}

func TestRealPluginEightGoroutines(t *testing.T) {
	inst, h := realInstance(t)
	const goroutines, rounds = 8, 300
	stackSum := func(n int32) int32 {
		var s int32
		for i := int32(0); i < 256; i++ {
			s += n * i
		}
		return s
	}
	inGoroutines(t, goroutines, func(g int32) error {
		ctx := context.Background()
		check := func(name string, want interface{}, args ...interface{}) error {
			res, err := inst.Call(ctx, name, args...)
			if err != nil || len(res) != 1 || res[0] != want {
				return fmt.Errorf("goroutine %d: %s%v = %v, %v; want %v", g, name, args, res, err, want)
			}
			return nil
		}
		for i := int32(0); i < rounds; i++ {
			n := g*1000 + i
			for _, err := range []error{
				check("add", n+7, n, 7),
				check("stack_sum", stackSum(n), n),
				check("alloc_check", 64+i, 64+i),
				check("mutex_add", int32(0), int32(i%3), 5),
				check("call_host_add", int64(n)+1<<33, n, int64(1)<<33),
			} {
				if err != nil {
					return err
				}
			}
		}
		return nil
	})
	for kind := int32(0); kind < 3; kind++ {
		want := int32(0)
		for i := 0; i < rounds; i++ {
			if int32(i%3) == kind {
				want += goroutines * 5
			}
		}
		if got := call1(t, inst, "mutex_counter", kind); got != want {
			t.Errorf("mutex_counter(%d) = %v, want %d", kind, got, want)
		}
	}
	if got := h.adds.Load(); got != goroutines*rounds {
		t.Errorf("host_add called %d times, want %d", got, goroutines*rounds)
	}
}

func TestRealPluginTrapEndsIt(t *testing.T) {
	for code, fn := range map[int32]string{1: "crash", 2: "trap_thread"} { // 2: in a pthread of the call
		inst, _ := realInstance(t)
		if got := call1(t, inst, "crash", 0); got != int32(0) {
			t.Fatalf("crash(0) = %v", got)
		}
		_, err := inst.Call(context.Background(), "crash", code)
		end := expectEnded(t, err, wasithreads.ExitTrap)
		if !strings.Contains(end.Exit.Message, fn) {
			t.Errorf("crash(%d): trap message %q does not name %s", code, end.Exit.Message, fn)
		}
		_, err = inst.Call(context.Background(), "add", 1, 2)
		if later := expectEnded(t, err, wasithreads.ExitTrap); *later.Exit != *end.Exit {
			t.Errorf("later call %+v, want %+v", later.Exit, end.Exit)
		}
	}
}

func TestRealPluginCloseStopsBackgroundThreads(t *testing.T) {
	inst, h := realInstance(t)
	if got := call1(t, inst, "start_workers", 3); got != int32(0) {
		t.Fatalf("start_workers(3) = %v", got)
	}
	// The workers go on between calls.
	first := call1(t, inst, "worker_count").(int64)
	for call1(t, inst, "worker_count").(int64) <= first+3 {
		time.Sleep(time.Millisecond)
	}
	if h.starts.Load() != 3 {
		t.Errorf("%d thread starts, want the 3 workers", h.starts.Load())
	}
	exit, err := inst.Close()
	if err != nil || exit.Kind != wasithreads.ExitCancelled {
		t.Fatalf("Close = %v, %v", exit, err)
	}
	// Close returned after every worker was stopped and joined.
	if got := h.exits.Load(); got != 3 {
		t.Errorf("%d thread exits after Close, want 3", got)
	}
	var terminated []int32
	h.kinds.Range(func(tid, kind interface{}) bool {
		if kind == wasithreads.ThreadTerminated {
			terminated = append(terminated, tid.(int32))
		}
		return true
	})
	sort.Slice(terminated, func(i, j int) bool { return terminated[i] < terminated[j] })
	if len(terminated) != 3 {
		t.Errorf("terminated threads %v, want the 3 workers", terminated)
	}
}

func TestRealPluginCancelStopsBlockedHostFunctions(t *testing.T) {
	inst, h := realInstance(t)
	const callers = 8
	errs := make(chan error, callers+1)
	go func() {
		_, err := inst.Call(context.Background(), "block_in_threads", 4)
		errs <- err
	}()
	for g := 0; g < callers; g++ {
		go func() {
			_, err := inst.Call(context.Background(), "block")
			errs <- err
		}()
	}
	h.block.await(callers + 4)
	inst.Cancel()
	for i := 0; i < callers+1; i++ {
		expectEnded(t, <-errs, wasithreads.ExitCancelled)
	}
	if exit, err := inst.Close(); err != nil || exit.Kind != wasithreads.ExitCancelled {
		t.Errorf("Close = %v, %v", exit, err)
	}
	// Close joined every thread: each host function has returned.
	if got := h.block.ending.Load(); got != callers+4 {
		t.Errorf("%d blocked host functions saw the end, want %d", got, callers+4)
	}
	_, err := inst.Call(context.Background(), "add", 1, 2)
	if !errors.Is(err, wasithreads.ErrEnded) {
		t.Errorf("call after Close: %v", err)
	}
}
