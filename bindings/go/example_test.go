package wasithreads_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"sync"
	"time"

	"wasithreads"
)

// A guest whose four threads each print a line (printers, tests/guests/wat/printers.wat), with its
// output captured per guest thread.
func Example() {
	eng, err := wasithreads.NewEngine(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	mod, err := eng.LoadModule([]byte(printers)) // .wasm bytes or WAT text
	if err != nil {
		log.Fatal(err)
	}
	defer mod.Close()

	var mu sync.Mutex
	lines := map[int32]string{}
	exit, err := mod.Run(context.Background(), &wasithreads.RunConfig{
		Args: []string{"printers"},
		// Called on the guest thread that wrote, with its id.
		Stdout: wasithreads.OutputFunc(func(tid int32, p []byte) {
			mu.Lock()
			lines[tid] += string(p)
			mu.Unlock()
		}),
		Timeout: 10 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(exit)
	for tid := int32(1); tid <= 4; tid++ {
		fmt.Printf("thread %d: %s", tid, lines[tid])
	}
	// Output:
	// exit code 3 (thread 0)
	// thread 1: line from thread 0
	// thread 2: line from thread 1
	// thread 3: line from thread 2
	// thread 4: line from thread 3
}

// A run in the background, cancelled by its context once its threads are running.
func ExampleModule_Start() {
	eng, err := wasithreads.NewEngine(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	mod, err := eng.LoadModule([]byte(blocked)) // threads that never end by themselves
	if err != nil {
		log.Fatal(err)
	}
	defer mod.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan int32, 8)
	run, err := mod.Start(ctx, &wasithreads.RunConfig{
		OnThreadStart: func(tid int32) { started <- tid },
		OnThreadExit: func(tid int32, how wasithreads.ThreadExit) {
			if how.Kind != wasithreads.ThreadTerminated {
				log.Printf("thread %d: %v", tid, how.Kind)
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		<-started
	}
	cancel() // or run.Cancel()
	exit, err := run.Wait()
	fmt.Println(exit, err)
	// Output: cancelled <nil>
}

// Telling errors apart, and hearing what the guest only sees as an error code: here a
// thread-spawn refused at the thread limit (spawner spawns until refused and exits with
// the number of threads it got).
func ExampleRunConfig_OnDiagnostic() {
	eng, err := wasithreads.NewEngine(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	logger, err := eng.LoadModule([]byte(`(module (import "env" "log" (func)) (func (export "_start")))`))
	if err != nil {
		log.Fatal(err)
	}
	defer logger.Close()
	// Function imports are the host's to define with a run: the run fails to start.
	if _, err = logger.Run(context.Background(), nil); errors.Is(err, wasithreads.ErrLink) {
		fmt.Println("link error:", strings.SplitN(err.(*wasithreads.Error).Message, ": ", 2)[0])
	}

	mod, err := eng.LoadModule([]byte(spawner))
	if err != nil {
		log.Fatal(err)
	}
	defer mod.Close()
	exit, err := mod.Run(context.Background(), &wasithreads.RunConfig{
		MaxThreads:   2,
		OnDiagnostic: func(tid int32, message string) { fmt.Printf("thread %d: %s\n", tid, message) },
	})
	fmt.Println(exit, err)
	// Output:
	// link error: unknown import `env::log` of type () -> ()
	// thread 0: thread-spawn failed: the run's limit of 2 threads is reached
	// exit code 2 (thread 0) <nil>
}

// A plugin (tests/guests/wat/plugin.wat): instantiated once, its exports called from
// several goroutines at once, host functions called from its guest threads, data passed
// through its memory.
func ExampleModule_Instantiate() {
	eng, err := wasithreads.NewEngine(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	mod, err := eng.LoadModule([]byte(pluginWat))
	if err != nil {
		log.Fatal(err)
	}
	defer mod.Close()

	imports := wasithreads.Imports{"env": {
		// Called on the guest thread that calls it, concurrently with other threads.
		"twice": wasithreads.HostFunc(func(c *wasithreads.Caller, x int32) int32 { return 2 * x }),
		// A host function that blocks returns when the instance ends.
		"block": wasithreads.HostFunc(func(c *wasithreads.Caller) error {
			<-c.Done()
			return errors.New("ending")
		}),
	}}
	inst, err := mod.Instantiate(context.Background(), &wasithreads.RunConfig{Imports: imports})
	if err != nil {
		log.Fatal(err)
	}
	defer inst.Close()

	ctx := context.Background()
	var wg sync.WaitGroup
	sums := make([]int32, 4)
	for g := range sums {
		wg.Add(1)
		go func(g int) { // calls from goroutines run in parallel, each on a guest thread
			defer wg.Done()
			res, err := inst.Call(ctx, "twice_plus", g) // twice(g) + 1, twice in the host
			if err != nil {
				log.Fatal(err)
			}
			sums[g] = res[0].(int32)
		}(g)
	}
	wg.Wait()
	fmt.Println(sums)

	if _, err := inst.WriteAt([]byte{1, 2, 3, 4}, 4096); err != nil {
		log.Fatal(err)
	}
	res, err := inst.Call(ctx, "sum", 4096, 4) // -> i64
	fmt.Println(res[0], err)

	_, err = inst.Call(ctx, "boom") // a trap ends the instance
	var end *wasithreads.InstanceEnded
	if errors.As(err, &end) {
		fmt.Println(end.Exit.Kind)
	}
	_, err = inst.Call(ctx, "add", 1, 2)
	fmt.Println(errors.Is(err, wasithreads.ErrEnded))
	// Output:
	// [1 3 5 7]
	// 10 <nil>
	// trap
	// true
}
