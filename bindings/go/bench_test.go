package wasithreads_test

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"testing"
	"time"

	"wasithreads"
)

// BenchmarkRunTiny measures a warm run of a module whose _start is empty, on one engine
// and module, with the default config (stdio inherited) and context.Background(): the
// binding calls wt_run. Besides ns/op (the mean) it reports the median of per-run times,
// median-µs/run, which is what testdata/run_tiny.c prints for C (bench.sh runs both).
func BenchmarkRunTiny(b *testing.B) { benchTiny(b, context.Background()) }

// BenchmarkRunTinyCancellable is BenchmarkRunTiny with a context that can be cancelled:
// the binding then uses wt_run_start, a goroutine watching ctx and wt_run_wait
// (run_tiny.c async is the C equivalent).
func BenchmarkRunTinyCancellable(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	benchTiny(b, ctx)
}

func benchTiny(b *testing.B, ctx context.Context) {
	mod := load(b, tiny)
	for i := 0; i < 100; i++ { // warm up
		if _, err := mod.Run(ctx, nil); err != nil {
			b.Fatal(err)
		}
	}
	times := make([]time.Duration, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t := time.Now()
		exit, err := mod.Run(ctx, nil)
		times[i] = time.Since(t)
		if err != nil || !exit.Success() {
			b.Fatal(exit, err)
		}
	}
	b.StopTimer()
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	b.ReportMetric(float64(times[len(times)/2].Nanoseconds())/1e3, "median-µs/run")
}

// BenchmarkOutput runs the writers guest (8 threads, 400 writes of 1000 bytes) with its
// output dropped by the library (io.Discard) and delivered to a Go function on the guest
// threads (OutputFunc): the difference per write is the cost of a call from a guest
// thread into Go.
func BenchmarkOutput(b *testing.B) {
	mod := load(b, writers)
	for _, bc := range []struct {
		name string
		cfg  *wasithreads.RunConfig
	}{
		{"discard", &wasithreads.RunConfig{Stdout: io.Discard}},
		{"callback", &wasithreads.RunConfig{Stdout: wasithreads.OutputFunc(func(int32, []byte) {})}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if exit, err := mod.Run(context.Background(), bc.cfg); err != nil || !exit.Success() {
					b.Fatal(exit, err)
				}
			}
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N)/400, "ns/write")
		})
	}
}

// benchInstance instantiates a plugin for a benchmark: plugin.wat ("wat") or the real C
// plugin ("c"), with host functions that do nothing.
func benchInstance(b *testing.B, which string) *wasithreads.Instance {
	var mod *wasithreads.Module
	var imports wasithreads.Imports
	switch which {
	case "wat":
		mod = load(b, pluginWat)
		imports = wasithreads.Imports{"env": {
			"twice": wasithreads.HostFunc(func(x int32) int32 { return 2 * x }),
			"block": wasithreads.HostFunc(func() {}),
		}}
	default:
		mod = realPlugin(b)
		imports = wasithreads.Imports{"env": {
			"host_log":   wasithreads.HostFunc(func(int32, int32) {}),
			"host_add":   wasithreads.HostFunc(func(a, b int64) int64 { return a + b }),
			"host_block": wasithreads.HostFunc(func() {}),
		}}
	}
	inst, err := mod.Instantiate(context.Background(), &wasithreads.RunConfig{Imports: imports})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { inst.Close() })
	return inst
}

// BenchmarkCallAdd measures a warm call of the trivial export add(i32, i32) -> i32 from
// one goroutine, through Call (interface{} arguments and results) and CallVals, on
// plugin.wat and the real C plugin.
func BenchmarkCallAdd(b *testing.B) {
	for _, which := range []string{"wat", "c"} {
		b.Run(which+"/Call", func(b *testing.B) {
			inst := benchInstance(b, which)
			ctx := context.Background()
			for i := 0; i < 1000; i++ { // warm up: the calling thread's guest thread
				if _, err := inst.Call(ctx, "add", 1, 2); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := inst.Call(ctx, "add", i, 2)
				if err != nil || res[0] != int32(i+2) {
					b.Fatal(res, err)
				}
			}
		})
		b.Run(which+"/CallVals", func(b *testing.B) {
			inst := benchInstance(b, which)
			ctx := context.Background()
			two := wasithreads.ValI32(2)
			for i := 0; i < 1000; i++ {
				if _, err := inst.CallVals(ctx, "add", two, two); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := inst.CallVals(ctx, "add", wasithreads.ValI32(int32(i)), two)
				if err != nil || res[0].I32() != int32(i+2) {
					b.Fatal(res, err)
				}
			}
		})
	}
}

// BenchmarkCallSpin measures the C plugin's CPU-bound spin(1 << 20) (about a millisecond
// of xorshift rounds, no memory traffic) called b.N times in all by 1 or 2 goroutines at
// once: ns/op is wall time per call, so ns/op of goroutines=1 over that of goroutines=2
// is the speed-up of two parallel callers.
func BenchmarkCallSpin(b *testing.B) {
	const rounds = 1 << 20
	for _, goroutines := range []int{1, 2} {
		b.Run(fmt.Sprintf("goroutines=%d", goroutines), func(b *testing.B) {
			inst := benchInstance(b, "c")
			want, err := inst.Call(context.Background(), "spin", rounds)
			if err != nil {
				b.Fatal(err)
			}
			var wg sync.WaitGroup
			for g := 0; g < goroutines; g++ { // warm up: each goroutine's guest thread
				wg.Add(1)
				go func() {
					defer wg.Done()
					inst.Call(context.Background(), "spin", 1)
				}()
			}
			wg.Wait()
			b.ResetTimer()
			errs := make(chan error, goroutines)
			for g := 0; g < goroutines; g++ {
				n := b.N / goroutines
				if g < b.N%goroutines {
					n++
				}
				wg.Add(1)
				go func(n int) {
					defer wg.Done()
					for i := 0; i < n; i++ {
						res, err := inst.Call(context.Background(), "spin", rounds)
						if err != nil || res[0] != want[0] {
							errs <- fmt.Errorf("spin = %v, %v; want %v", res, err, want[0])
							return
						}
					}
				}(n)
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkHostCall measures a guest -> Go host function -> guest round trip: the C
// plugin's host_add_loop(1000) calls env.host_add(i, 1) a thousand times from one guest
// thread, with host_add made by HostFunc (a signature it converts without reflection, and
// one it calls through reflection) or NewHostFunc (explicit signature); ns/roundtrip is
// the time per host call.
func BenchmarkHostCall(b *testing.B) {
	i64 := []wasithreads.ValKind{wasithreads.I64}
	for _, bc := range []struct {
		name string
		add  *wasithreads.Func
	}{
		{"HostFunc", wasithreads.HostFunc(func(a, b int64) int64 { return a + b })},
		{"HostFuncReflect", wasithreads.HostFunc(func(a, b int64) (int64, error) { return a + b, nil })},
		{"NewHostFunc", wasithreads.NewHostFunc(append(i64, wasithreads.I64), i64,
			func(_ *wasithreads.Caller, a []wasithreads.Val) ([]wasithreads.Val, error) {
				return []wasithreads.Val{wasithreads.ValI64(a[0].I64() + a[1].I64())}, nil
			})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			inst, err := realPlugin(b).Instantiate(context.Background(), &wasithreads.RunConfig{
				Imports: wasithreads.Imports{"env": {
					"host_log":   wasithreads.HostFunc(func(int32, int32) {}),
					"host_add":   bc.add,
					"host_block": wasithreads.HostFunc(func() {}),
				}}})
			if err != nil {
				b.Fatal(err)
			}
			defer inst.Close()
			const n = 1000
			want := int64(n*(n-1)/2 + n)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				res, err := inst.Call(context.Background(), "host_add_loop", n)
				if err != nil || res[0] != want {
					b.Fatal(res, err)
				}
			}
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N)/n, "ns/roundtrip")
		})
	}
}
