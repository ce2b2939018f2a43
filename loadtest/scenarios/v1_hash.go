package scenarios

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// The canonical JSON of docs/protocol-v1.md §4.1 (RFC 8785), written by hand
// for the few shapes the v1 scenarios hash: the rows they push
// (canonical_request_hash, §4.4) and the committed rows they read back
// (bundle_hash, §4.3). Payload values of the demo tables are strings, booleans
// and nulls (§1.6); a JSON number in a payload read back is refused, since
// the July rules carry every business number as a string.

// v1KeyColumn is the sync key column of the demo's v1 tables.
const v1KeyColumn = "id"

// v1Row is one row a source pushes. Payload is the row's after-image as
// canonical JSON (nil for DELETE); it is sent as is and hashed as is.
type v1Row struct {
	Table   string
	Key     string // the value of v1KeyColumn
	Op      string
	Base    int64 // base_row_version
	Payload []byte
}

// requestHash returns canonical_request_hash (§4.4) of rows pushed into schema.
func requestHash(schema string, rows []v1Row) string {
	return sha256Hex(appendRequestHashInput(nil, schema, rows))
}

// appendRequestHashInput appends the canonical array hashed by §4.4: per row,
// {"base_row_version","key","op","payload","row_ordinal","schema","table"}
// with the counters as decimal strings.
func appendRequestHashInput(b []byte, schema string, rows []v1Row) []byte {
	b = append(b, '[')
	for i, r := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"base_row_version":"`...)
		b = strconv.AppendInt(b, r.Base, 10)
		b = append(b, `","key":`...)
		b = appendKey(b, r.Key)
		b = append(b, `,"op":`...)
		b = appendJCSString(b, r.Op)
		b = append(b, `,"payload":`...)
		b = appendPayload(b, r.Payload)
		b = append(b, `,"row_ordinal":"`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `","schema":`...)
		b = appendJCSString(b, schema)
		b = append(b, `,"table":`...)
		b = appendJCSString(b, r.Table)
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendKey appends the key object {"id":"<value>"}.
func appendKey(b []byte, value string) []byte {
	b = append(b, `{"`+v1KeyColumn+`":`...)
	b = appendJCSString(b, value)
	return append(b, '}')
}

func appendPayload(b, payload []byte) []byte {
	if payload == nil {
		return append(b, "null"...)
	}
	return append(b, payload...)
}

// userPayload is the canonical after-image of an app.users row, the way
// SQLiteNow sends it: the int column as a string, the bool column as "1"/"0"
// (§1.6). Members are written in their sorted order.
func userPayload(b []byte, id, name, email string, visits int64, active bool) []byte {
	b = append(b, `{"active":`...)
	if active {
		b = append(b, `"1"`...)
	} else {
		b = append(b, `"0"`...)
	}
	b = append(b, `,"email":`...)
	b = appendJCSString(b, email)
	b = append(b, `,"id":`...)
	b = appendJCSString(b, id)
	b = append(b, `,"name":`...)
	b = appendJCSString(b, name)
	b = append(b, `,"visits":"`...)
	b = strconv.AppendInt(b, visits, 10)
	return append(b, `"}`...)
}

// wireRow is a bundle row as committed-rows and pull answers carry it (§3.7).
type wireRow struct {
	Schema     string          `json:"schema"`
	Table      string          `json:"table"`
	Key        json.RawMessage `json:"key"`
	Op         string          `json:"op"`
	RowVersion int64           `json:"row_version"`
	Payload    json.RawMessage `json:"payload"`
}

// bundleHasher computes bundle_hash (§4.3) over rows fed in bundle order,
// page by page.
type bundleHasher struct {
	buf []byte
	n   int
}

// add appends the next row's canonical object
// {"key","op","payload","row_ordinal","row_version","schema","table"}.
func (h *bundleHasher) add(r wireRow) error {
	if h.n == 0 {
		h.buf = append(h.buf[:0], '[')
	} else {
		h.buf = append(h.buf, ',')
	}
	var err error
	h.buf = append(h.buf, `{"key":`...)
	if h.buf, err = appendCanonical(h.buf, r.Key); err != nil {
		return fmt.Errorf("row %d key: %w", h.n, err)
	}
	h.buf = append(h.buf, `,"op":`...)
	h.buf = appendJCSString(h.buf, r.Op)
	h.buf = append(h.buf, `,"payload":`...)
	if len(r.Payload) == 0 {
		h.buf = append(h.buf, "null"...) // DELETE rows have no payload member
	} else if h.buf, err = appendCanonical(h.buf, r.Payload); err != nil {
		return fmt.Errorf("row %d payload: %w", h.n, err)
	}
	h.buf = append(h.buf, `,"row_ordinal":"`...)
	h.buf = strconv.AppendInt(h.buf, int64(h.n), 10)
	h.buf = append(h.buf, `","row_version":"`...)
	h.buf = strconv.AppendInt(h.buf, r.RowVersion, 10)
	h.buf = append(h.buf, `","schema":`...)
	h.buf = appendJCSString(h.buf, r.Schema)
	h.buf = append(h.buf, `,"table":`...)
	h.buf = appendJCSString(h.buf, r.Table)
	h.buf = append(h.buf, '}')
	h.n++
	return nil
}

// sum returns the hash of the rows added so far.
func (h *bundleHasher) sum() string {
	if h.n == 0 {
		return sha256Hex([]byte("[]"))
	}
	return sha256Hex(append(h.buf, ']'))
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// errNumber refuses JSON numbers where July payloads carry strings.
var errNumber = errors.New("a JSON number where the July value rules require a string")

// appendCanonical appends the canonical form of one JSON value read from a
// server answer: objects with members sorted by UTF-16 code units, strings
// with JCS escaping, literals as they are; numbers are refused (errNumber).
// It works on the bytes, without decoding into Go values: a string without
// escapes is already canonical and is copied as is, so verifying a bundle
// costs the load generator little.
func appendCanonical(b []byte, raw []byte) ([]byte, error) {
	c := canonParser{src: raw}
	b, err := c.value(b)
	if err != nil {
		return b, err
	}
	if c.space(); c.i != len(c.src) {
		return b, fmt.Errorf("data after the value at offset %d", c.i)
	}
	return b, nil
}

// canonParser reads one JSON text; i is the offset of the next byte.
type canonParser struct {
	src []byte
	i   int
}

// canonMember is an object member: its name and where its value lies.
type canonMember struct {
	name       string
	start, end int
}

func (c *canonParser) space() {
	for c.i < len(c.src) && (c.src[c.i] == ' ' || c.src[c.i] == '\t' || c.src[c.i] == '\n' || c.src[c.i] == '\r') {
		c.i++
	}
}

// value appends the canonical form of the value at c.i and moves past it.
func (c *canonParser) value(b []byte) ([]byte, error) {
	c.space()
	if c.i >= len(c.src) {
		return b, errors.New("unexpected end of JSON")
	}
	switch ch := c.src[c.i]; {
	case ch == '{':
		return c.object(b)
	case ch == '[':
		c.i++
		b = append(b, '[')
		for n := 0; ; n++ {
			if c.space(); n == 0 && c.i < len(c.src) && c.src[c.i] == ']' {
				c.i++
				return append(b, ']'), nil
			}
			if n > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = c.value(b); err != nil {
				return b, err
			}
			if done, err := c.next(']'); err != nil || done {
				return append(b, ']'), err
			}
		}
	case ch == '"':
		raw, escaped, err := c.str()
		if err != nil || !escaped {
			return append(b, raw...), err
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return b, fmt.Errorf("string at offset %d: %w", c.i, err)
		}
		return appendJCSString(b, s), nil
	case ch == '-' || ch >= '0' && ch <= '9':
		return b, fmt.Errorf("%w at offset %d", errNumber, c.i)
	}
	for _, lit := range []string{"true", "false", "null"} {
		if bytes.HasPrefix(c.src[c.i:], []byte(lit)) {
			c.i += len(lit)
			return append(b, lit...), nil
		}
	}
	return b, fmt.Errorf("invalid JSON at offset %d", c.i)
}

// object appends the object at c.i with its members in canonical order.
func (c *canonParser) object(b []byte) ([]byte, error) {
	c.i++ // '{'
	var buf [16]canonMember
	members := buf[:0]
	for n := 0; ; n++ {
		if c.space(); n == 0 && c.i < len(c.src) && c.src[c.i] == '}' {
			c.i++
			break
		}
		c.space()
		if c.i >= len(c.src) || c.src[c.i] != '"' {
			return b, fmt.Errorf("member name expected at offset %d", c.i)
		}
		raw, escaped, err := c.str()
		if err != nil {
			return b, err
		}
		name := string(raw[1 : len(raw)-1])
		if escaped {
			if err := json.Unmarshal(raw, &name); err != nil {
				return b, fmt.Errorf("member name at offset %d: %w", c.i, err)
			}
		}
		if _, err := c.next(':'); err != nil {
			return b, err
		}
		c.space()
		m := canonMember{name: name, start: c.i}
		if err := c.skip(); err != nil {
			return b, err
		}
		m.end = c.i
		members = append(members, m)
		if done, err := c.next('}'); err != nil {
			return b, err
		} else if done {
			break
		}
	}
	slices.SortFunc(members, func(x, y canonMember) int { return compareUTF16(x.name, y.name) })
	b = append(b, '{')
	for k, m := range members {
		if k > 0 {
			if members[k-1].name == m.name {
				return b, fmt.Errorf("duplicate member %q", m.name)
			}
			b = append(b, ',')
		}
		b = appendJCSString(b, m.name)
		b = append(b, ':')
		var err error
		if b, err = appendCanonical(b, c.src[m.start:m.end]); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// skip moves past the value at c.i, checking it as value does; strings, the
// common case, are passed over without being copied.
func (c *canonParser) skip() error {
	if c.i < len(c.src) && c.src[c.i] == '"' {
		_, _, err := c.str()
		return err
	}
	_, err := c.value(nil)
	return err
}

// next reads a ',' (false) or the closing byte (true) after an element.
func (c *canonParser) next(closing byte) (bool, error) {
	c.space()
	switch {
	case c.i < len(c.src) && c.src[c.i] == ',' && closing != ':':
		c.i++
		return false, nil
	case c.i < len(c.src) && c.src[c.i] == closing:
		c.i++
		return true, nil
	}
	return false, fmt.Errorf("%q expected at offset %d", closing, c.i)
}

// str returns the string token at c.i, quotes included, and whether it
// holds escapes. Without escapes its bytes are already RFC 8785's, since a
// JSON string cannot hold raw control characters.
func (c *canonParser) str() (raw []byte, escaped bool, err error) {
	start := c.i
	for c.i++; c.i < len(c.src); c.i++ {
		switch ch := c.src[c.i]; {
		case ch == '\\':
			escaped = true
			c.i++
		case ch == '"':
			c.i++
			return c.src[start:c.i], escaped, nil
		case ch < 0x20:
			return nil, false, fmt.Errorf("control character in a string at offset %d", c.i)
		}
	}
	return nil, false, errors.New("unterminated string")
}

// compareUTF16 orders strings by their UTF-16 code units, as RFC 8785 sorts
// member names: above U+FFFF this differs from byte order, since surrogates
// (U+D800…) sort below U+E000…U+FFFF.
func compareUTF16(a, b string) int {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			return cmp.Compare(utf16Units(ra), utf16Units(rb))
		}
		a, b = a[na:], b[nb:]
	}
	return cmp.Compare(len(a), len(b))
}

// utf16Units packs a rune's one or two UTF-16 code units so that integer order
// is code unit order.
func utf16Units(r rune) uint32 {
	if r < 0x10000 {
		return uint32(r) << 16
	}
	hi, lo := utf16.EncodeRune(r)
	return uint32(hi)<<16 | uint32(lo)
}

// appendJCSString appends s as an RFC 8785 string: only '"', '\\' and the
// control characters are escaped (the five short forms, else \u00xx in
// lowercase hex); everything else, '<', '>', '&', U+2028 and non-ASCII
// included, is written literally.
func appendJCSString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, `\b`...)
		case '\t':
			b = append(b, `\t`...)
		case '\n':
			b = append(b, `\n`...)
		case '\f':
			b = append(b, `\f`...)
		case '\r':
			b = append(b, `\r`...)
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
