package jcs

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// hex is the lowercase digit set RFC 8785 prescribes for \u00xx escapes.
const hexDigits = "0123456789abcdef"

// AppendString appends s as a JCS string literal: only '"', '\\' and U+0000–U+001F are escaped
// (\b \t \n \f \r in their short forms, the rest as \u00xx with lowercase hex); everything else,
// '/', DEL, U+2028/U+2029 and all non-ASCII included, is written literally. s should be valid
// UTF-8; an invalid byte is written as U+FFFD, so the output is always valid JSON.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b >= 0x20 && b != '"' && b != '\\' && b < utf8.RuneSelf {
			i++
			continue
		}
		if b >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, s[start:i]...)
				dst = append(dst, "\ufffd"...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		dst = append(dst, s[start:i]...)
		dst = appendEscapedASCII(dst, b)
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendEscapedASCII appends the JCS escape of b, which is '"', '\\' or a control character.
func appendEscapedASCII(dst []byte, b byte) []byte {
	switch b {
	case '"', '\\':
		return append(dst, '\\', b)
	case '\b':
		return append(dst, '\\', 'b')
	case '\t':
		return append(dst, '\\', 't')
	case '\n':
		return append(dst, '\\', 'n')
	case '\f':
		return append(dst, '\\', 'f')
	case '\r':
		return append(dst, '\\', 'r')
	}
	return append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
}

// appendRune appends r as it appears inside a JCS string literal.
func appendRune(dst []byte, r rune) []byte {
	if r < 0x20 || r == '"' || r == '\\' {
		return appendEscapedASCII(dst, byte(r))
	}
	return utf8.AppendRune(dst, r)
}

// minFixed and maxFixed bound the magnitudes ECMAScript Number::toString writes without an
// exponent: 1e-6 ≤ |f| < 1e21. Both are the binary64 values nearest the decimal constants, and
// 1e21 is exact, so comparing the value is the same as comparing its shortest decimal form.
const (
	minFixed = 1e-6
	maxFixed = 1e21
)

// AppendNumber appends f in the ECMAScript Number::toString form RFC 8785 uses: the shortest
// decimal that round-trips to f, without exponent for 1e-6 ≤ |f| < 1e21 ("100", "0.5",
// "0.000001", "100000000000000000000"), with one otherwise ("1e+21", "1e-7", "5e-324",
// "1.7976931348623157e+308"). Both zeros are written "0". NaN and the infinities have no JSON
// form; they are written "null", as ECMAScript's JSON.stringify does, and callers that must
// refuse them check before calling.
func AppendNumber(dst []byte, f float64) []byte {
	switch {
	case f == 0:
		return append(dst, '0')
	case math.IsNaN(f) || math.IsInf(f, 0):
		return append(dst, "null"...)
	}
	if abs := math.Abs(f); abs >= minFixed && abs < maxFixed {
		return strconv.AppendFloat(dst, f, 'f', -1, 64)
	}
	// Go writes at least two exponent digits ("1e-07"); ECMAScript writes no leading zeros.
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, 'e', -1, 64)
	e := start
	for dst[e] != 'e' {
		e++
	}
	if dst[e+2] == '0' {
		copy(dst[e+2:], dst[e+3:])
		dst = dst[:len(dst)-1]
	}
	return dst
}
