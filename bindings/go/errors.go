package wasithreads

/*
#include "wasithreads.h"
*/
import "C"

import (
	"errors"
	"strings"
)

// Error kinds: every *Error the package returns is, through errors.Is, at most one of
// these. The C library reports errors as messages only, so the kind is read from the
// message (errorKind, the one place that does it); an error no rule recognises, such as
// an internal error of the library, has no kind.
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
	// minimum memory, MaxFds without room for stdio and the preopened directories).
	ErrLimit = errors.New("wasithreads: limit")
	// ErrMisuse: a bad argument or setting (a NUL byte in a string, a negative limit, an
	// opt level the library does not have, a closed Engine or Module, ...).
	ErrMisuse = errors.New("wasithreads: misuse")
	// ErrIO: a file or directory the call or run needed could not be read or opened (the
	// module file, a preopened directory, StdinFile, the core dump's directory, the
	// compilation cache).
	ErrIO = errors.New("wasithreads: I/O error")
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
// ErrIO) tells the kinds apart.
type Error struct {
	Op      string // what was being done, e.g. "load module", "run"
	Message string // the library's message
	// Kind is ErrBadModule, ErrLink, ErrLimit, ErrMisuse, ErrIO, or nil when the
	// message fits none of them (e.g. an internal error of the library).
	Kind error
}

func (e *Error) Error() string { return "wasithreads: " + e.Op + ": " + e.Message }

// Is reports whether target is the error's Kind.
func (e *Error) Is(target error) bool { return e.Kind != nil && target == e.Kind }

// The operations of Error.Op; errorKind reads messages in their light.
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
)

// takeError converts and frees a wt_error_t; nil for NULL.
func takeError(op string, e *C.wt_error_t) error {
	if e == nil {
		return nil
	}
	msg := C.GoString(C.wt_error_message(e))
	C.wt_error_free(e)
	return &Error{Op: op, Message: msg, Kind: errorKind(op, msg)}
}

// misuse is an ErrMisuse found by the binding itself.
func misuse(op, msg string) error { return &Error{Op: op, Message: msg, Kind: ErrMisuse} }

// Phrases of the library's messages, by kind. The messages are the library's (src/),
// each phrase a stable part of one; TestErrorKinds provokes each kind for real, so a
// reworded message fails there.
var (
	misusePhrases = []string{
		"is NULL", "is not valid UTF-8", "must be non-empty", "stream must be 1",
		"loaded by a different engine", "opt level must be", "max wasm stack must be",
		"is not a file descriptor", "names no file",
	}
	linkPhrases = []string{
		"unknown import", "unsupported import", "import `wasi::thread-spawn` must have type",
		"imports more than one memory", "imports wasi::thread-spawn but has no shared memory",
		"is reserved for wasithreads itself", "cannot run this module", "linking the module",
	}
	limitPhrases = []string{"the memory limit (", "the descriptor limit ("}
	ioPhrases    = []string{
		"opening directory ", "as the guest's stdin", "opening the directory of the core dump path",
		"cannot duplicate descriptor",
	}
	internalPhrase = "internal error"
)

// errorKind classifies one of the library's messages for the operation op.
func errorKind(op, msg string) error {
	has := func(phrases []string) bool {
		for _, p := range phrases {
			if strings.Contains(msg, p) {
				return true
			}
		}
		return false
	}
	switch {
	case strings.HasPrefix(msg, internalPhrase):
		return nil
	case has(misusePhrases):
		return ErrMisuse
	}
	switch op {
	case opNewEngine:
		if strings.Contains(msg, "cache") {
			return ErrIO
		}
		return ErrMisuse // every other engine failure is a setting it refuses
	case opLoadFile:
		if strings.HasPrefix(msg, "reading ") { // the file, before its bytes are looked at
			return ErrIO
		}
		fallthrough
	case opLoad, opValidate, opDeserialize:
		if has(linkPhrases) {
			return ErrLink
		}
		return ErrBadModule // every other failure to load is about the bytes
	case opRunConfig, opRun:
		switch {
		case has(linkPhrases):
			return ErrLink
		case has(limitPhrases):
			return ErrLimit
		case has(ioPhrases):
			return ErrIO
		}
	}
	return nil
}
