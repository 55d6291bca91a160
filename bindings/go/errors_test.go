package wasithreads_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"wasithreads"
)

var errorKinds = []error{
	wasithreads.ErrBadModule, wasithreads.ErrLink, wasithreads.ErrLimit, wasithreads.ErrMisuse, wasithreads.ErrIO,
	wasithreads.ErrEnded,
}

// instanceCallErr is the error of calling export name of a fresh instance of wat.
func instanceCallErr(t *testing.T, wat, name string, args ...interface{}) error {
	t.Helper()
	inst, err := load(t, wat).Instantiate(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	_, err = inst.Call(context.Background(), name, args...)
	return err
}

// trapper is a reactor whose boom() traps.
const trapper = `(module (memory (export "memory") 1) (func (export "boom") unreachable))`

// expectKind checks that err is an error of kind want (and of no other kind) whose text
// contains phrase; want nil means no kind.
// loadWithErr is the error of loading wat with an engine made from cfg.
func loadWithErr(cfg *wasithreads.EngineConfig, wat string) error {
	eng, err := wasithreads.NewEngine(cfg)
	if err != nil {
		return err
	}
	defer eng.Close()
	_, err = eng.LoadModule([]byte(wat))
	return err
}

func expectKind(t *testing.T, what string, err error, want error, phrase string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %v", what, want)
	}
	for _, k := range errorKinds {
		if got := errors.Is(err, k); got != (k == want) {
			t.Errorf("%s: errors.Is(%q, %v) = %v", what, err, k, got)
		}
	}
	if !strings.Contains(err.Error(), phrase) {
		t.Errorf("%s: %q does not say %q", what, err, phrase)
	}
}

// runErr runs wat with cfg and returns the error of a run that could not start.
func runErr(t *testing.T, wat string, cfg *wasithreads.RunConfig) error {
	t.Helper()
	exit, err := load(t, wat).Run(context.Background(), cfg)
	if exit != nil {
		t.Fatalf("the run started and ended: %v", exit)
	}
	return err
}

// TestErrorKinds provokes each kind of error for real, through the library where it
// reports it: the kind is the library's (wt_error_kind), whatever its message says.
func TestErrorKinds(t *testing.T) {
	eng := testEngine(t)
	loadErr := func(wat string) error {
		_, err := eng.LoadModule([]byte(wat))
		return err
	}
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.wasm")
	if err := os.WriteFile(junk, []byte("\x00asm junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	noStart, err := eng.LoadModule([]byte(`(module (memory (export "memory") 1))`))
	if err != nil {
		t.Fatal(err)
	}
	defer noStart.Close()
	closed, err := wasithreads.NewEngine(nil)
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()

	for _, tc := range []struct {
		what   string
		err    error
		kind   error
		phrase string
	}{
		{"not wasm", loadErr("\xde\xad\xbe\xef"), wasithreads.ErrBadModule, "not a WebAssembly module"},
		{"empty", loadErr(""), wasithreads.ErrBadModule, "empty"},
		{"invalid", loadErr("\x00asm\x01\x00"), wasithreads.ErrBadModule, "invalid WebAssembly"},
		{"bad WAT", eng.Validate([]byte(`(module (func`)), wasithreads.ErrBadModule, "expected"},
		{"file of junk", func() error { _, err := eng.LoadModuleFile(junk); return err }(), wasithreads.ErrBadModule, junk},
		{"not serialized", func() error { _, err := eng.DeserializeModule([]byte("junk")); return err }(),
			wasithreads.ErrBadModule, "not a module serialized"},
		{"unknown import", runErr(t, `(module (import "env" "log" (func)) (func (export "_start")))`, nil),
			wasithreads.ErrLink, "unknown import `env::log`"},
		{"thread-spawn without shared memory", eng.Validate([]byte(`(module
		  (import "wasi" "thread-spawn" (func (param i32) (result i32)))
		  (import "env" "memory" (memory 1 1)) (func (export "_start")))`)), wasithreads.ErrLink, "shared memory"},
		{"no _start", func() error { _, err := noStart.Run(context.Background(), nil); return err }(),
			wasithreads.ErrLink, "_start"},
		{"memory limit below the minimum", runErr(t, grower, &wasithreads.RunConfig{MaxMemory: 1}),
			wasithreads.ErrLimit, "memory limit"},
		{"opt level", func() error { _, err := wasithreads.NewEngine(&wasithreads.EngineConfig{OptLevel: 9}); return err }(),
			wasithreads.ErrMisuse, "OptLevel"},
		{"max wasm stack", func() error {
			_, err := wasithreads.NewEngine(&wasithreads.EngineConfig{MaxWasmStack: 1 << 30})
			return err
		}(), wasithreads.ErrMisuse, "max wasm stack"},
		{"module over MaxModuleBytes", loadWithErr(&wasithreads.EngineConfig{MaxModuleBytes: 8}, returner),
			wasithreads.ErrLimit, "more than the 8 bytes"},
		{"module over MaxFunctions", loadWithErr(&wasithreads.EngineConfig{MaxFunctions: 1, MaxModuleBytes: 1 << 20}, recurse),
			wasithreads.ErrLimit, "functions, more than the 1"},
		{"negative MaxFunctions", func() error {
			_, err := wasithreads.NewEngine(&wasithreads.EngineConfig{MaxFunctions: -1})
			return err
		}(), wasithreads.ErrMisuse, "MaxFunctions"},
		{"NUL in an argument", runErr(t, returner, &wasithreads.RunConfig{Args: []string{"a\x00b"}}),
			wasithreads.ErrMisuse, "NUL"},
		{"= in an environment key", runErr(t, returner, &wasithreads.RunConfig{Env: map[string]string{"A=B": "c"}}),
			wasithreads.ErrMisuse, "environment key"},
		{"negative limit", runErr(t, returner, &wasithreads.RunConfig{MaxThreads: -1}), wasithreads.ErrMisuse, "MaxThreads"},
		{"closed engine", func() error { _, err := closed.LoadModule([]byte(returner)); return err }(),
			wasithreads.ErrMisuse, "closed"},
		{"missing module file", func() error { _, err := eng.LoadModuleFile(filepath.Join(dir, "none.wasm")); return err }(),
			wasithreads.ErrIO, "none.wasm"},
		{"missing preopen", runErr(t, returner, &wasithreads.RunConfig{Dirs: map[string]string{filepath.Join(dir, "none"): "/"}}),
			wasithreads.ErrIO, "none"},
		{"a call that ends the instance", instanceCallErr(t, trapper, "boom"), wasithreads.ErrEnded, "instance ended"},
		{"a call with a wrong argument count", instanceCallErr(t, trapper, "boom", 1), wasithreads.ErrMisuse, "takes 0 arguments"},
	} {
		expectKind(t, tc.what, tc.err, tc.kind, tc.phrase)
		t.Logf("%s: %v", tc.what, tc.err)
	}
	if !errors.Is(wasithreads.ErrClosed, wasithreads.ErrMisuse) {
		t.Error("ErrClosed is not ErrMisuse")
	}
}

// TestIOErrorsWrapTheOSError: an ErrIO error wraps the library's OS error
// (wt_error_os_errno), so the standard library's tests of it work.
func TestIOErrorsWrapTheOSError(t *testing.T) {
	eng := testEngine(t)
	dir := t.TempDir()
	_, err := eng.LoadModuleFile(filepath.Join(dir, "none.wasm"))
	var e *wasithreads.Error
	if !errors.As(err, &e) || e.Errno != syscall.ENOENT {
		t.Fatalf("missing module file: %#v, want Errno ENOENT", err)
	}
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, wasithreads.ErrIO) || !errors.Is(err, syscall.ENOENT) {
		t.Errorf("missing module file: %v is not fs.ErrNotExist, ErrIO and ENOENT", err)
	}
	err = runErr(t, returner, &wasithreads.RunConfig{Dirs: map[string]string{filepath.Join(dir, "none"): "/"}})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing preopen: %v is not fs.ErrNotExist", err)
	}
	// Errors of other kinds carry no OS error.
	err = runErr(t, `(module (import "env" "log" (func)) (func (export "_start")))`, nil)
	if !errors.As(err, &e) || e.Errno != 0 || errors.Unwrap(err) != nil {
		t.Errorf("link error: %#v, want no Errno", err)
	}
}
