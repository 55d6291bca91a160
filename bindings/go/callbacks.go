package wasithreads

// The Go side of the run callbacks. callbacks.c holds C functions with the library's
// callback signatures that forward to these; user_data is a runtime/cgo.Handle of the
// run's *runState. They run on guest threads (C threads calling into Go) and never let a
// panic reach C: runState's methods recover and record it.

/*
#include <stdint.h>
#include <stddef.h>
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

//export wtgoOutput
func wtgoOutput(h C.uintptr_t, stream C.int32_t, tid C.int32_t, data *C.uint8_t, n C.size_t) {
	s := cgo.Handle(h).Value().(*runState)
	s.write(int(stream), int32(tid), unsafe.Slice((*byte)(unsafe.Pointer(data)), int(n)))
}

//export wtgoThreadStart
func wtgoThreadStart(h C.uintptr_t, tid C.int32_t) {
	cgo.Handle(h).Value().(*runState).threadStart(int32(tid))
}

//export wtgoThreadExit
func wtgoThreadExit(h C.uintptr_t, tid C.int32_t, kind C.int, code C.int32_t, message, backtrace *C.char) {
	how := ThreadExit{Kind: ThreadExitKind(kind), Code: int32(code)}
	if message != nil {
		how.Message = C.GoString(message)
	}
	if backtrace != nil { // borrowed: copied before the callback returns
		how.Backtrace = C.GoString(backtrace)
	}
	cgo.Handle(h).Value().(*runState).threadExit(int32(tid), how)
}
