package jcs

import (
	"cmp"
	"slices"
	"strconv"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// Canonicalize returns the RFC 8785 canonical form of the JSON text in. Errors are *Error values
// wrapping ErrSyntax, ErrTrailingData, ErrDuplicateName, ErrInvalidUnicode, ErrNumberRange or
// ErrTooDeep.
func Canonicalize(in []byte) ([]byte, error) {
	return AppendCanonical(make([]byte, 0, len(in)), in)
}

// AppendCanonical appends the RFC 8785 canonical form of the JSON text in to dst. On error it
// returns dst unchanged (its spare capacity may have been written) and an *Error.
func AppendCanonical(dst, in []byte) ([]byte, error) {
	c := canonPool.Get().(*canon)
	c.in, c.pos, c.out = in, 0, dst
	err := c.document()
	out := c.out
	c.release()
	if err != nil {
		return dst, err
	}
	return out, nil
}

// canon is the state of one canonicalisation. The stacks it keeps for open objects are reused
// through canonPool, so canonicalising a small payload allocates nothing beyond its output.
type canon struct {
	in    []byte
	pos   int
	out   []byte
	depth int
	// names holds the unescaped member names of all open objects, back to back.
	names []byte
	// members holds the members of all open objects, innermost last.
	members []member
	// tmp is scratch space for reordering one object's members.
	tmp []byte
}

// member is one object member already written to out: its canonical bytes `"name":value` are
// out[start:end] and its unescaped name names[nameStart:nameEnd].
type member struct {
	nameStart, nameEnd int
	start, end         int
}

var canonPool = sync.Pool{New: func() any { return new(canon) }}

// maxPooledScratch is the largest scratch buffer returned to the pool; a rare huge document
// should not pin its memory for the life of the process.
const maxPooledScratch = 64 << 10

func (c *canon) release() {
	c.in, c.out = nil, nil
	c.depth = 0
	if cap(c.names) > maxPooledScratch || cap(c.tmp) > maxPooledScratch || cap(c.members) > maxPooledScratch/32 {
		return
	}
	c.names, c.members, c.tmp = c.names[:0], c.members[:0], c.tmp[:0]
	canonPool.Put(c)
}

func (c *canon) fail(err error, detail string) error {
	return &Error{Err: err, Offset: c.pos, Detail: detail}
}

func (c *canon) document() error {
	if err := c.value(); err != nil {
		return err
	}
	c.skipSpace()
	if c.pos < len(c.in) {
		return c.fail(ErrTrailingData, "")
	}
	return nil
}

func (c *canon) skipSpace() {
	for c.pos < len(c.in) {
		switch c.in[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

func (c *canon) value() error {
	c.skipSpace()
	if c.pos >= len(c.in) {
		return c.fail(ErrSyntax, "unexpected end of input")
	}
	switch b := c.in[c.pos]; b {
	case '{':
		return c.object()
	case '[':
		return c.array()
	case '"':
		return c.str(false)
	case 't':
		return c.literal("true")
	case 'f':
		return c.literal("false")
	case 'n':
		return c.literal("null")
	default:
		if b == '-' || (b >= '0' && b <= '9') {
			return c.number()
		}
		return c.fail(ErrSyntax, "unexpected character "+strconv.QuoteRune(rune(b)))
	}
}

func (c *canon) literal(word string) error {
	if len(c.in)-c.pos < len(word) || string(c.in[c.pos:c.pos+len(word)]) != word {
		return c.fail(ErrSyntax, "invalid literal")
	}
	c.pos += len(word)
	c.out = append(c.out, word...)
	return nil
}

func (c *canon) enter() error {
	c.depth++
	if c.depth > MaxDepth {
		return c.fail(ErrTooDeep, "")
	}
	return nil
}

func (c *canon) array() error {
	if err := c.enter(); err != nil {
		return err
	}
	c.pos++
	c.out = append(c.out, '[')
	c.skipSpace()
	if c.pos < len(c.in) && c.in[c.pos] == ']' {
		c.pos++
		c.out = append(c.out, ']')
		c.depth--
		return nil
	}
	for {
		if err := c.value(); err != nil {
			return err
		}
		c.skipSpace()
		if c.pos >= len(c.in) {
			return c.fail(ErrSyntax, "unterminated array")
		}
		switch c.in[c.pos] {
		case ',':
			c.pos++
			c.out = append(c.out, ',')
		case ']':
			c.pos++
			c.out = append(c.out, ']')
			c.depth--
			return nil
		default:
			return c.fail(ErrSyntax, "expected ',' or ']'")
		}
	}
}

// object writes the members in input order and records them; only when their names arrive out of
// order (or repeat) does it sort them and rewrite the object, so canonical input costs no copy.
func (c *canon) object() error {
	if err := c.enter(); err != nil {
		return err
	}
	c.pos++
	c.out = append(c.out, '{')
	body := len(c.out)
	base, nameBase := len(c.members), len(c.names)
	defer func() { c.members, c.names = c.members[:base], c.names[:nameBase] }()

	c.skipSpace()
	if c.pos < len(c.in) && c.in[c.pos] == '}' {
		c.pos++
		c.out = append(c.out, '}')
		c.depth--
		return nil
	}
	ordered := true
	for {
		c.skipSpace()
		if c.pos >= len(c.in) || c.in[c.pos] != '"' {
			return c.fail(ErrSyntax, "expected a member name")
		}
		if len(c.members) > base {
			c.out = append(c.out, ',')
		}
		m := member{nameStart: len(c.names), start: len(c.out)}
		namePos := c.pos
		if err := c.str(true); err != nil {
			return err
		}
		m.nameEnd = len(c.names)
		if len(c.members) > base && ordered {
			prev := c.members[len(c.members)-1]
			switch compareUTF16(c.names[prev.nameStart:prev.nameEnd], c.names[m.nameStart:m.nameEnd]) {
			case 0:
				c.pos = namePos
				return c.fail(ErrDuplicateName, strconv.Quote(string(c.names[m.nameStart:m.nameEnd])))
			case 1:
				ordered = false
			}
		}
		c.skipSpace()
		if c.pos >= len(c.in) || c.in[c.pos] != ':' {
			return c.fail(ErrSyntax, "expected ':'")
		}
		c.pos++
		c.out = append(c.out, ':')
		if err := c.value(); err != nil {
			return err
		}
		m.end = len(c.out)
		c.members = append(c.members, m)

		c.skipSpace()
		if c.pos >= len(c.in) {
			return c.fail(ErrSyntax, "unterminated object")
		}
		if c.in[c.pos] == ',' {
			c.pos++
			continue
		}
		if c.in[c.pos] != '}' {
			return c.fail(ErrSyntax, "expected ',' or '}'")
		}
		break
	}
	if !ordered {
		if err := c.reorder(base, body); err != nil {
			return err
		}
	}
	c.pos++
	c.out = append(c.out, '}')
	c.depth--
	return nil
}

// reorder sorts the members of the object whose body starts at out[body] and rewrites the body in
// that order, refusing duplicate names.
func (c *canon) reorder(base, body int) error {
	ms := c.members[base:]
	slices.SortFunc(ms, func(a, b member) int {
		return compareUTF16(c.names[a.nameStart:a.nameEnd], c.names[b.nameStart:b.nameEnd])
	})
	for i := 1; i < len(ms); i++ {
		name := c.names[ms[i].nameStart:ms[i].nameEnd]
		if string(c.names[ms[i-1].nameStart:ms[i-1].nameEnd]) == string(name) {
			return c.fail(ErrDuplicateName, strconv.Quote(string(name)))
		}
	}
	c.tmp = append(c.tmp[:0], c.out[body:]...)
	c.out = c.out[:body]
	for i, m := range ms {
		if i > 0 {
			c.out = append(c.out, ',')
		}
		c.out = append(c.out, c.tmp[m.start-body:m.end-body]...)
	}
	return nil
}

// compareUTF16 orders two UTF-8 strings as their UTF-16 code unit sequences, as RFC 8785 §3.2.3
// sorts member names. UTF-8 byte order is code point order, which agrees with UTF-16 order except
// between a character above U+FFFF (a surrogate pair, D800–DFFF) and one in U+E000–U+FFFF, so
// only the first differing character needs a closer look.
func compareUTF16(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	if i == n {
		return cmp.Compare(len(a), len(b))
	}
	if a[i] < utf8.RuneSelf && b[i] < utf8.RuneSelf {
		return cmp.Compare(a[i], b[i])
	}
	for i > 0 && !utf8.RuneStart(a[i]) {
		i--
	}
	ra, _ := utf8.DecodeRune(a[i:])
	rb, _ := utf8.DecodeRune(b[i:])
	if c := cmp.Compare(firstUnit(ra), firstUnit(rb)); c != 0 {
		return c
	}
	return cmp.Compare(ra, rb)
}

// firstUnit is the first UTF-16 code unit of r.
func firstUnit(r rune) rune {
	if r < 0x10000 {
		return r
	}
	hi, _ := utf16.EncodeRune(r)
	return hi
}

// str copies one string literal to out in canonical form; a member name is also appended,
// unescaped, to names.
func (c *canon) str(name bool) error {
	c.pos++
	c.out = append(c.out, '"')
	for {
		i := c.pos
		for i < len(c.in) {
			b := c.in[i]
			if b < 0x20 || b == '"' || b == '\\' || b >= utf8.RuneSelf {
				break
			}
			i++
		}
		c.out = append(c.out, c.in[c.pos:i]...)
		if name {
			c.names = append(c.names, c.in[c.pos:i]...)
		}
		c.pos = i
		if i >= len(c.in) {
			return c.fail(ErrSyntax, "unterminated string")
		}
		switch b := c.in[i]; {
		case b == '"':
			c.pos++
			c.out = append(c.out, '"')
			return nil
		case b < 0x20:
			return c.fail(ErrSyntax, "control character in string")
		case b >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(c.in[i:])
			if r == utf8.RuneError && size == 1 {
				return c.fail(ErrInvalidUnicode, "invalid UTF-8")
			}
			c.out = append(c.out, c.in[i:i+size]...)
			if name {
				c.names = append(c.names, c.in[i:i+size]...)
			}
			c.pos += size
		default:
			r, err := c.escape()
			if err != nil {
				return err
			}
			c.out = appendRune(c.out, r)
			if name {
				c.names = utf8.AppendRune(c.names, r)
			}
		}
	}
}

// escape decodes the escape sequence at pos, joining a \u surrogate pair into one character.
func (c *canon) escape() (rune, error) {
	if c.pos+1 >= len(c.in) {
		return 0, c.fail(ErrSyntax, "unterminated string")
	}
	var r rune
	switch c.in[c.pos+1] {
	case '"':
		r = '"'
	case '\\':
		r = '\\'
	case '/':
		r = '/'
	case 'b':
		r = '\b'
	case 'f':
		r = '\f'
	case 'n':
		r = '\n'
	case 'r':
		r = '\r'
	case 't':
		r = '\t'
	case 'u':
		return c.unicodeEscape()
	default:
		return 0, c.fail(ErrSyntax, "invalid escape")
	}
	c.pos += 2
	return r, nil
}

func (c *canon) unicodeEscape() (rune, error) {
	r, ok := hex4(c.in, c.pos+2)
	if !ok {
		return 0, c.fail(ErrSyntax, "invalid \\u escape")
	}
	if !utf16.IsSurrogate(r) {
		c.pos += 6
		return r, nil
	}
	if r >= 0xdc00 {
		return 0, c.fail(ErrInvalidUnicode, "lone low surrogate")
	}
	lo, ok := rune(0), false
	if next := c.pos + 6; next+1 < len(c.in) && c.in[next] == '\\' && c.in[next+1] == 'u' {
		lo, ok = hex4(c.in, next+2)
	}
	if !ok || lo < 0xdc00 || lo > 0xdfff {
		return 0, c.fail(ErrInvalidUnicode, "lone high surrogate")
	}
	c.pos += 12
	return utf16.DecodeRune(r, lo), nil
}

// hex4 reads four hex digits at in[at:].
func hex4(in []byte, at int) (rune, bool) {
	if at+4 > len(in) {
		return 0, false
	}
	var r rune
	for _, b := range in[at : at+4] {
		switch {
		case b >= '0' && b <= '9':
			b -= '0'
		case b >= 'a' && b <= 'f':
			b -= 'a' - 10
		case b >= 'A' && b <= 'F':
			b -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(b)
	}
	return r, true
}

// maxExactDigits is the most digits an integer literal may have to be copied through unchanged:
// every integer below 10^15 is exact in binary64 and ECMAScript writes it as plain digits.
const maxExactDigits = 15

// digitRun returns the end of the run of ASCII digits that starts at in[i], and whether the run
// has at least one digit.
func digitRun(in []byte, i int) (end int, ok bool) {
	end = i
	for end < len(in) && in[end] >= '0' && in[end] <= '9' {
		end++
	}
	return end, end > i
}

// number checks the RFC 8259 number grammar and writes the value's ECMAScript form.
func (c *canon) number() error {
	in, start := c.in, c.pos
	i := start
	if in[i] == '-' {
		i++
	}
	digits := i
	end, ok := digitRun(in, i)
	switch {
	case ok && in[i] == '0':
		i++
	case ok:
		i = end
	default:
		c.pos = i
		return c.fail(ErrSyntax, "invalid number")
	}
	plain := i-digits <= maxExactDigits
	if i < len(in) && in[i] == '.' {
		if i, ok = digitRun(in, i+1); !ok {
			c.pos = i
			return c.fail(ErrSyntax, "invalid number")
		}
		plain = false
	}
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		i++
		if i < len(in) && (in[i] == '+' || in[i] == '-') {
			i++
		}
		if i, ok = digitRun(in, i); !ok {
			c.pos = i
			return c.fail(ErrSyntax, "invalid number")
		}
		plain = false
	}
	text := in[start:i]
	if plain && !(len(text) == 2 && text[0] == '-' && text[1] == '0') {
		c.out = append(c.out, text...)
		c.pos = i
		return nil
	}
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil {
		// The grammar is checked, so the only failure left is overflow; underflow rounds to
		// zero without error, as in ECMAScript.
		return c.fail(ErrNumberRange, "")
	}
	c.pos = i
	c.out = AppendNumber(c.out, f)
	return nil
}
