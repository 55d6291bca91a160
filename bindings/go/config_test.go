package wasithreads_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"wasithreads"
)

// diagnostics collects OnDiagnostic calls as "tid: message".
type diagnostics struct {
	mu   sync.Mutex
	msgs []string
}

func (d *diagnostics) record(tid int32, message string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.msgs = append(d.msgs, fmt.Sprintf("%d: %s", tid, message))
}

func (d *diagnostics) all() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.msgs...)
}

func TestDiagnosticAtThreadLimit(t *testing.T) {
	var diags diagnostics
	exit := run(t, spawner, &wasithreads.RunConfig{MaxThreads: 2, OnDiagnostic: diags.record})
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitCode, Code: 2})
	want := "0: thread-spawn failed: the run's limit of 2 threads is reached"
	if got := diags.all(); len(got) != 1 || got[0] != want {
		t.Fatalf("diagnostics %q, want [%q]", got, want)
	}
	// None when nothing goes wrong.
	diags = diagnostics{}
	run(t, printers, &wasithreads.RunConfig{Args: []string{"p"}, Stdout: &bytes.Buffer{}, OnDiagnostic: diags.record})
	if got := diags.all(); len(got) != 0 {
		t.Fatalf("diagnostics of a run without trouble: %q", got)
	}
	// A panic in it is reported like any callback's.
	_, err := load(t, spawner).Run(context.Background(), &wasithreads.RunConfig{
		MaxThreads: 1, OnDiagnostic: func(int32, string) { panic("diag") },
	})
	var cbErr *wasithreads.CallbackError
	if !errors.As(err, &cbErr) || cbErr.Callback != "OnDiagnostic" || cbErr.Panic != "diag" || cbErr.Tid != 0 {
		t.Fatalf("panicking OnDiagnostic: %v", err)
	}
}

func TestMaxFds(t *testing.T) {
	dir := t.TempDir()
	// 3 stdio + 1 preopen + 2 files = 6; the third open fails with errno mfile (33).
	exit := run(t, opener, &wasithreads.RunConfig{Dirs: map[string]string{dir: "/"}, MaxFds: 6})
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitCode, Code: 2*100 + 33})
	exit = run(t, opener, &wasithreads.RunConfig{Dirs: map[string]string{dir: "/"}})
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitCode, Code: 50 * 100})
	err := runErr(t, opener, &wasithreads.RunConfig{Dirs: map[string]string{dir: "/"}, MaxFds: 3})
	expectKind(t, "MaxFds without room for the preopen", err, wasithreads.ErrLimit, "descriptor limit (3)")
}

func TestListeners(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan string, 1)
	go func() {
		c, err := net.DialTimeout("tcp", l.Addr().String(), time.Minute)
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(time.Minute))
		b, err := io.ReadAll(c)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(b)
	}()
	exit := run(t, socketHi, &wasithreads.RunConfig{Listeners: []syscall.Conn{l.(*net.TCPListener)}})
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitCode, Code: 0})
	if s := <-got; s != "hi" {
		t.Fatalf("the client got %q", s)
	}
	// The listener is still the caller's, open and listening.
	c, err := net.DialTimeout("tcp", l.Addr().String(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	exit = run(t, fd3Filetype, &wasithreads.RunConfig{ListenAddrs: []string{"127.0.0.1:0"}})
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitCode, Code: 6})
	err = runErr(t, fd3Filetype, &wasithreads.RunConfig{ListenAddrs: []string{"localhost:80"}})
	expectKind(t, "a host name", err, wasithreads.ErrMisuse, "not an IP address and port")
}

func TestMaxTableElements(t *testing.T) {
	exit := run(t, tabler, &wasithreads.RunConfig{MaxTableElements: 5000})
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitCode, Code: 5})
	exit = run(t, tabler, nil)
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitCode, Code: 100})
	// A main thread whose initial table does not fit does not start.
	exit = run(t, bigTable, &wasithreads.RunConfig{MaxTableElements: 50})
	if exit.Kind != wasithreads.ExitTrap || exit.Tid != 0 {
		t.Fatalf("table above the limit: %+v", exit)
	}
	expectExit(t, run(t, bigTable, &wasithreads.RunConfig{MaxTableElements: 100}), wasithreads.Exit{Kind: wasithreads.ExitCode})
}

func TestInstanceLimits(t *testing.T) {
	// tabler defines a memory of its own.
	err := runErr(t, tabler, &wasithreads.RunConfig{MaxInstanceBytes: 1})
	expectKind(t, "MaxInstanceBytes below one instance", err, wasithreads.ErrLimit, "instance memory limit")
	expectExit(t, run(t, tabler, &wasithreads.RunConfig{MaxMemories: 1, MaxInstanceBytes: 1 << 20}),
		wasithreads.Exit{Kind: wasithreads.ExitCode, Code: 100})
}

func TestWriteLimits(t *testing.T) {
	dir := t.TempDir()
	dirs := map[string]string{dir: "/"}
	// The guest creates "f" (1 of 1 file) and writes 5 bytes: 3 fit (a short write).
	expectExit(t, run(t, createAndWrite, &wasithreads.RunConfig{Dirs: dirs, MaxWriteBytes: 3, MaxFilesCreated: 1}),
		wasithreads.Exit{Kind: wasithreads.ExitCode})
	if b, err := os.ReadFile(filepath.Join(dir, "f")); err != nil || string(b) != "hel" {
		t.Fatalf("the file holds %q (%v), not the 3 bytes of the cap", b, err)
	}
	err := runErr(t, createAndWrite, &wasithreads.RunConfig{Dirs: dirs, MaxFilesCreated: -1})
	expectKind(t, "negative MaxFilesCreated", err, wasithreads.ErrMisuse, "MaxFilesCreated")
}

func TestCoreDump(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "core.wasm")
	exit := run(t, faulter("unreachable", true), &wasithreads.RunConfig{CoreDumpPath: path, Timeout: safety})
	if exit.Kind != wasithreads.ExitTrap || exit.Tid != 1 {
		t.Fatalf("exit %+v", exit)
	}
	dump, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(dump, []byte("\x00asm")) || !bytes.Contains(dump, []byte("corestack")) {
		if len(dump) > 16 {
			dump = dump[:16]
		}
		t.Fatalf("core dump starting %q: no wasm header or no corestack section", dump)
	}
	// Only a trap writes one.
	other := filepath.Join(dir, "none.wasm")
	expectExit(t, run(t, returner, &wasithreads.RunConfig{CoreDumpPath: other}), wasithreads.Exit{Kind: wasithreads.ExitCode})
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Fatalf("a run that did not trap wrote a core dump: %v", err)
	}
	err = runErr(t, returner, &wasithreads.RunConfig{CoreDumpPath: filepath.Join(dir, "no-dir", "core.wasm")})
	expectKind(t, "core dump in a missing directory", err, wasithreads.ErrIO, "no-dir")
	err = runErr(t, returner, &wasithreads.RunConfig{CoreDumpPath: "/"})
	expectKind(t, "core dump path of no file", err, wasithreads.ErrMisuse, "names no file")
}

func TestTeardownGrace(t *testing.T) {
	// The guest's first write blocks in a Go writer that cancels the run; the writer's
	// thread cannot be stopped there, so the run returns after the grace without it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	release := make(chan struct{})
	var blocked atomic.Bool
	stuck := wasithreads.OutputFunc(func(int32, []byte) {
		blocked.Store(true)
		cancel()
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		blocked.Store(false)
	})
	var diags diagnostics
	var lateExits atomic.Int32
	cfg := &wasithreads.RunConfig{
		Stdout: stuck, TeardownGrace: 100 * time.Millisecond, OnDiagnostic: diags.record,
		OnThreadExit: func(int32, wasithreads.ThreadExit) { lateExits.Add(1) },
	}
	began := time.Now()
	exit, err := load(t, argsEnv).Run(ctx, cfg)
	took := time.Since(began)
	if err != nil {
		t.Fatal(err)
	}
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitCancelled, Tid: -1})
	if !blocked.Load() || took > 5*time.Second {
		t.Fatalf("Run returned after %v, writer still blocked: %v", took, blocked.Load())
	}
	want := "0: thread(s) 0 had not stopped 100 ms after the run ended"
	if got := diags.all(); len(got) != 1 || !strings.HasPrefix(got[0], want) {
		t.Fatalf("diagnostics %q, want one starting %q", got, want)
	}
	// The writer returns; its thread then stops and its exit callback comes after the
	// run returned: it is dropped, not delivered to a finished run (or crashing).
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for blocked.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if n := lateExits.Load(); n != 0 {
		t.Fatalf("%d thread-exit callbacks after the run returned", n)
	}
	// The same config without the stuck writer: the exit callback comes, so the test
	// above could have seen one.
	cfg.Stdout = &bytes.Buffer{}
	expectExit(t, run(t, argsEnv, cfg), wasithreads.Exit{Kind: wasithreads.ExitCode})
	if n := lateExits.Load(); n != 1 {
		t.Fatalf("%d thread-exit callbacks in a normal run, want 1", n)
	}
}

// withStdin runs f with the process's descriptor 0 reading data.
func withStdin(t *testing.T, data string, f func()) {
	saved, err := syscall.Dup(0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := syscall.Dup3(saved, 0, 0); err != nil {
			t.Fatal(err)
		}
		syscall.Close(saved)
	}()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	if _, err := pw.WriteString(data); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := syscall.Dup3(int(pr.Fd()), 0, 0); err != nil {
		t.Fatal(err)
	}
	f()
}

func TestStdinVariants(t *testing.T) {
	echoed := func(cfg *wasithreads.RunConfig) string {
		var out bytes.Buffer
		cfg.Stdout = &out
		expectExit(t, run(t, echo, cfg), wasithreads.Exit{Kind: wasithreads.ExitCode})
		return out.String()
	}
	withStdin(t, "from the host's stdin", func() {
		if got := echoed(&wasithreads.RunConfig{Stdin: wasithreads.EmptyStdin}); got != "" {
			t.Fatalf("EmptyStdin: the guest read %q", got)
		}
		if got := echoed(&wasithreads.RunConfig{}); got != "from the host's stdin" {
			t.Fatalf("inherited stdin: the guest read %q", got)
		}
	})
	file := filepath.Join(t.TempDir(), "in")
	if err := os.WriteFile(file, []byte("file contents"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Each run opens the file anew: the second reads it from the start too.
	cfg := &wasithreads.RunConfig{StdinFile: file}
	for i := 0; i < 2; i++ {
		if got := echoed(cfg); got != "file contents" {
			t.Fatalf("StdinFile, run %d: the guest read %q", i, got)
		}
	}
	err := runErr(t, echo, &wasithreads.RunConfig{StdinFile: file + ".missing"})
	expectKind(t, "missing StdinFile", err, wasithreads.ErrIO, "in.missing")
	err = runErr(t, echo, &wasithreads.RunConfig{StdinFile: file, Stdin: wasithreads.EmptyStdin})
	expectKind(t, "Stdin and StdinFile", err, wasithreads.ErrMisuse, "not both")
}

func TestEpochInterruption(t *testing.T) {
	eng, mod := loadWith(t, &wasithreads.EngineConfig{EpochInterruption: true}, blocked)
	// Busy threads are stopped by epoch checks.
	exit, err := mod.Run(context.Background(), &wasithreads.RunConfig{Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	expectExit(t, exit, wasithreads.Exit{Kind: wasithreads.ExitTimeout, Tid: -1})
	// The setting reaches the compiled code: a module compiled without it is refused.
	data, err := load(t, blocked).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	_, err = eng.DeserializeModule(data)
	expectKind(t, "deserialized with other settings", err, wasithreads.ErrBadModule, "engine settings")
	data, err = mod.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	again, err := eng.DeserializeModule(data)
	if err != nil {
		t.Fatalf("deserialized with the same settings: %v", err)
	}
	again.Close()
}
