package httpapi

import (
	"bytes"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// v1MaxDepth bounds the nesting of a v1 request body. Payload values are flat (§1.6 has no
// nested types clients can send), so this only stops a hostile body from recursing deep.
const v1MaxDepth = 32

// jsonReader is the strict JSON reader behind every v1 request body (docs/protocol-v1.md §2.4,
// §6.1 H7). It reads one document from a byte slice in a single pass, without reflection:
// callers walk objects member by member and take each value as the type they expect. Every
// refusal is a *jsonError whose text is safe to show the client; it never echoes a value.
//
// It accepts exactly RFC 8259 JSON in UTF-8: no comments, no trailing data, no invalid UTF-8
// in strings. Duplicate member names are refused at every depth: a body that means two things
// is never guessed at. Raw values (keys, payloads) are validated in full and returned as
// sub-slices of the input, so decoding a chunk copies nothing.
type jsonReader struct {
	b []byte
	i int
	// row, when ≥ 0, is the index of the chunk row being read: messages about its members
	// say rows[row].<member>. It is formatted only on failure, so reading costs nothing.
	row int
	// interned holds the strings str returned lately: the schema, table and op of a chunk's
	// rows repeat, and reusing them saves an allocation per row and member.
	interned [8]string
	next     int
}

// newJSONReader returns a reader of body.
func newJSONReader(body []byte) *jsonReader { return &jsonReader{b: body, row: -1} }

// where names a member in a message; "" names the current row itself.
func (d *jsonReader) where(name string) string {
	if d.row >= 0 && name == "" {
		return fmt.Sprintf("rows[%d]", d.row)
	}
	if d.row >= 0 {
		return fmt.Sprintf("rows[%d].%s", d.row, name)
	}
	return name
}

// jsonError is a body the reader refused: malformed JSON, a wrong JSON type, a duplicate or
// unknown member, an integer out of range.
type jsonError struct{ msg string }

func (e *jsonError) Error() string { return e.msg }

func (d *jsonReader) fail(format string, args ...any) error {
	return &jsonError{msg: fmt.Sprintf(format, args...)}
}

func (d *jsonReader) syntax(what string) error {
	if d.i >= len(d.b) {
		return d.fail("invalid JSON: unexpected end of body, expected %s", what)
	}
	return d.fail("invalid JSON at byte %d: expected %s", d.i, what)
}

func (d *jsonReader) skipSpace() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek skips white space and returns the next byte, 0 at the end (a NUL byte in the body
// also reads as 0, which no caller takes for valid JSON).
func (d *jsonReader) peek() byte {
	d.skipSpace()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// end checks that nothing but white space follows the document.
func (d *jsonReader) end() error {
	if d.skipSpace(); d.i < len(d.b) {
		return d.fail("invalid JSON at byte %d: data after the request's JSON value", d.i)
	}
	return nil
}

// object reads an object whose members the caller knows: each member's name is passed to
// member, which must consume the value. A name member does not know is refused (unknown
// member), and so is a name seen twice. where names the object in messages ("request",
// "rows[3]"). names are the members member accepts, in a fixed order; seen tracks them by
// index, so the duplicate check costs no allocation.
func (d *jsonReader) object(where string, names []string, member func(index int) error) error {
	if d.peek() != '{' {
		return d.fail("%s must be a JSON object", d.where(where))
	}
	d.i++
	var seen uint64
	if d.peek() == '}' {
		d.i++
		return nil
	}
	for {
		if d.peek() != '"' {
			return d.syntax("a member name")
		}
		name, err := d.stringBytes()
		if err != nil {
			return err
		}
		index := -1
		for k, n := range names {
			if string(name) == n {
				index = k
				break
			}
		}
		if index < 0 {
			return d.fail("%s has an unknown member %s", d.where(where), strconv.Quote(string(name)))
		}
		if seen&(1<<index) != 0 {
			return d.fail("%s has member %q twice", d.where(where), names[index])
		}
		seen |= 1 << index
		if d.peek() != ':' {
			return d.syntax("':'")
		}
		d.i++
		if err := member(index); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return nil
		default:
			return d.syntax("',' or '}'")
		}
	}
}

// array reads an array, calling elem for each element, which must consume it.
func (d *jsonReader) array(where string, elem func(index int) error) error {
	if d.peek() != '[' {
		return d.fail("%s must be a JSON array", d.where(where))
	}
	d.i++
	if d.peek() == ']' {
		d.i++
		return nil
	}
	for n := 0; ; n++ {
		if err := elem(n); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			return nil
		default:
			return d.syntax("',' or ']'")
		}
	}
}

// null consumes a null literal if one comes next and reports whether it did.
func (d *jsonReader) null() bool {
	if d.peek() == 'n' && bytes.HasPrefix(d.b[d.i:], []byte("null")) {
		d.i += 4
		return true
	}
	return false
}

// int64 reads a JSON integer token within int64: no fraction, no exponent, no quotes
// (docs/protocol-v1.md §2.4).
func (d *jsonReader) int64(where string) (int64, error) {
	c := d.peek()
	if c != '-' && (c < '0' || c > '9') {
		return 0, d.fail("%s must be a JSON integer", d.where(where))
	}
	start := d.i
	if err := d.number(); err != nil {
		return 0, err
	}
	tok := d.b[start:d.i]
	if bytes.ContainsAny(tok, ".eE") {
		return 0, d.fail("%s must be a JSON integer", d.where(where))
	}
	n, err := strconv.ParseInt(string(tok), 10, 64)
	if err != nil {
		return 0, d.fail("%s is outside the int64 range", d.where(where))
	}
	return n, nil
}

// boolean reads true or false.
func (d *jsonReader) boolean(where string) (bool, error) {
	switch d.peek() {
	case 't':
		if bytes.HasPrefix(d.b[d.i:], []byte("true")) {
			d.i += 4
			return true, nil
		}
	case 'f':
		if bytes.HasPrefix(d.b[d.i:], []byte("false")) {
			d.i += 5
			return false, nil
		}
	}
	return false, d.fail("%s must be a JSON boolean", d.where(where))
}

// str reads a JSON string and returns its value.
func (d *jsonReader) str(where string) (string, error) {
	if d.peek() != '"' {
		return "", d.fail("%s must be a JSON string", d.where(where))
	}
	b, err := d.stringBytes()
	if err != nil {
		return "", err
	}
	for _, s := range d.interned {
		if s == string(b) {
			return s, nil
		}
	}
	s := string(b)
	d.interned[d.next%len(d.interned)] = s
	d.next++
	return s, nil
}

// raw validates any JSON value and returns its text, a sub-slice of the input.
func (d *jsonReader) raw() ([]byte, error) {
	d.skipSpace()
	start := d.i
	if err := d.value(0); err != nil {
		return nil, err
	}
	return d.b[start:d.i], nil
}

// value validates one JSON value of any type, refusing duplicate member names in its objects.
func (d *jsonReader) value(depth int) error {
	if depth > v1MaxDepth {
		return d.fail("invalid JSON: nested deeper than %d levels", v1MaxDepth)
	}
	switch c := d.peek(); {
	case c == '{':
		return d.rawObject(depth)
	case c == '[':
		return d.array("value", func(int) error { return d.value(depth + 1) })
	case c == '"':
		return d.skipString()
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	case c == 't' || c == 'f':
		_, err := d.boolean("value")
		return err
	case c == 'n':
		if d.null() {
			return nil
		}
	}
	return d.syntax("a JSON value")
}

// rawObject validates an object of unknown members. Names are compared as decoded strings,
// so "a" and "\u0061" are the same member; objects are small (a payload's columns), and a
// linear scan over the names seen so far beats a map for them.
func (d *jsonReader) rawObject(depth int) error {
	d.i++ // '{'
	if d.peek() == '}' {
		d.i++
		return nil
	}
	var stack [16][]byte // most objects have fewer members: no allocation for them
	names := stack[:0]
	for {
		if d.peek() != '"' {
			return d.syntax("a member name")
		}
		name, err := d.stringBytes()
		if err != nil {
			return err
		}
		for _, n := range names {
			if bytes.Equal(n, name) {
				return d.fail("invalid JSON: member %s appears twice in an object", strconv.Quote(string(name)))
			}
		}
		names = append(names, name)
		if d.peek() != ':' {
			return d.syntax("':'")
		}
		d.i++
		if err := d.value(depth + 1); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return nil
		default:
			return d.syntax("',' or '}'")
		}
	}
}

// number validates a JSON number token.
func (d *jsonReader) number() error {
	b, i := d.b, d.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		d.i = i
		return d.syntax("a digit")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			d.i = i
			return d.syntax("a digit after '.'")
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			d.i = i
			return d.syntax("a digit in the exponent")
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	d.i = i
	return nil
}

// stringBytes reads a JSON string at d.i (which holds '"') and returns its decoded value. A
// string without escapes is returned as a sub-slice of the input; one with escapes is
// decoded into a new slice. Invalid UTF-8 and raw control characters are refused.
func (d *jsonReader) stringBytes() ([]byte, error) {
	b := d.b
	start := d.i + 1
	i := start
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			d.i = i + 1
			return b[start:i], nil
		case c == '\\':
			return d.escapedString(start, i)
		case c < 0x20:
			d.i = i
			return nil, d.fail("invalid JSON at byte %d: control character in a string", i)
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				d.i = i
				return nil, d.fail("invalid JSON at byte %d: invalid UTF-8 in a string", i)
			}
			i += size
		}
	}
	d.i = i
	return nil, d.syntax("the end of a string")
}

// skipString validates a JSON string at d.i (which holds '"') without decoding it: the
// values inside raw keys and payloads are kept as text, so there is nothing to build.
func (d *jsonReader) skipString() error {
	b := d.b
	i := d.i + 1
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			d.i = i + 1
			return nil
		case c == '\\':
			if i+1 >= len(b) {
				d.i = i + 1
				return d.syntax("an escape")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if _, ok := hex4(b, i+2); !ok {
					d.i = i + 2
					return d.syntax("four hex digits after \\u")
				}
				i += 6
			default:
				d.i = i
				return d.fail("invalid JSON at byte %d: invalid escape", i)
			}
		case c < 0x20:
			d.i = i
			return d.fail("invalid JSON at byte %d: control character in a string", i)
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				d.i = i
				return d.fail("invalid JSON at byte %d: invalid UTF-8 in a string", i)
			}
			i += size
		}
	}
	d.i = i
	return d.syntax("the end of a string")
}

// escapedString finishes a string that has an escape at b[i], copying what came before.
func (d *jsonReader) escapedString(start, i int) ([]byte, error) {
	b := d.b
	out := append(make([]byte, 0, i-start+16), b[start:i]...)
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			d.i = i + 1
			return out, nil
		case c == '\\':
			if i+1 >= len(b) {
				d.i = i + 1
				return nil, d.syntax("an escape")
			}
			i += 2
			switch b[i-1] {
			case '"', '\\', '/':
				out = append(out, b[i-1])
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := hex4(b, i)
				if !ok {
					d.i = i
					return nil, d.syntax("four hex digits after \\u")
				}
				i += 4
				if utf16.IsSurrogate(r) {
					// A pair decodes to one rune; a lone half stays as U+FFFD here. Raw
					// values keep their text, and the canonicaliser refuses lone halves.
					if r2, ok := hex4(b, i+2); ok && i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
						if p := utf16.DecodeRune(r, r2); p != utf8.RuneError {
							r = p
							i += 6
						}
					}
				}
				out = utf8.AppendRune(out, r)
			default:
				d.i = i - 1
				return nil, d.fail("invalid JSON at byte %d: invalid escape", i-1)
			}
		case c < 0x20:
			d.i = i
			return nil, d.fail("invalid JSON at byte %d: control character in a string", i)
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				d.i = i
				return nil, d.fail("invalid JSON at byte %d: invalid UTF-8 in a string", i)
			}
			out = append(out, b[i:i+size]...)
			i += size
		}
	}
	d.i = i
	return nil, d.syntax("the end of a string")
}

// hex4 decodes the four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i < 0 || i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
