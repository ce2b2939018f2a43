// Package jcs implements the RFC 8785 JSON Canonicalization Scheme (JCS), the canonical form the
// v1 protocol hashes (docs/protocol-v1.md §4.1): UTF-8 without insignificant whitespace, object
// members sorted by their names as UTF-16 code unit sequences, strings escaped only where JSON
// requires it, and numbers in the ECMAScript shortest round-trip spelling of a binary64.
//
// Canonicalize runs on every pushed row, so it is a single pass over the input with no reflection
// and no intermediate values: members are written as they are parsed and reordered in place only
// when an object's names arrive out of order. Inputs that have no canonical form are refused with
// an *Error wrapping one of the sentinel errors (ErrSyntax, ErrTrailingData, ErrDuplicateName,
// ErrInvalidUnicode, ErrNumberRange, ErrTooDeep).
//
// jcs knows nothing about the protocol: which values are strings and which rows are hashed is
// decided by its callers.
package jcs
