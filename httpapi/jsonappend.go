package httpapi

import (
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// appendString appends s to b as a JSON string, escaped exactly as encoding/json's default
// encoder (json.Marshal) escapes it, so that the hand-written encoders of this package produce
// the same bytes the reference server did:
//
//   - '"' and '\\' are backslash-escaped; \n, \r, \t, \b and \f use their short forms and the
//     other control characters \u00XX;
//   - '<', '>' and '&' become \u003c, \u003e and \u0026, U+2028 and U+2029 become \u2028 and
//     \u2029;
//   - every byte that is not part of a valid UTF-8 sequence is replaced by \ufffd, one per byte.
//
// The result is therefore always valid JSON, whatever s holds. Invalid UTF-8 is not expected
// here (upload bodies are checked to be UTF-8, and PostgreSQL text is UTF-8), but a replacement
// character is the only answer that keeps the page decodable by every client.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0 // s[start:i] is pending, to be copied as is
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if !asciiNeedsEscape(c) {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default: // other control characters, '<', '>', '&'
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// asciiNeedsEscape reports whether the ASCII byte c cannot appear as is inside a JSON string
// written by encoding/json's default encoder.
func asciiNeedsEscape(c byte) bool {
	return c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&'
}

// appendBool appends the JSON literal for v.
func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, "true"...)
	}
	return append(b, "false"...)
}
