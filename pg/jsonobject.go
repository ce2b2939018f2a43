package pg

import (
	"encoding/json"
	"errors"
)

// errNotCompactObject reports input eachField cannot walk; validated, compacted payloads never
// produce it.
var errNotCompactObject = errors.New("not a compact JSON object")

// eachField calls fn with the key and raw value of every member of obj, in order, without
// allocating for plain keys. obj must be a valid JSON object without insignificant white space,
// as json.Compact leaves it: every payload the store keeps is one.
func eachField(obj []byte, fn func(key string, value []byte)) error {
	if len(obj) < 2 || obj[0] != '{' || obj[len(obj)-1] != '}' {
		return errNotCompactObject
	}
	last := len(obj) - 1 // the closing brace
	for i := 1; i < last; {
		end := stringEnd(obj, i)
		if end < 0 || end+1 >= last || obj[end+1] != ':' {
			return errNotCompactObject
		}
		key := obj[i : end+1]
		next := valueEnd(obj, end+2)
		if next < 0 || next > last {
			return errNotCompactObject
		}
		fn(keyText(key), obj[end+2:next])
		switch {
		case next == last:
			i = next
		case obj[next] == ',' && next+1 < last:
			i = next + 1
		default:
			return errNotCompactObject
		}
	}
	return nil
}

// keyText returns a quoted JSON string's text; only keys with escapes need decoding.
func keyText(quoted []byte) string {
	for _, c := range quoted {
		if c == '\\' {
			var s string
			_ = json.Unmarshal(quoted, &s)
			return s
		}
	}
	return string(quoted[1 : len(quoted)-1])
}

// stringEnd returns the index of the closing quote of the JSON string starting at b[i], or -1.
func stringEnd(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j
		}
	}
	return -1
}

// valueEnd returns the index just past the JSON value starting at b[i], or -1.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		if end := stringEnd(b, i); end >= 0 {
			return end + 1
		}
		return -1
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				if j = stringEnd(b, j); j < 0 {
					return -1
				}
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	for j := i; j < len(b); j++ { // a number or a literal runs to the next separator
		if b[j] == ',' || b[j] == '}' || b[j] == ']' {
			return j
		}
	}
	return -1
}
