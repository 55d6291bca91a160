package wasithreads_test

import (
	"context"
	"io"
	"sort"
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
