package jcs

import (
	"errors"
	"strconv"
)

// Reasons an input has no canonical form. Canonicalize returns them wrapped in an *Error, so
// callers test with errors.Is.
var (
	// ErrSyntax: the input is not JSON text (RFC 8259).
	ErrSyntax = errors.New("invalid JSON")
	// ErrTrailingData: something other than whitespace follows the JSON value.
	ErrTrailingData = errors.New("trailing data after the JSON value")
	// ErrDuplicateName: an object has two members with the same name (after unescaping).
	ErrDuplicateName = errors.New("duplicate object member name")
	// ErrInvalidUnicode: invalid UTF-8, or a lone surrogate (raw or as a \u escape).
	ErrInvalidUnicode = errors.New("invalid UTF-8 or lone surrogate in string")
	// ErrNumberRange: a number too large in magnitude for an IEEE-754 binary64.
	ErrNumberRange = errors.New("number outside the binary64 range")
	// ErrTooDeep: arrays and objects nested deeper than MaxDepth.
	ErrTooDeep = errors.New("JSON nested too deeply")
)

// MaxDepth is the deepest nesting of arrays and objects Canonicalize accepts. It keeps a hostile
// input from growing the stack without bound; real payloads are a few levels deep.
const MaxDepth = 1000

// Error says why and where an input was refused.
type Error struct {
	// Err is one of the sentinel errors of this package.
	Err error
	// Offset is the byte offset in the input at which the problem was detected.
	Offset int
	// Detail narrows Err down ("expected ':'", the duplicated name, …); it may be empty.
	Detail string
}

func (e *Error) Error() string {
	s := "jcs: " + e.Err.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s + " at offset " + strconv.Itoa(e.Offset)
}

// Unwrap returns the sentinel error, for errors.Is.
func (e *Error) Unwrap() error { return e.Err }
