package wire

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strconv"

	"github.com/pulsesync/pulsesync/internal/jcs"
)

// HashRow is one row of a hash input. Key is the canonical key object ({"col":"value"}), Payload
// the canonical payload object or nil for DELETE; both are copied into the hash input as they
// are, so they must already be canonical (jcs.Canonicalize, CanonicalKey, AppendWireValue).
// Version is the base_row_version for RequestHash and the row_version (the bundle_seq) for
// BundleHash.
type HashRow struct {
	Schema, Table string
	Key           []byte
	Op            string
	Version       int64
	Payload       []byte
}

// RequestHash returns the canonical_request_hash of the rows a client pushes, in push order
// (docs/protocol-v1.md §4.4): lowercase hex SHA-256 of the canonical array of
// {"base_row_version","key","op","payload","row_ordinal","schema","table"} objects, with
// Version as base_row_version and the row's position as row_ordinal.
func RequestHash(rows []HashRow) string {
	h := newHashInput(rows)
	for i := range rows {
		r := &rows[i]
		h.separator(i)
		h.buf = append(h.buf, `{"base_row_version":"`...)
		h.buf = strconv.AppendInt(h.buf, r.Version, 10)
		h.buf = append(h.buf, `",`...)
		h.middle(i, r)
		h.tail(r)
	}
	sum, _ := h.finish()
	return sum
}

// BundleHash returns the bundle_hash of a committed bundle's rows, in bundle order
// (docs/protocol-v1.md §4.3), and size, the byte length of the canonical array it hashed (the
// bundle's committed byte count). Each row is
// {"key","op","payload","row_ordinal","row_version","schema","table"} with Version as
// row_version. Payloads must be the wire payloads every read of the bundle serves.
func BundleHash(rows []HashRow) (hash string, size int64) {
	h := newHashInput(rows)
	for i := range rows {
		r := &rows[i]
		h.separator(i)
		h.buf = append(h.buf, '{')
		h.middle(i, r)
		h.buf = append(h.buf, `","row_version":"`...)
		h.buf = strconv.AppendInt(h.buf, r.Version, 10)
		h.tail(r)
	}
	return h.finish()
}

// CanonicalKey returns the canonical key object {"<column>":"<value>"}.
func CanonicalKey(column, value string) []byte {
	b := make([]byte, 0, len(column)+len(value)+7)
	b = append(b, '{')
	b = jcs.AppendString(b, column)
	b = append(b, ':')
	b = jcs.AppendString(b, value)
	return append(b, '}')
}

// hashFlushSize is the buffered hash input that triggers a write into SHA-256: large enough to
// make the writes cheap, small enough that a 10,000-row bundle never sits in memory whole.
const hashFlushSize = 32 << 10

// hashInput streams a canonical array into SHA-256 through a small buffer.
type hashInput struct {
	sha  hash.Hash
	buf  []byte
	size int64
}

// rowOverhead bounds the bytes a hash row adds to its key, payload, schema and table: member
// names, punctuation, two decimal numbers and the op.
const rowOverhead = 128

// newHashInput sizes the buffer for the whole input of a small bundle, and for one flush plus a
// row of a large one.
func newHashInput(rows []HashRow) *hashInput {
	want := 2
	for i := range rows {
		r := &rows[i]
		want += len(r.Key) + len(r.Payload) + len(r.Schema) + len(r.Table) + rowOverhead
		if want > hashFlushSize {
			want = hashFlushSize + len(r.Key) + len(r.Payload) + len(r.Schema) + len(r.Table) + rowOverhead
			break
		}
	}
	h := &hashInput{sha: sha256.New(), buf: make([]byte, 0, want)}
	h.buf = append(h.buf, '[')
	return h
}

// separator starts row i: a comma between rows, and a flush when the buffer is full.
func (h *hashInput) separator(i int) {
	if len(h.buf) >= hashFlushSize {
		h.flush()
	}
	if i > 0 {
		h.buf = append(h.buf, ',')
	}
}

// middle appends the members both hashes share, in their sorted place:
// "key":…,"op":…,"payload":…,"row_ordinal":"<i> (the string left open).
func (h *hashInput) middle(i int, r *HashRow) {
	h.buf = append(h.buf, `"key":`...)
	h.buf = appendObject(h.buf, r.Key)
	h.buf = append(h.buf, `,"op":`...)
	h.buf = jcs.AppendString(h.buf, r.Op)
	h.buf = append(h.buf, `,"payload":`...)
	h.buf = appendObject(h.buf, r.Payload)
	h.buf = append(h.buf, `,"row_ordinal":"`...)
	h.buf = strconv.AppendInt(h.buf, int64(i), 10)
}

// tail closes an open string member and appends the last two members and the object's end:
// ","schema":…,"table":…}.
func (h *hashInput) tail(r *HashRow) {
	h.buf = append(h.buf, `","schema":`...)
	h.buf = jcs.AppendString(h.buf, r.Schema)
	h.buf = append(h.buf, `,"table":`...)
	h.buf = jcs.AppendString(h.buf, r.Table)
	h.buf = append(h.buf, '}')
}

func (h *hashInput) flush() {
	h.sha.Write(h.buf)
	h.size += int64(len(h.buf))
	h.buf = h.buf[:0]
}

func (h *hashInput) finish() (string, int64) {
	h.buf = append(h.buf, ']')
	h.flush()
	return hex.EncodeToString(h.sha.Sum(nil)), h.size
}

// appendObject appends an already canonical object, or null for a missing one (DELETE payloads).
func appendObject(dst, obj []byte) []byte {
	if obj == nil {
		return append(dst, "null"...)
	}
	return append(dst, obj...)
}
