// Package wasithreads runs WebAssembly modules that use wasi-threads, in-process, on
// Wasmtime 48, through the wasithreads C library (include/wasithreads.h).
//
//	eng, err := wasithreads.NewEngine(nil)
//	defer eng.Close()
//	mod, err := eng.LoadModule(wasmOrWat)
//	defer mod.Close()
//	exit, err := mod.Run(ctx, &wasithreads.RunConfig{Args: []string{"prog"}, Stdout: &buf})
//	// exit.Kind: ExitCode (exit.Code from exit.Tid), ExitTrap (exit.Message), ExitTimeout, ExitCancelled
//
// A run ends at the first of: _start returns, any thread calls proc_exit, any thread
// traps, the timeout passes, the run is cancelled (by its context or Run.Cancel). Every
// other guest thread is then stopped wherever it is, and Run returns only after all of
// them have been joined. The Go process never exits because of the guest.
//
// Engines and modules are safe for concurrent use. Writers and callbacks given in a
// RunConfig are called on guest threads (OS threads the library made, calling into Go);
// see RunConfig.
package wasithreads

/*
#include <stdlib.h>
#include "wasithreads.h"
*/
import "C"

import (
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// Version is the C library's version, e.g. "0.1.0".
func Version() string { return C.GoString(C.wt_version()) }

// cString is C.CString that refuses strings with NUL bytes (C.CString would silently
// cut them there). The result must be released with C.free.
func cString(op, what, s string) (*C.char, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, misuse(op, what+" contains a NUL byte: "+quote(s))
	}
	return C.CString(s), nil
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return "\"" + strings.ReplaceAll(s, "\x00", "\\x00") + "\""
}

// zero gives C a valid pointer for empty byte slices.
var zero [1]byte

// bytesArg returns a pointer to the first byte of b (to a static byte for an empty b).
// The pointed-to memory holds no Go pointers, so passing it to C for the duration of a
// call is allowed; the library copies what it keeps.
func bytesArg(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return (*C.uint8_t)(unsafe.Pointer(&zero[0]))
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0]))
}

// OptLevel is Cranelift's optimisation level.
type OptLevel int

const (
	OptDefault      OptLevel = iota // the library's default, OptSpeed
	OptNone                         // no optimisation (level 0)
	OptSpeed                        // level 1
	OptSpeedAndSize                 // level 2
)

// EngineConfig holds engine settings; the zero value (or a nil *EngineConfig) means the
// library's defaults.
type EngineConfig struct {
	OptLevel OptLevel
	// Cache turns on Wasmtime's on-disk compilation cache (default configuration and
	// directory).
	Cache bool
	// MaxWasmStack is the largest wasm stack of one guest thread in bytes; deeper
	// recursion traps ("call stack exhausted"). 0 = 1 MiB.
	MaxWasmStack int
	// InterruptTick is how often guest threads that have not stopped yet are woken again
	// while a run is ending (0 = 1 ms; at least 50 µs).
	InterruptTick time.Duration
	// EpochInterruption stops busy guest code with Wasmtime's epoch checks instead of
	// the library's interrupt page: about five times the cost in loops and calls, but no
	// fault in generated code, for running under tools such as valgrind. The environment
	// variable WASITHREADS_EPOCH_INTERRUPTION=1 turns it on for every engine. Modules
	// serialized by an engine with the other setting are refused (ErrBadModule).
	EpochInterruption bool
	// MaxModuleBytes is the largest module LoadModule compiles, in bytes of WebAssembly
	// binary (WAT is converted first); a bigger one is refused with ErrLimit before it is
	// compiled. 0 = no limit. For hosts that load untrusted modules.
	MaxModuleBytes int64
	// MaxFunctions is the most functions (imported and defined) of a module LoadModule
	// compiles; more is refused with ErrLimit. 0 = no limit.
	MaxFunctions int64
}

// Engine is a compilation and execution environment. It is safe for concurrent use.
// Close it when done; a finalizer frees it otherwise. Modules keep what they need of
// their engine: a Module may still be run after its Engine was closed.
type Engine struct {
	mu     sync.Mutex
	ptr    *C.wt_engine_t
	refs   int // 1 while open, plus one per open Module and per call in progress
	closed bool
}

// NewEngine creates an engine; cfg may be nil for the defaults.
func NewEngine(cfg *EngineConfig) (*Engine, error) {
	const op = opNewEngine
	var c *C.wt_engine_config_t
	if cfg != nil {
		c = C.wt_engine_config_new()
		if c == nil {
			return nil, &Error{Op: op, Message: "out of memory"}
		}
		defer C.wt_engine_config_free(c)
		switch cfg.OptLevel {
		case OptDefault:
		case OptNone, OptSpeed, OptSpeedAndSize:
			C.wt_engine_config_set_opt_level(c, C.uint8_t(cfg.OptLevel-OptNone))
		default:
			return nil, misuse(op, "OptLevel must be OptDefault, OptNone, OptSpeed or OptSpeedAndSize")
		}
		if cfg.Cache {
			C.wt_engine_config_set_cache(c, true)
		}
		if cfg.MaxWasmStack < 0 {
			return nil, misuse(op, "MaxWasmStack must not be negative")
		} else if cfg.MaxWasmStack > 0 {
			C.wt_engine_config_set_max_wasm_stack(c, C.size_t(cfg.MaxWasmStack))
		}
		if cfg.InterruptTick < 0 {
			return nil, misuse(op, "InterruptTick must not be negative")
		} else if cfg.InterruptTick > 0 {
			us := (cfg.InterruptTick + time.Microsecond - 1) / time.Microsecond
			C.wt_engine_config_set_interrupt_tick_us(c, C.uint64_t(us))
		}
		if cfg.EpochInterruption {
			C.wt_engine_config_set_epoch_interruption(c, true)
		}
		if cfg.MaxModuleBytes < 0 {
			return nil, misuse(op, "MaxModuleBytes must not be negative")
		} else if cfg.MaxModuleBytes > 0 {
			C.wt_engine_config_set_max_module_bytes(c, C.uint64_t(cfg.MaxModuleBytes))
		}
		if cfg.MaxFunctions < 0 {
			return nil, misuse(op, "MaxFunctions must not be negative")
		} else if cfg.MaxFunctions > 0 {
			C.wt_engine_config_set_max_functions(c, C.uint64_t(cfg.MaxFunctions))
		}
	}
	var p *C.wt_engine_t
	if err := takeError(op, C.wt_engine_new(c, &p)); err != nil {
		return nil, err
	}
	e := &Engine{ptr: p, refs: 1}
	runtime.SetFinalizer(e, (*Engine).Close)
	return e, nil
}

// Close releases the engine. Modules loaded from it stay usable until they are closed.
// Closing twice is harmless; it always returns nil.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	runtime.SetFinalizer(e, nil)
	e.unrefLocked()
	return nil
}

// acquire takes a reference for a call or a new module; release it with release.
func (e *Engine) acquire() (*C.wt_engine_t, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	e.refs++
	return e.ptr, nil
}

func (e *Engine) release() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.unrefLocked()
}

func (e *Engine) unrefLocked() {
	e.refs--
	if e.refs == 0 {
		C.wt_engine_free(e.ptr)
		e.ptr = nil
	}
}

// LoadModule compiles a module from .wasm bytes or WAT text. It checks that every
// import is one the library provides (WASI preview 1, wasi::thread-spawn, one memory) and
// that a module importing thread-spawn imports a shared memory; the error says what is
// wrong.
func (e *Engine) LoadModule(wasm []byte) (*Module, error) {
	p, err := e.acquire()
	if err != nil {
		return nil, err
	}
	var m *C.wt_module_t
	cerr := C.wt_module_load(p, bytesArg(wasm), C.size_t(len(wasm)), &m)
	runtime.KeepAlive(wasm)
	if err := takeError(opLoad, cerr); err != nil {
		e.release()
		return nil, err
	}
	return newModule(e, m), nil
}

// LoadModuleFile is LoadModule reading the module (.wasm or .wat) from a file.
func (e *Engine) LoadModuleFile(path string) (*Module, error) {
	const op = opLoadFile
	cpath, err := cString(op, "path", path)
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(cpath))
	p, err := e.acquire()
	if err != nil {
		return nil, err
	}
	var m *C.wt_module_t
	if err := takeError(op, C.wt_module_load_file(p, cpath, &m)); err != nil {
		e.release()
		return nil, err
	}
	return newModule(e, m), nil
}

// Validate checks .wasm bytes or WAT text the way LoadModule does and returns what is
// wrong, or nil if the module would load. It compiles the module, so it costs as much as
// loading it.
func (e *Engine) Validate(wasm []byte) error {
	p, err := e.acquire()
	if err != nil {
		return err
	}
	defer e.release()
	cerr := C.wt_module_validate(p, bytesArg(wasm), C.size_t(len(wasm)))
	runtime.KeepAlive(wasm)
	return takeError(opValidate, cerr)
}

// DeserializeModule loads a module from bytes made by Module.Serialize with the same
// library version and engine settings, skipping compilation.
//
// Security: the bytes contain machine code that is checked for format and version but not
// for integrity. Only pass bytes this library produced and nobody else could change.
func (e *Engine) DeserializeModule(data []byte) (*Module, error) {
	p, err := e.acquire()
	if err != nil {
		return nil, err
	}
	var m *C.wt_module_t
	cerr := C.wt_module_deserialize(p, bytesArg(data), C.size_t(len(data)), &m)
	runtime.KeepAlive(data)
	if err := takeError(opDeserialize, cerr); err != nil {
		e.release()
		return nil, err
	}
	return newModule(e, m), nil
}

// Module is a compiled module. It is safe for concurrent use: many goroutines may run
// it at once. Close it when done; a finalizer frees it otherwise. Close does not wait
// for runs in progress, which keep what they need.
type Module struct {
	mu     sync.Mutex
	ptr    *C.wt_module_t
	refs   int // 1 while open, plus one per call in progress
	closed bool
	engine *Engine // holds one engine reference until ptr is freed
}

func newModule(e *Engine, p *C.wt_module_t) *Module {
	m := &Module{ptr: p, refs: 1, engine: e}
	runtime.SetFinalizer(m, (*Module).Close)
	return m
}

// Close releases the module. Closing twice is harmless; it always returns nil.
func (m *Module) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	runtime.SetFinalizer(m, nil)
	m.unrefLocked()
	return nil
}

// acquire takes a reference for a call; release it with release. While it is held the
// module and engine pointers stay valid.
func (m *Module) acquire() (*C.wt_module_t, *C.wt_engine_t, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, nil, ErrClosed
	}
	m.refs++
	return m.ptr, m.engine.ptr, nil
}

func (m *Module) release() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unrefLocked()
}

func (m *Module) unrefLocked() {
	m.refs--
	if m.refs == 0 {
		C.wt_module_free(m.ptr)
		m.ptr = nil
		m.engine.release()
	}
}

// Serialize returns the compiled module, machine code included, for
// Engine.DeserializeModule (e.g. a cache on disk).
func (m *Module) Serialize() ([]byte, error) {
	p, _, err := m.acquire()
	if err != nil {
		return nil, err
	}
	defer m.release()
	var b C.wt_bytes_t
	if err := takeError(opSerialize, C.wt_module_serialize(p, &b)); err != nil {
		return nil, err
	}
	defer C.wt_bytes_free(&b)
	out := make([]byte, int(b.len))
	copy(out, unsafe.Slice((*byte)(unsafe.Pointer(b.data)), int(b.len)))
	return out, nil
}
