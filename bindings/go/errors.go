package wasithreads

/*
#include "wasithreads.h"
*/
import "C"

import (
	"errors"
	"syscall"
)

// Error kinds: every *Error the package returns is, through errors.Is, at most one of
// these. The C library gives each error its kind (wt_error_kind, decided where the error
// is made, never read from its message); errorKind maps it to one of these, and an
// internal error of the library (WT_ERROR_OTHER) has no kind.
var (
	// ErrBadModule: the bytes are not a WebAssembly module (nor WAT text), are invalid,
	// use something wasithreads does not support (two shared memories, a 64-bit shared
	// memory, ...), or are not a module serialized by this library version with these
	// engine settings.
	ErrBadModule = errors.New("wasithreads: bad module")
	// ErrLink: a valid module that does not fit what the library provides: an import it
	// does not provide, wasi::thread-spawn without a shared memory, no _start export.
	ErrLink = errors.New("wasithreads: link error")
	// ErrLimit: a run cannot start within its limits (MaxMemory below the module's
	// minimum memory, MaxFds without room for stdio and the preopened directories), a
	// module is over its engine's MaxModuleBytes or MaxFunctions (or has a function too
	// big for Wasmtime once interruption points are added), or the OS refused a thread
	// or memory.
	ErrLimit = errors.New("wasithreads: limit")
	// ErrMisuse: a bad argument or setting (a NUL byte in a string, a negative limit, an
	// opt level the library does not have, a closed Engine or Module, ...).
	ErrMisuse = errors.New("wasithreads: misuse")
	// ErrIO: a file, directory or descriptor the call or run needed could not be used
	// (the module file, a preopened directory, StdinFile, an output file or descriptor,
	// the core dump's directory, the compilation cache). The *Error wraps the OS error
	// (Errno, a syscall.Errno), so errors.Is(err, fs.ErrNotExist) and the like work.
	ErrIO = errors.New("wasithreads: I/O error")
	// ErrEnded: an instance ended (a trap or proc_exit in any of its threads, its
	// timeout, a cancel, Close), so the call did not run or did not return. Every
	// *InstanceEnded is ErrEnded; so is the *Error of Instantiate when the module's start
	// function or _initialize ended the instance (its message says how).
	ErrEnded = errors.New("wasithreads: instance ended")
)

// ErrClosed is returned by methods of an Engine or Module that was closed. It is also
// ErrMisuse (errors.Is).
var ErrClosed error = closedError{}

type closedError struct{}

func (closedError) Error() string        { return "wasithreads: use of a closed Engine or Module" }
func (closedError) Is(target error) bool { return target == ErrMisuse }

// Error is a failure reported by the C library or found by the binding before calling
// it: bytes that are not a valid module, an import the library does not provide, a
// setting it refuses, a run that cannot start (no _start, a preopened directory that
// does not exist, ...). errors.Is(err, ErrBadModule) (ErrLink, ErrLimit, ErrMisuse,
// ErrIO) tells the kinds apart; errors.Is(err, fs.ErrNotExist) (or any syscall.Errno)
// tests the OS error behind it.
type Error struct {
	Op      string // what was being done, e.g. "load module", "run"
	Message string // the library's message
	// Kind is ErrBadModule, ErrLink, ErrLimit, ErrMisuse, ErrIO, ErrEnded, or nil for an
	// internal error of the library.
	Kind error
	// Errno is the OS error behind the error (wt_error_os_errno), 0 if none: set for
	// ErrIO errors a failed OS call caused.
	Errno syscall.Errno

	cause error // returned by Unwrap when Errno is 0: a host function's *CallbackError
}

func (e *Error) Error() string { return "wasithreads: " + e.Op + ": " + e.Message }

// Is reports whether target is the error's Kind.
func (e *Error) Is(target error) bool { return e.Kind != nil && target == e.Kind }

// Unwrap returns the OS error behind the error (Errno); for an ErrEnded error of
// Instantiate, the *CallbackError of a host function or callback that failed meanwhile;
// else nil.
func (e *Error) Unwrap() error {
	if e.Errno == 0 {
		return e.cause
	}
	return e.Errno
}

// The operations of Error.Op.
const (
	opNewEngine   = "new engine"
	opLoad        = "load module"
	opLoadFile    = "load module file"
	opValidate    = "validate module"
	opDeserialize = "deserialize module"
	opSerialize   = "serialize module"
	opRunConfig   = "run config"
	opRun         = "run"
	opWait        = "wait for run"
	opInstantiate = "instantiate"
	opCall        = "call"
	opMemory      = "memory"
	opClose       = "close instance"
)

// takeError converts and frees a wt_error_t; nil for NULL.
func takeError(op string, e *C.wt_error_t) error {
	if e == nil {
		return nil
	}
	msg := C.GoString(C.wt_error_message(e))
	kind := errorKind(C.wt_error_kind(e))
	errno := syscall.Errno(C.wt_error_os_errno(e))
	C.wt_error_free(e)
	return &Error{Op: op, Message: msg, Kind: kind, Errno: errno}
}

// misuse is an ErrMisuse found by the binding itself.
func misuse(op, msg string) error { return &Error{Op: op, Message: msg, Kind: ErrMisuse} }

// errorKind is the sentinel of a wt_error_kind_t; nil for WT_ERROR_OTHER (an internal
// error of the library) and for a kind this package does not know.
func errorKind(kind C.wt_error_kind_t) error {
	switch kind {
	case C.WT_ERROR_BAD_MODULE:
		return ErrBadModule
	case C.WT_ERROR_LINK:
		return ErrLink
	case C.WT_ERROR_LIMIT:
		return ErrLimit
	case C.WT_ERROR_MISUSE:
		return ErrMisuse
	case C.WT_ERROR_IO:
		return ErrIO
	case C.WT_ERROR_ENDED:
		return ErrEnded
	}
	return nil
}
