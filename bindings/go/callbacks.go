package wasithreads

// The Go side of the run callbacks. callbacks.c holds C functions with the library's
// callback signatures that forward to these; user_data is the run's id in the runs
// registry. They run on guest threads (C threads calling into Go) and never let a panic
// reach C: runState's methods recover and record it.

/*
#include <stdint.h>
#include <stddef.h>
#include "wasithreads.h"
*/
import "C"

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// runs maps the user_data of each run's C callbacks to the run's state. A run's entry
// is removed when the run ends. The library starts no callback of a run after its end
// (a thread still inside one when the teardown grace ran out makes no further call);
// a callback that found no entry would still be dropped, never reach the state of a run
// that has returned.
var (
	runs    sync.Map // uintptr -> *runState
	lastRun atomic.Uintptr
)

func registerRun(s *runState) uintptr {
	id := lastRun.Add(1)
	runs.Store(id, s)
	return id
}

func unregisterRun(id uintptr) { runs.Delete(id) }

// lookupRun is the run's state, or nil once the run has ended.
func lookupRun(id C.uintptr_t) *runState {
	if s, ok := runs.Load(uintptr(id)); ok {
		return s.(*runState)
	}
	return nil
}

//export wtgoOutput
func wtgoOutput(id C.uintptr_t, stream C.int32_t, tid C.int32_t, data *C.uint8_t, n C.size_t) {
	if s := lookupRun(id); s != nil {
		s.write(int(stream), int32(tid), unsafe.Slice((*byte)(unsafe.Pointer(data)), int(n)))
	}
}

//export wtgoThreadStart
func wtgoThreadStart(id C.uintptr_t, tid C.int32_t) {
	if s := lookupRun(id); s != nil {
		s.threadStart(int32(tid))
	}
}

//export wtgoThreadExit
func wtgoThreadExit(id C.uintptr_t, tid C.int32_t, kind C.int, code C.int32_t, message, backtrace *C.char) {
	s := lookupRun(id)
	if s == nil {
		return
	}
	how := ThreadExit{Kind: ThreadExitKind(kind), Code: int32(code)}
	if message != nil {
		how.Message = C.GoString(message)
	}
	if backtrace != nil { // borrowed: copied before the callback returns
		how.Backtrace = C.GoString(backtrace)
	}
	s.threadExit(int32(tid), how)
}

//export wtgoDiagnostic
func wtgoDiagnostic(id C.uintptr_t, tid C.int32_t, message *C.char) {
	if s := lookupRun(id); s != nil {
		s.diagnostic(int32(tid), C.GoString(message))
	}
}
