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
	d.i++ // '{'
	var seen uint64
	for first := true; ; first = false {
		name, ok, err := d.memberName(first)
		if !ok || err != nil {
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
		if err := d.colon(); err != nil {
			return err
		}
		if err := member(index); err != nil {
			return err
		}
	}
}

// request reads the whole body as one object whose members are names (see object), with
// nothing after it: the shape of every v1 request body.
func (d *jsonReader) request(names []string, member func(index int) error) error {
	if err := d.object("request", names, member); err != nil {
		return err
	}
	return d.end()
}

// memberName reads the name of an object's next member: the first, right after the '{',
// or one after a member's value and its ','. ok is false, with no error, when the object
// closes instead. The caller judges the name before it reads the ':' (colon), so a refused
// name is what a body hears about first.
func (d *jsonReader) memberName(first bool) (name []byte, ok bool, err error) {
	if first && d.peek() == '}' {
		d.i++
		return nil, false, nil
	}
	if !first {
		if done, err := d.commaOr('}'); done || err != nil {
			return nil, false, err
		}
	}
	if d.peek() != '"' {
		return nil, false, d.syntax("a member name")
	}
	name, err = d.readString(true)
	return name, err == nil, err
}

// colon consumes the ':' between a member's name and its value.
func (d *jsonReader) colon() error {
	if d.peek() != ':' {
		return d.syntax("':'")
	}
	d.i++
	return nil
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
		if done, err := d.commaOr(']'); done || err != nil {
			return err
		}
	}
}

// commaOr consumes what follows an object member or an array element: ',' before another one,
// or closing, which ends the container and makes done true.
func (d *jsonReader) commaOr(closing byte) (done bool, err error) {
	switch d.peek() {
	case ',':
		d.i++
		return false, nil
	case closing:
		d.i++
		return true, nil
	}
	return false, d.syntax("',' or '" + string(closing) + "'")
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
	b, err := d.readString(true)
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
		_, err := d.readString(false)
		return err
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
	d.i++                // '{'
	var stack [16][]byte // most objects have fewer members: no allocation for them
	names := stack[:0]
	for first := true; ; first = false {
		name, ok, err := d.memberName(first)
		if !ok || err != nil {
			return err
		}
		for _, n := range names {
			if bytes.Equal(n, name) {
				return d.fail("invalid JSON: member %s appears twice in an object", strconv.Quote(string(name)))
			}
		}
		names = append(names, name)
		if err := d.colon(); err != nil {
			return err
		}
		if err := d.value(depth + 1); err != nil {
			return err
		}
	}
}

// number validates a JSON number token.
func (d *jsonReader) number() error {
	b, i := d.b, d.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	end, ok := digitRun(b, i)
	switch {
	case ok && b[i] == '0':
		i++
	case ok:
		i = end
	default:
		d.i = i
		return d.syntax("a digit")
	}
	if i < len(b) && b[i] == '.' {
		if i, ok = digitRun(b, i+1); !ok {
			d.i = i
			return d.syntax("a digit after '.'")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i, ok = digitRun(b, i); !ok {
			d.i = i
			return d.syntax("a digit in the exponent")
		}
	}
	d.i = i
	return nil
}

// digitRun returns the end of the run of ASCII digits that starts at b[i], and whether the run
// has at least one digit.
func digitRun(b []byte, i int) (end int, ok bool) {
	end = i
	for end < len(b) && b[end] >= '0' && b[end] <= '9' {
		end++
	}
	return end, end > i
}

// readString reads a JSON string at d.i (which holds '"'). With decode it returns the
// string's value: a sub-slice of the input when the string has no escapes, a new slice when
// it has. Without, it only validates: the values inside raw keys and payloads are kept as
// text, so there is nothing to build. Invalid UTF-8, raw control characters and malformed
// escapes are refused.
func (d *jsonReader) readString(decode bool) ([]byte, error) {
	start := d.i + 1
	if i := plainRun(d.b, start); i < len(d.b) && d.b[i] == '"' { // most strings: plain ASCII
		d.i = i + 1
		return d.b[start:i], nil
	}
	return d.readRestOfString(start, decode)
}

// readRestOfString is readString for a string with escapes, control characters or
// multi-byte characters; start is the index after its opening quote.
func (d *jsonReader) readRestOfString(start int, decode bool) ([]byte, error) {
	b := d.b
	i, from := start, start // from: the first byte not yet copied into out
	var out []byte          // the decoded value, from the first escape on
	for i = plainRun(b, i); i < len(b); i = plainRun(b, i) {
		switch b[i] {
		case '"':
			d.i = i + 1
			if out == nil {
				return b[start:i], nil
			}
			return append(out, b[from:i]...), nil
		case '\\':
			r, n, err := d.escape(i)
			if err != nil {
				return nil, err
			}
			if decode {
				if out == nil {
					out = make([]byte, 0, i-start+16)
				}
				out = utf8.AppendRune(append(out, b[from:i]...), r)
			}
			i, from = n, n
		default: // a control character or a multi-byte one
			n, err := d.stringChar(i)
			if err != nil {
				return nil, err
			}
			i = n
		}
	}
	d.i = i
	return nil, d.syntax("the end of a string")
}

// plainRun returns the index of the first byte from i on that a string's reader must look
// at: a quote, a backslash, a control character or the start of a multi-byte character.
// Printable ASCII, most of every body, passes in this one tight loop.
func plainRun(b []byte, i int) int {
	for i < len(b) {
		if c := b[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
			return i
		}
		i++
	}
	return i
}

// stringChar checks the unescaped character at b[i] of a string that is not printable ASCII
// and returns the index after it: a raw control character or invalid UTF-8 is refused.
func (d *jsonReader) stringChar(i int) (int, error) {
	if d.b[i] < 0x20 {
		d.i = i
		return 0, d.fail("invalid JSON at byte %d: control character in a string", i)
	}
	r, size := utf8.DecodeRune(d.b[i:])
	if r == utf8.RuneError && size == 1 {
		d.i = i
		return 0, d.fail("invalid JSON at byte %d: invalid UTF-8 in a string", i)
	}
	return i + size, nil
}

// escape decodes the escape at b[i] (a '\\') and returns its rune and the index after it. A
// surrogate pair decodes to one rune; a lone half is returned as it is, which
// utf8.AppendRune writes as U+FFFD: raw values keep their text, and the canonicaliser
// refuses lone halves.
func (d *jsonReader) escape(i int) (rune, int, error) {
	b := d.b
	if i+1 >= len(b) {
		d.i = i + 1
		return 0, 0, d.syntax("an escape")
	}
	switch b[i+1] {
	case '"', '\\', '/':
		return rune(b[i+1]), i + 2, nil
	case 'b':
		return '\b', i + 2, nil
	case 'f':
		return '\f', i + 2, nil
	case 'n':
		return '\n', i + 2, nil
	case 'r':
		return '\r', i + 2, nil
	case 't':
		return '\t', i + 2, nil
	case 'u':
		r, ok := hex4(b, i+2)
		if !ok {
			d.i = i + 2
			return 0, 0, d.syntax("four hex digits after \\u")
		}
		i += 6
		if utf16.IsSurrogate(r) && i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
			if r2, ok := hex4(b, i+2); ok {
				if p := utf16.DecodeRune(r, r2); p != utf8.RuneError {
					return p, i + 6, nil
				}
			}
		}
		return r, i, nil
	}
	d.i = i
	return 0, 0, d.fail("invalid JSON at byte %d: invalid escape", i)
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
