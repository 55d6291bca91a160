package wasithreads

// Host functions: the Go side of wt_run_config_define_func. Each definition made for a
// C config gets an id in the hostFuncs registry; the C trampoline (callbacks.c) passes it
// as env to wtgoHostCall, and the library's finalizer for it (wtgoHostFinalize) removes
// the entry once the config and every run and instance that held it were released, so a
// call always finds its entry.

/*
#include <stdint.h>
#include <stdlib.h>
#include "wasithreads.h"

// callbacks.c: defines module::name with the Go trampoline, env = the registry id.
wt_error_t *wtgo_define_func(wt_run_config_t *config, const char *module, const char *name,
                             const wt_valkind_t *params, size_t nparams,
                             const wt_valkind_t *results, size_t nresults, uintptr_t id);
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// ValKind is the type of a WebAssembly value.
type ValKind int

// The value types of host function signatures and export calls.
const (
	I32 ValKind = C.WT_I32
	I64 ValKind = C.WT_I64
	F32 ValKind = C.WT_F32
	F64 ValKind = C.WT_F64
)

func (k ValKind) String() string {
	switch k {
	case I32:
		return "i32"
	case I64:
		return "i64"
	case F32:
		return "f32"
	case F64:
		return "f64"
	}
	return fmt.Sprintf("ValKind(%d)", int(k))
}

// Val is a WebAssembly value: a kind and its number. The zero Val is i32 0.
type Val struct {
	kind ValKind
	bits uint64 // i32/i64 as two's complement, f32/f64 as IEEE 754 bits
}

// ValI32 makes an i32 value.
func ValI32(x int32) Val { return Val{I32, uint64(uint32(x))} }

// ValI64 makes an i64 value.
func ValI64(x int64) Val { return Val{I64, uint64(x)} }

// ValF32 makes an f32 value.
func ValF32(x float32) Val { return Val{F32, uint64(math.Float32bits(x))} }

// ValF64 makes an f64 value.
func ValF64(x float64) Val { return Val{F64, math.Float64bits(x)} }

// Kind is the value's type.
func (v Val) Kind() ValKind { return v.kind }

// I32 is the value of an i32; it panics for another kind.
func (v Val) I32() int32 { v.want(I32); return int32(uint32(v.bits)) }

// I64 is the value of an i64; it panics for another kind.
func (v Val) I64() int64 { v.want(I64); return int64(v.bits) }

// F32 is the value of an f32; it panics for another kind.
func (v Val) F32() float32 { v.want(F32); return math.Float32frombits(uint32(v.bits)) }

// F64 is the value of an f64; it panics for another kind.
func (v Val) F64() float64 { v.want(F64); return math.Float64frombits(v.bits) }

func (v Val) want(k ValKind) {
	if v.kind != k {
		panic(fmt.Sprintf("wasithreads: Val is %v, not %v", v.kind, k))
	}
}

// Get is the value as an int32, int64, float32 or float64, as its kind says.
func (v Val) Get() interface{} {
	switch v.kind {
	case I64:
		return v.I64()
	case F32:
		return v.F32()
	case F64:
		return v.F64()
	}
	return int32(uint32(v.bits))
}

func (v Val) String() string { return fmt.Sprintf("%v:%v", v.kind, v.Get()) }

// toC writes v into a C value.
func (v Val) toC(c *C.wt_val_t) {
	c.kind = C.wt_valkind_t(v.kind)
	p := unsafe.Pointer(&c.of)
	switch v.kind {
	case I32, F32:
		*(*uint32)(p) = uint32(v.bits)
	default:
		*(*uint64)(p) = v.bits
	}
}

// valFromC reads a C value.
func valFromC(c *C.wt_val_t) Val {
	k := ValKind(c.kind)
	p := unsafe.Pointer(&c.of)
	if k == I32 || k == F32 {
		return Val{k, uint64(*(*uint32)(p))}
	}
	return Val{k, *(*uint64)(p)}
}

// Func is a host function for Imports, made by HostFunc (from a Go func, by reflection)
// or NewHostFunc (an explicit signature). It may be used in any number of Imports,
// runs and instances at once.
type Func struct {
	params, results []ValKind
	call            func(*Caller, []Val) ([]Val, error)
	err             string // why the Func cannot be used; reported by Run / Instantiate
}

// Params is the function's parameter types.
func (f *Func) Params() []ValKind { return append([]ValKind(nil), f.params...) }

// Results is the function's result types.
func (f *Func) Results() []ValKind { return append([]ValKind(nil), f.results...) }

// NewHostFunc makes a host function of the given signature: fn gets the arguments (of
// the parameter types) and returns the results (len(results) values of the result
// types), or an error, which traps the calling guest thread. It costs less per call
// than a HostFunc, which converts through reflection, and suits functions whose
// signature is known only at run time.
func NewHostFunc(params, results []ValKind, fn func(c *Caller, args []Val) ([]Val, error)) *Func {
	f := &Func{params: append([]ValKind(nil), params...), results: append([]ValKind(nil), results...), call: fn}
	if fn == nil {
		f.err = "NewHostFunc with a nil func"
	}
	for _, k := range append(f.params[:len(f.params):len(f.params)], f.results...) {
		if k < I32 || k > F64 {
			f.err = fmt.Sprintf("NewHostFunc with an unknown kind %v", k)
		}
	}
	return f
}

var (
	callerType = reflect.TypeOf((*Caller)(nil))
	errorType  = reflect.TypeOf((*error)(nil)).Elem()
)

// kindOf is the WebAssembly type a Go type stands for: int32 and uint32 -> i32, int64
// and uint64 -> i64, float32 -> f32, float64 -> f64 (named types with those underlying
// types too).
func kindOf(t reflect.Type) (ValKind, bool) {
	switch t.Kind() {
	case reflect.Int32, reflect.Uint32:
		return I32, true
	case reflect.Int64, reflect.Uint64:
		return I64, true
	case reflect.Float32:
		return F32, true
	case reflect.Float64:
		return F64, true
	}
	return 0, false
}

// HostFunc makes a host function from a Go func, reading its signature by reflection:
// an optional first parameter *Caller, then parameters of type int32 or uint32 (i32),
// int64 or uint64 (i64), float32 (f32), float64 (f64); results of those types (none, one
// or more), optionally followed by a final error.
//
//	wasithreads.HostFunc(func(c *wasithreads.Caller, ptr, n int32) { ... })
//	wasithreads.HostFunc(func(a, b int64) (int64, error) { ... })
//
// A non-nil error, or a panic, traps the calling guest thread, which ends the run or
// instance (see Imports). A fn that is not such a func makes a Func that Run, Start and
// Instantiate refuse (ErrMisuse, naming the import and the offending type).
func HostFunc(fn interface{}) *Func {
	v := reflect.ValueOf(fn)
	if v.Kind() != reflect.Func || v.IsNil() {
		return &Func{err: fmt.Sprintf("HostFunc needs a func, got %T", fn)}
	}
	if f := hostFuncFast(fn); f != nil {
		return f
	}
	t := v.Type()
	if t.IsVariadic() {
		return &Func{err: fmt.Sprintf("HostFunc needs a func that is not variadic, got %v", t)}
	}
	f := &Func{}
	first := 0
	if t.NumIn() > 0 && t.In(0) == callerType {
		first = 1
	}
	for i := first; i < t.NumIn(); i++ {
		k, ok := kindOf(t.In(i))
		if !ok {
			return &Func{err: fmt.Sprintf("HostFunc: parameter %d of %v is %v; want *Caller first, then int32, uint32, int64, uint64, float32 or float64", i+1, t, t.In(i))}
		}
		f.params = append(f.params, k)
	}
	nout := t.NumOut()
	withErr := nout > 0 && t.Out(nout-1) == errorType
	if withErr {
		nout--
	}
	outTypes := make([]reflect.Type, nout)
	for i := 0; i < nout; i++ {
		k, ok := kindOf(t.Out(i))
		if !ok {
			return &Func{err: fmt.Sprintf("HostFunc: result %d of %v is %v; want int32, uint32, int64, uint64, float32 or float64, and optionally a final error", i+1, t, t.Out(i))}
		}
		f.results = append(f.results, k)
		outTypes[i] = t.Out(i)
	}
	inTypes := make([]reflect.Type, t.NumIn())
	for i := range inTypes {
		inTypes[i] = t.In(i)
	}
	f.call = func(c *Caller, args []Val) ([]Val, error) {
		in := make([]reflect.Value, len(inTypes))
		if first == 1 {
			in[0] = reflect.ValueOf(c)
		}
		for i, a := range args {
			in[first+i] = fromVal(a, inTypes[first+i])
		}
		out := v.Call(in)
		if withErr {
			if e := out[nout]; !e.IsNil() {
				return nil, e.Interface().(error)
			}
		}
		res := make([]Val, nout)
		for i := range res {
			res[i] = toVal(out[i])
		}
		return res, nil
	}
	return f
}

// hostFuncFast is HostFunc without reflection for common signatures (a reflective call
// costs about as much again as the rest of a host call); nil for the others.
func hostFuncFast(fn interface{}) *Func {
	i32, i64 := []ValKind{I32}, []ValKind{I64}
	i32x2, i64x2 := []ValKind{I32, I32}, []ValKind{I64, I64}
	switch fn := fn.(type) {
	case func():
		return &Func{call: func(*Caller, []Val) ([]Val, error) { fn(); return nil, nil }}
	case func(*Caller):
		return &Func{call: func(c *Caller, _ []Val) ([]Val, error) { fn(c); return nil, nil }}
	case func(*Caller) error:
		return &Func{call: func(c *Caller, _ []Val) ([]Val, error) { return nil, fn(c) }}
	case func(int32):
		return &Func{params: i32, call: func(_ *Caller, a []Val) ([]Val, error) { fn(a[0].I32()); return nil, nil }}
	case func(int32, int32):
		return &Func{params: i32x2, call: func(_ *Caller, a []Val) ([]Val, error) {
			fn(a[0].I32(), a[1].I32())
			return nil, nil
		}}
	case func(*Caller, int32, int32):
		return &Func{params: i32x2, call: func(c *Caller, a []Val) ([]Val, error) {
			fn(c, a[0].I32(), a[1].I32())
			return nil, nil
		}}
	case func(int32) int32:
		return &Func{params: i32, results: i32, call: func(_ *Caller, a []Val) ([]Val, error) {
			return []Val{ValI32(fn(a[0].I32()))}, nil
		}}
	case func(*Caller, int32) int32:
		return &Func{params: i32, results: i32, call: func(c *Caller, a []Val) ([]Val, error) {
			return []Val{ValI32(fn(c, a[0].I32()))}, nil
		}}
	case func(int32, int32) int32:
		return &Func{params: i32x2, results: i32, call: func(_ *Caller, a []Val) ([]Val, error) {
			return []Val{ValI32(fn(a[0].I32(), a[1].I32()))}, nil
		}}
	case func(int64, int64) int64:
		return &Func{params: i64x2, results: i64, call: func(_ *Caller, a []Val) ([]Val, error) {
			return []Val{ValI64(fn(a[0].I64(), a[1].I64()))}, nil
		}}
	}
	return nil
}

// fromVal converts a value to the Go type t of a HostFunc parameter.
func fromVal(a Val, t reflect.Type) reflect.Value {
	r := reflect.New(t).Elem()
	switch t.Kind() {
	case reflect.Int32, reflect.Int64:
		if a.kind == I32 {
			r.SetInt(int64(int32(uint32(a.bits))))
		} else {
			r.SetInt(int64(a.bits))
		}
	case reflect.Uint32, reflect.Uint64:
		r.SetUint(a.bits)
	case reflect.Float32:
		r.SetFloat(float64(math.Float32frombits(uint32(a.bits))))
	case reflect.Float64:
		r.SetFloat(math.Float64frombits(a.bits))
	}
	return r
}

// toVal converts a HostFunc result.
func toVal(r reflect.Value) Val {
	switch r.Kind() {
	case reflect.Int32:
		return ValI32(int32(r.Int()))
	case reflect.Uint32:
		return ValI32(int32(uint32(r.Uint())))
	case reflect.Int64:
		return ValI64(r.Int())
	case reflect.Uint64:
		return ValI64(int64(r.Uint()))
	case reflect.Float32:
		return ValF32(float32(r.Float()))
	}
	return ValF64(r.Float())
}

// Imports are the host functions a module imports: module name -> function name ->
// function, as RunConfig.Imports.
//
//	wasithreads.Imports{"env": {"log": wasithreads.HostFunc(func(c *wasithreads.Caller, ptr, n int32) {
//		fmt.Println(c.Tid(), string(c.Memory()[ptr:ptr+n]))
//	})}}
//
// Every import of a module other than WASI and wasi::thread-spawn must be defined here,
// with the type the module imports, or the run or instance does not start (ErrLink,
// naming the import and its type); functions the module does not import are ignored.
//
// A host function is linked into every instance of the run or instance: the main
// thread's, each thread the guest spawns, each guest thread serving Instance.Call. It is
// called on the guest thread that called it — an OS thread of the library calling into
// Go — concurrently with calls from other threads, so it must be safe for concurrent
// use. The guest thread waits while it runs.
//
// An error returned by a host function, or a panic in it (recovered on the guest
// thread, never reaching C), traps the calling guest thread with the message "host
// function `module::name` failed: <error>" (for a panic: "panic: <value>"), which ends
// the run or instance. The first such failure is kept, with the panic's stack, and
// returned as a *CallbackError: by Run and Run.Wait beside the *Exit, by Instance.Close,
// and reachable with errors.As from the *InstanceEnded of calls. An error returned while
// the run or instance is already ending (Caller.IsEnding) is not a failure: the thread
// is being stopped anyway, and that error is dropped.
//
// A host function that blocks (a queue, the network) must stay stoppable: wait on
// Caller.EndFd beside its own descriptors, or check Caller.IsEnding often, and return
// once the run or instance is ending. Its end waits for a host function only up to the
// TeardownGrace.
type Imports map[string]map[string]*Func

// Caller is the guest thread that called a host function. It is valid only during that
// call: afterwards its methods return -1, nil or false (Done's channel stays valid).
type Caller struct {
	ptr   *C.wt_caller_t
	state *runState
}

// Tid is the calling guest thread's id: 0 for the main thread, > 0 for threads the guest
// spawned and for the guest threads that serve Instance.Call.
func (c *Caller) Tid() int32 {
	if c.ptr == nil {
		return -1
	}
	return int32(C.wt_caller_tid(c.ptr))
}

// Memory is the guest's memory at its current size (nil without a memory). For a
// shared memory — every threaded module's — other guest threads use it concurrently,
// and its base never moves while the run or instance lives, so the slice stays valid
// that long; the guest may grow the memory meanwhile (call Memory again to see the new
// size). A module's unshared memory is valid only during the call.
func (c *Caller) Memory() []byte {
	if c.ptr == nil {
		return nil
	}
	data, size := C.wt_caller_memory_data(c.ptr), C.wt_caller_memory_size(c.ptr)
	if data == nil || size == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(data)), int(size))
}

// IsEnding reports whether the run or instance is ending: return soon (any error will
// do; it is not reported as a failure).
func (c *Caller) IsEnding() bool {
	return c.ptr != nil && bool(C.wt_caller_is_ending(c.ptr))
}

// EndFd is a descriptor that becomes readable (POLLIN) when the run or instance ends,
// for a host function that blocks in poll/epoll/select on descriptors of its own. The
// library owns it: do not read, write or close it (nor wrap it in an *os.File, whose
// finalizer would close it). -1 if the OS refused one, or after the call.
func (c *Caller) EndFd() int {
	if c.ptr == nil {
		return -1
	}
	return int(C.wt_caller_end_fd(c.ptr))
}

// Done returns a channel that is closed when the run or instance ends, for a host
// function that blocks on channels of its own:
//
//	select {
//	case job := <-queue:
//		...
//	case <-c.Done():
//		return errors.New("ending") // not reported as a failure
//	}
//
// The first call of a run or instance starts a goroutine that waits (in poll, on its
// own OS thread) on a duplicate of EndFd until the end; later calls share its channel,
// which stays valid after the call. nil (a channel never ready) if the OS refused the
// descriptor, and after the call.
func (c *Caller) Done() <-chan struct{} {
	if c.ptr == nil || c.state == nil {
		return nil
	}
	return c.state.endChannel(int(C.wt_caller_end_fd(c.ptr)))
}

// endChannel is the run's end channel, made on first use from the end descriptor fd
// (valid at that moment: the caller is in a host call of the run).
func (s *runState) endChannel(fd int) <-chan struct{} {
	s.endOnce.Do(func() {
		if fd < 0 {
			return
		}
		// A duplicate, closed by the waiter: the library closes fd when it releases the
		// run, which may come before the waiter's first poll.
		dup, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
		if errno != 0 {
			return
		}
		s.end = make(chan struct{})
		go func() {
			waitReadable(int(dup))
			syscall.Close(int(dup))
			close(s.end)
		}()
	})
	return s.end
}

// waitReadable blocks until fd is readable (or poll fails for another reason than an
// interruption).
func waitReadable(fd int) {
	pfd := struct {
		fd              int32
		events, revents int16
	}{fd: int32(fd), events: 1} // POLLIN
	for {
		_, _, e := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&pfd)), 1, 0, 0, 0, 0)
		if e != syscall.EINTR {
			return
		}
	}
}

// hostEntry is one definition of a host function for one C config.
type hostEntry struct {
	fn    *Func
	name  string    // "module::name"
	state *runState // where failures are recorded
}

var (
	hostFuncs    sync.Map // uintptr -> *hostEntry
	lastHostFunc atomic.Uintptr
)

// defineImports defines cfg's imports on c, in sorted order, with failures going to st.
func defineImports(c *C.wt_run_config_t, imports Imports, st *runState) error {
	const op = opRunConfig
	mods := make([]string, 0, len(imports))
	for m := range imports {
		mods = append(mods, m)
	}
	sort.Strings(mods)
	for _, m := range mods {
		names := make([]string, 0, len(imports[m]))
		for n := range imports[m] {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			f := imports[m][n]
			qualified := m + "::" + n
			switch {
			case f == nil:
				return misuse(op, "Imports: "+qualified+" is nil")
			case f.err != "":
				return misuse(op, "Imports: "+qualified+": "+f.err)
			}
			cm, err := cString(op, "import module name", m)
			if err != nil {
				return err
			}
			cn, err := cString(op, "import name", n)
			if err != nil {
				C.free(unsafe.Pointer(cm))
				return err
			}
			id := lastHostFunc.Add(1)
			hostFuncs.Store(id, &hostEntry{fn: f, name: qualified, state: st})
			kinds := make([]C.wt_valkind_t, len(f.params)+len(f.results)+1)
			for i, k := range f.params {
				kinds[i] = C.wt_valkind_t(k)
			}
			for i, k := range f.results {
				kinds[len(f.params)+i] = C.wt_valkind_t(k)
			}
			// On failure the library calls the finalizer, which removes the entry.
			cerr := C.wtgo_define_func(c, cm, cn, &kinds[0], C.size_t(len(f.params)),
				&kinds[len(f.params)], C.size_t(len(f.results)), C.uintptr_t(id))
			C.free(unsafe.Pointer(cm))
			C.free(unsafe.Pointer(cn))
			if err := takeError(op, cerr); err != nil {
				return err
			}
		}
	}
	return nil
}

// hostCall runs one host function call on the guest thread that made it. It never lets
// a panic out; a failure becomes the returned message (and is recorded in the state).
func (h *hostEntry) hostCall(caller *C.wt_caller_t, args []C.wt_val_t, results []C.wt_val_t) (msg string, failed bool) {
	c := &Caller{ptr: caller, state: h.state}
	defer func() {
		c.ptr = nil
		if v := recover(); v != nil {
			h.state.fail(h.name, int32(C.wt_caller_tid(caller)), v, nil, stack())
			msg, failed = fmt.Sprintf("panic: %v", v), true
		}
	}()
	in := make([]Val, len(args))
	for i := range args {
		in[i] = valFromC(&args[i])
	}
	out, err := h.fn.call(c, in)
	if err == nil && len(out) != len(results) {
		err = fmt.Errorf("returned %d results, the signature has %d", len(out), len(results))
	}
	if err == nil {
		for i, v := range out {
			if v.kind != h.fn.results[i] {
				err = fmt.Errorf("result %d is %v, the signature says %v", i+1, v.kind, h.fn.results[i])
				break
			}
		}
	}
	if err != nil {
		if !bool(C.wt_caller_is_ending(caller)) {
			h.state.fail(h.name, int32(C.wt_caller_tid(caller)), nil, err, nil)
		}
		return err.Error(), true
	}
	for i, v := range out {
		v.toC(&results[i])
	}
	return "", false
}

// errHostFuncGone is the trap of a call whose definition is no longer registered; the
// library makes no such call (see the package comment above).
var errHostFuncGone = errors.New("host function called after its run or instance was released")

//export wtgoHostCall
func wtgoHostCall(id C.uintptr_t, caller *C.wt_caller_t, args *C.wt_val_t, nargs C.size_t, results *C.wt_val_t, nresults C.size_t) *C.wt_error_t {
	e, ok := hostFuncs.Load(uintptr(id))
	if !ok {
		return newCError(errHostFuncGone.Error())
	}
	msg, failed := e.(*hostEntry).hostCall(caller, unsafe.Slice(args, int(nargs)), unsafe.Slice(results, int(nresults)))
	if !failed {
		return nil
	}
	return newCError(msg)
}

//export wtgoHostFinalize
func wtgoHostFinalize(id C.uintptr_t) { hostFuncs.Delete(uintptr(id)) }

// newCError is wt_error_new(msg), NUL bytes replaced.
func newCError(msg string) *C.wt_error_t {
	b := make([]byte, 0, len(msg)+1)
	for i := 0; i < len(msg); i++ {
		if msg[i] == 0 {
			b = append(b, '?')
		} else {
			b = append(b, msg[i])
		}
	}
	b = append(b, 0)
	return C.wt_error_new((*C.char)(unsafe.Pointer(&b[0])))
}
