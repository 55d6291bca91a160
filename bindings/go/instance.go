package wasithreads

/*
#include <stdint.h>
#include <stdlib.h>
#include "wasithreads.h"

// The C arguments, results and exit of one call, in C memory: passing Go memory to C
// costs a pointer check per argument (cgocheck).
typedef struct {
    wt_val_t vals[8];
    wt_exit_t exit;
} wtgo_call_scratch;
*/
import "C"

import (
	"context"
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// CallMode says how an instance's export calls run.
type CallMode int

const (
	// CallsParallel: each OS thread that calls runs the call on a guest thread of its own
	// (its own stack, thread-locals, pthread_self), made with the module's own
	// pthread_create on its first call and kept for its next ones; calls from different
	// goroutines run in parallel. A module gets this mode when it has a shared memory and
	// wasi-libc's __pthread_create in its name section: any C, C++ or Rust module built
	// for wasm32-wasip1-threads that is not stripped of names.
	CallsParallel CallMode = C.WT_CALLS_PARALLEL
	// CallsSerial: calls run one at a time on the main thread's instance; other callers
	// wait.
	CallsSerial CallMode = C.WT_CALLS_SERIAL
)

func (m CallMode) String() string {
	switch m {
	case CallsParallel:
		return "parallel"
	case CallsSerial:
		return "serial"
	}
	return fmt.Sprintf("CallMode(%d)", int(m))
}

// ExportType is an export Instance.Call can reach: a function whose parameters and
// results are all numbers.
type ExportType struct {
	Name            string
	Params, Results []ValKind
}

func (t ExportType) String() string {
	return fmt.Sprintf("%s(%s) -> (%s)", t.Name, kindList(t.Params), kindList(t.Results))
}

func kindList(ks []ValKind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = k.String()
	}
	return strings.Join(s, ", ")
}

type export struct {
	ExportType
	cname *C.char // owned by the instance, valid until wt_instance_free
}

// InstanceEnded is the error of every Instance.Call and CallVals once the instance has
// ended — a trap or proc_exit in any of its threads, its timeout, a cancel
// (Instance.Cancel, or the context of a call), Close — and of ReadAt and WriteAt after
// Close.
// Exit is the instance's first exit, the same for every call. errors.Is(err, ErrEnded)
// holds; for the call whose context ended the instance, so does errors.Is(err,
// ctx.Err()).
type InstanceEnded struct {
	Exit *Exit
	// Callback is the first failure of a host function, writer or callback of the
	// instance's RunConfig (nil if none); Unwrap returns it, so errors.As reaches it. A
	// host function that panicked is usually what ended the instance.
	Callback *CallbackError

	ctxErr error
}

func (e *InstanceEnded) Error() string {
	s := "wasithreads: instance ended: " + e.Exit.String()
	if e.Callback != nil {
		s += " (" + strings.TrimPrefix(e.Callback.Error(), "wasithreads: ") + ")"
	}
	return s
}

// Is reports whether target is ErrEnded, or the error of the call's context that ended
// the instance.
func (e *InstanceEnded) Is(target error) bool {
	return target == ErrEnded || (e.ctxErr != nil && target == e.ctxErr)
}

// Unwrap returns Callback (nil if none).
func (e *InstanceEnded) Unwrap() error {
	if e.Callback == nil {
		return nil
	}
	return e.Callback
}

// Instance is a module instantiated once for export calls: a plugin. Its _initialize has
// run; threads the guest starts keep running between calls; every setting of the
// RunConfig it was made with (limits, Timeout, CallTimeout, stdio, directories,
// callbacks, Imports) applies for its whole life. Its methods are safe for concurrent
// use: any number of goroutines may call exports at once (see CallMode).
//
// It ends at the first of: a trap or proc_exit in any of its threads (a call's, or one
// the guest spawned), its Timeout (counted from Instantiate) or CallTimeout, Cancel, the
// cancel of a call's context, Close. Every thread is then stopped; calls in flight and
// every later call return an *InstanceEnded with the first exit. Stopping a thread in
// the middle of its work can leave the guest's locks held, which is why one thread's end
// ends the instance (the wasi-threads rule, as for runs).
//
// Close it when done: it ends the instance, joins its threads and releases it. A
// finalizer closes an Instance that became unreachable — its background threads
// included — so keep a reference while they should go on. A host function or callback
// of its RunConfig that refers to the instance keeps it reachable until Close.
type Instance struct {
	// refs is 1 until Close, plus one per method using ptr; the last release frees ptr.
	refs atomic.Int64
	ptr  *C.wt_instance_t
	setup

	exports []*export
	byName  map[string]*export
	mode    CallMode

	closeMu sync.Mutex // held by Close
	closed  bool
	exit    *Exit
	err     error
}

// Instantiate instantiates the module with cfg (nil: defaults) as a plugin: on the
// calling goroutine's thread, as the instance's main thread (tid 0), and runs its
// _initialize export if it has one (a command's _start is not run; its exports can be
// called).
//
// ctx bounds the instantiation only, as for net.Dialer.DialContext: a ctx already done
// returns ctx.Err(); _initialize cannot be interrupted by it (bound it with
// RunConfig.Timeout), but if ctx is done when it returns, the instance is closed and
// ctx.Err() returned. The instance's life afterwards does not depend on ctx.
//
// Errors: as for Run (an *Error; ErrLink names an import no host function defines), and
// an *Error of kind ErrEnded when the start function or _initialize trapped, exited or
// ran past the timeout (its message says how; errors.As finds the *CallbackError of a
// host function that failed meanwhile).
func (m *Module) Instantiate(ctx context.Context, cfg *RunConfig) (*Instance, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	i := &Instance{}
	c, err := i.configure(cfg)
	if err != nil {
		i.cleanup()
		return nil, err
	}
	if c != nil {
		defer C.wt_run_config_free(c) // the instance copied what it needs
	}
	mp, ep, err := m.acquire()
	if err != nil {
		i.cleanup()
		return nil, err
	}
	i.startStdin() // _initialize may read it
	var p *C.wt_instance_t
	cerr := C.wt_instance_new(ep, mp, c, &p)
	m.release() // the instance keeps the module alive
	if cerr != nil {
		ended := C.wt_error_kind(cerr) == C.WT_ERROR_ENDED
		err := takeError(opInstantiate, cerr)
		i.cleanup()
		if cb := i.callbackError(); ended && cb != nil {
			err.(*Error).cause = cb
		}
		return nil, err
	}
	i.ptr = p
	i.refs.Store(1)
	i.mode = CallMode(C.wt_instance_call_mode(p))
	if err := i.readExports(); err != nil {
		i.Close()
		return nil, err
	}
	runtime.SetFinalizer(i, func(i *Instance) { go i.Close() })
	if err := ctx.Err(); err != nil {
		i.Close()
		return nil, err
	}
	return i, nil
}

// readExports fills the export table.
func (i *Instance) readExports() error {
	n := int(C.wt_instance_export_count(i.ptr))
	i.exports = make([]*export, 0, n)
	i.byName = make(map[string]*export, n)
	for k := 0; k < n; k++ {
		cname := C.wt_instance_export_name(i.ptr, C.size_t(k))
		if cname == nil {
			continue
		}
		e := &export{ExportType: ExportType{Name: C.GoString(cname)}, cname: cname}
		var np, nr C.size_t
		size := 16
		for {
			ps, rs := make([]C.wt_valkind_t, size), make([]C.wt_valkind_t, size)
			cerr := C.wt_instance_export_type(i.ptr, cname, &ps[0], C.size_t(size), &np,
				&rs[0], C.size_t(size), &nr)
			if err := takeError(opInstantiate, cerr); err != nil {
				return err
			}
			if int(np) <= size && int(nr) <= size {
				for _, p := range ps[:np] {
					e.Params = append(e.Params, ValKind(p))
				}
				for _, r := range rs[:nr] {
					e.Results = append(e.Results, ValKind(r))
				}
				break
			}
			size = int(np)
			if int(nr) > size {
				size = int(nr)
			}
		}
		i.exports = append(i.exports, e)
		i.byName[e.Name] = e
	}
	return nil
}

// acquire takes a reference for a use of ptr: false once the instance was released.
func (i *Instance) acquire() bool {
	for {
		r := i.refs.Load()
		if r <= 0 {
			return false
		}
		if i.refs.CompareAndSwap(r, r+1) {
			return true
		}
	}
}

func (i *Instance) release() {
	if i.refs.Add(-1) == 0 {
		C.wt_instance_free(i.ptr)
	}
}

// callbackError is a copy of the first callback failure so far, or nil.
func (i *Instance) callbackError() *CallbackError {
	if i.state == nil {
		return nil
	}
	return i.state.snapshot()
}

// endedAfterClose is the error of a use after the instance was released.
func (i *Instance) endedAfterClose() error {
	i.closeMu.Lock()
	exit := i.exit
	i.closeMu.Unlock()
	return &InstanceEnded{Exit: exit, Callback: i.callbackError()}
}

// CallMode says whether calls run in parallel.
func (i *Instance) CallMode() CallMode { return i.mode }

// Exports lists the exports Call can reach, in the module's order, with their types.
func (i *Instance) Exports() []ExportType {
	out := make([]ExportType, len(i.exports))
	for k, e := range i.exports {
		out[k] = ExportType{
			Name:    e.Name,
			Params:  append([]ValKind(nil), e.Params...),
			Results: append([]ValKind(nil), e.Results...),
		}
	}
	return out
}

// ExportType is the type of export name; false if Call cannot reach such an export.
func (i *Instance) ExportType(name string) (ExportType, bool) {
	e, ok := i.byName[name]
	if !ok {
		return ExportType{}, false
	}
	return ExportType{Name: e.Name, Params: append([]ValKind(nil), e.Params...),
		Results: append([]ValKind(nil), e.Results...)}, true
}

func (i *Instance) lookup(name string) (*export, error) {
	if e, ok := i.byName[name]; ok {
		return e, nil
	}
	return nil, misuse(opCall, fmt.Sprintf("the instance has no export %q that can be called (see Exports)", name))
}

// Call calls the export name with args and returns its results, from any goroutine;
// calls from several goroutines run in parallel (CallsParallel) or one at a time
// (CallsSerial). Each argument is converted to the export's parameter type: an i32
// takes an int32, a uint32 or an int in [math.MinInt32, math.MaxUint32] (an untyped
// constant is an int); an i64 an int64, uint64, int, int32 or uint32; an f32 a float32
// (or a float64 that is exactly a float32); an f64 a float64 or float32; any of them a
// Val of its kind. Results are int32, int64, float32 or float64.
//
// A wrong name, argument count or argument type is an *Error of kind ErrMisuse, and the
// instance goes on. When the instance has ended — in this call (a trap or proc_exit
// here ends it) or before — the error is an *InstanceEnded.
//
// ctx: a ctx already done returns ctx.Err() without calling. Cancelling ctx during the
// call ends the whole instance (Cancel), not only this call: stopping a guest thread in
// the middle of its work could leave its locks held. The call then returns an
// *InstanceEnded for which errors.Is(err, ctx.Err()) holds. (A ctx that can be cancelled
// costs a goroutine per call; context.Background() costs nothing.)
func (i *Instance) Call(ctx context.Context, name string, args ...interface{}) ([]interface{}, error) {
	e, err := i.lookup(name)
	if err != nil {
		return nil, err
	}
	if len(args) != len(e.Params) {
		return nil, misuse(opCall, fmt.Sprintf("%v takes %d arguments, got %d", e.ExportType, len(e.Params), len(args)))
	}
	var buf [8]Val
	vals := buf[:0]
	for k, a := range args {
		v, ok := convertArg(a, e.Params[k])
		if !ok {
			return nil, misuse(opCall, fmt.Sprintf("%v: argument %d (%T %v) is not an %v", e.ExportType, k+1, a, a, e.Params[k]))
		}
		vals = append(vals, v)
	}
	res, err := i.call(ctx, e, vals)
	if err != nil {
		return nil, err
	}
	out := make([]interface{}, len(res))
	for k, v := range res {
		out[k] = v.Get()
	}
	return out, nil
}

// CallVals is Call with arguments and results as Vals; each argument's kind must be the
// parameter's.
func (i *Instance) CallVals(ctx context.Context, name string, args ...Val) ([]Val, error) {
	e, err := i.lookup(name)
	if err != nil {
		return nil, err
	}
	if len(args) != len(e.Params) {
		return nil, misuse(opCall, fmt.Sprintf("%v takes %d arguments, got %d", e.ExportType, len(e.Params), len(args)))
	}
	for k, a := range args {
		if a.kind != e.Params[k] {
			return nil, misuse(opCall, fmt.Sprintf("%v: argument %d is %v, not %v", e.ExportType, k+1, a.kind, e.Params[k]))
		}
	}
	return i.call(ctx, e, args)
}

// convertArg converts a Call argument to kind k.
func convertArg(a interface{}, k ValKind) (Val, bool) {
	if v, ok := a.(Val); ok {
		return v, v.kind == k
	}
	switch k {
	case I32:
		switch x := a.(type) {
		case int32:
			return ValI32(x), true
		case uint32:
			return ValI32(int32(x)), true
		case int:
			if int64(x) >= math.MinInt32 && int64(x) <= math.MaxUint32 {
				return ValI32(int32(uint32(x))), true
			}
		}
	case I64:
		switch x := a.(type) {
		case int64:
			return ValI64(x), true
		case uint64:
			return ValI64(int64(x)), true
		case int:
			return ValI64(int64(x)), true
		case int32:
			return ValI64(int64(x)), true
		case uint32:
			return ValI64(int64(x)), true
		}
	case F32:
		switch x := a.(type) {
		case float32:
			return ValF32(x), true
		case float64:
			if float64(float32(x)) == x {
				return ValF32(float32(x)), true
			}
		}
	case F64:
		switch x := a.(type) {
		case float64:
			return ValF64(x), true
		case float32:
			return ValF64(float64(x)), true
		}
	}
	return Val{}, false
}

// call runs one export call with checked arguments.
func (i *Instance) call(ctx context.Context, e *export, args []Val) ([]Val, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !i.acquire() {
		return nil, i.endedAfterClose()
	}
	defer i.release()
	n := len(e.Params) + len(e.Results)
	sc := scratchPool.Get().(*callScratch)
	defer scratchPool.Put(sc)
	cv := sc.p.vals[:]
	if n > len(cv) {
		cv = make([]C.wt_val_t, n)
	}
	var argp, resp *C.wt_val_t
	for k, v := range args {
		v.toC(&cv[k])
	}
	if len(args) > 0 {
		argp = &cv[0]
	}
	if len(e.Results) > 0 {
		resp = &cv[len(e.Params)]
	}
	var stop chan struct{}
	if done := ctx.Done(); done != nil {
		stop = make(chan struct{})
		go i.cancelOn(done, stop)
	}
	ce := &sc.p.exit
	cerr := C.wt_instance_call(i.ptr, e.cname, argp, C.size_t(len(args)), resp, C.size_t(len(e.Results)), ce)
	if stop != nil {
		close(stop)
	}
	if cerr != nil {
		ended := C.wt_error_kind(cerr) == C.WT_ERROR_ENDED
		err := takeError(opCall, cerr)
		if !ended {
			return nil, err
		}
		end := &InstanceEnded{Exit: takeExit(ce), Callback: i.callbackError()}
		if end.Exit.Kind == ExitCancelled {
			end.ctxErr = ctx.Err()
		}
		return nil, end
	}
	res := make([]Val, len(e.Results))
	for k := range res {
		res[k] = valFromC(&cv[len(e.Params)+k])
	}
	return res, nil
}

// callScratch holds the C memory of a call (its arguments, results and exit), pooled;
// a finalizer frees the C memory of one the pool dropped.
type callScratch struct {
	p *C.wtgo_call_scratch
}

var scratchPool = sync.Pool{New: func() interface{} {
	sc := &callScratch{p: (*C.wtgo_call_scratch)(C.calloc(1, C.sizeof_wtgo_call_scratch))}
	if sc.p == nil {
		panic("wasithreads: out of memory")
	}
	runtime.SetFinalizer(sc, func(sc *callScratch) { C.free(unsafe.Pointer(sc.p)) })
	return sc
}}

// cancelOn cancels the instance if done closes before stop.
func (i *Instance) cancelOn(done <-chan struct{}, stop chan struct{}) {
	select {
	case <-done:
		i.Cancel()
	case <-stop:
	}
}

// Memory is the instance's shared memory at its current size (nil for a module without
// a shared memory, or after Close), for reading and writing guest data in place. Its
// base never moves, so the slice stays valid until Close — keep the Instance reachable
// (defer Close) while you use it — but the guest may grow the memory: call Memory again
// to see the new size. Guest threads read and write it concurrently with the host:
// ordering the host's accesses with theirs (a call that returns, the guest's atomics) is
// the host's business. ReadAt and WriteAt copy with bounds checks instead.
func (i *Instance) Memory() []byte {
	if !i.acquire() {
		return nil
	}
	defer i.release()
	data, size := C.wt_instance_memory_data(i.ptr), C.wt_instance_memory_size(i.ptr)
	if data == nil || size == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(data)), int(size))
}

// MemorySize is the memory's current size in bytes (0 without one, or after Close).
func (i *Instance) MemorySize() int64 {
	if !i.acquire() {
		return 0
	}
	defer i.release()
	return int64(C.wt_instance_memory_size(i.ptr))
}

// ReadAt copies guest memory at off into p (io.ReaderAt): fewer than len(p) bytes, and
// io.EOF, when p reaches past the shared memory's current size. It works for shared and
// unshared memories (for an unshared one, whose size the host cannot see, all or
// nothing: a range past its end is an ErrMisuse), also after the instance ended; after
// Close it returns an *InstanceEnded.
func (i *Instance) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, misuse(opMemory, "ReadAt: negative offset")
	}
	if !i.acquire() {
		return 0, i.endedAfterClose()
	}
	defer i.release()
	n, err := len(p), error(nil)
	// A shared memory's size is known (and only grows): clip to it. An unshared one's is
	// not, and the library checks its bounds.
	if size := int64(C.wt_instance_memory_size(i.ptr)); size > 0 || C.wt_instance_memory_data(i.ptr) != nil {
		if off >= size {
			if n == 0 {
				return 0, nil
			}
			return 0, io.EOF
		}
		if int64(n) > size-off {
			n, err = int(size-off), io.EOF
		}
	}
	cerr := C.wt_instance_memory_read(i.ptr, C.uint64_t(off), bytesArg(p), C.size_t(n))
	runtime.KeepAlive(p)
	if e := takeError(opMemory, cerr); e != nil {
		return 0, e
	}
	return n, err
}

// WriteAt copies p into guest memory at off (io.WriterAt). All or nothing: a range past
// the memory's current size is an *Error of kind ErrMisuse and nothing is written.
// After Close it returns an *InstanceEnded.
func (i *Instance) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, misuse(opMemory, "WriteAt: negative offset")
	}
	if !i.acquire() {
		return 0, i.endedAfterClose()
	}
	defer i.release()
	cerr := C.wt_instance_memory_write(i.ptr, C.uint64_t(off), bytesArg(p), C.size_t(len(p)))
	runtime.KeepAlive(p)
	if err := takeError(opMemory, cerr); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Cancel ends the instance with ExitCancelled unless it already ended: every thread
// stops within milliseconds and calls in flight return an *InstanceEnded. It returns at
// once. Safe any number of times, from any goroutine, from host functions and callbacks.
func (i *Instance) Cancel() {
	if !i.acquire() {
		return
	}
	C.wt_instance_cancel(i.ptr)
	i.release()
}

// Close ends the instance if it still lives (as Cancel), waits until every thread of it
// stopped and was joined (or outlived the TeardownGrace, as for runs), releases it, and
// returns its first exit (ExitCancelled if nothing ended it before). The error is the
// *CallbackError of the first host function, writer or callback that failed during the
// instance's life, or nil. Every Close returns the same; later calls and memory accesses
// return an *InstanceEnded, and Memory() nil. Do not call it from the instance's own host
// functions or callbacks (it would wait for itself; it returns ErrMisuse there): use
// Cancel.
func (i *Instance) Close() (*Exit, error) {
	i.closeMu.Lock()
	defer i.closeMu.Unlock()
	if i.closed {
		return i.exit, i.err
	}
	var ce C.wt_exit_t
	if err := takeError(opClose, C.wt_instance_close(i.ptr, &ce)); err != nil {
		return nil, err
	}
	// Every guest thread has been joined: no callback can come any more.
	i.exit = takeExit(&ce)
	i.cleanup()
	if cb := i.callbackError(); cb != nil {
		i.err = cb
	}
	i.closed = true
	runtime.SetFinalizer(i, nil)
	i.release()
	return i.exit, i.err
}
