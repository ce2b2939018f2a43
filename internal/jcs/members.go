package jcs

import "iter"

// Members iterates over the members of a canonical JSON object, in order: each member's name as
// it is spelled between the quotes (which is the name itself unless it holds a character JCS
// escapes: '"', '\\' or a control character) and its value's canonical bytes. canonical must
// be the output of Canonicalize or AppendCanonical, which guarantees the single-pass walk has no
// whitespace or syntax to check; any other value, or canonical text that is not an object,
// yields nothing. The yielded slices share memory with canonical.
//
// It lets callers that canonicalise a payload anyway validate its members without decoding it a
// second time into maps.
func Members(canonical []byte) iter.Seq2[[]byte, []byte] {
	return func(yield func(name, value []byte) bool) {
		if len(canonical) < 2 || canonical[0] != '{' {
			return
		}
		for pos := 1; pos < len(canonical) && canonical[pos] == '"'; {
			nameEnd := skipString(canonical, pos)
			valueStart := nameEnd + 1 // past ':'
			valueEnd := skipValue(canonical, valueStart)
			if !yield(canonical[pos+1:nameEnd-1], canonical[valueStart:valueEnd]) {
				return
			}
			pos = valueEnd + 1 // past ',' or the closing '}'
		}
	}
}

// skipString returns the offset just past the string token that starts at in[pos] ('"').
func skipString(in []byte, pos int) int {
	for i := pos + 1; i < len(in); i++ {
		switch in[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(in)
}

// skipValue returns the offset just past the canonical value that starts at in[pos].
func skipValue(in []byte, pos int) int {
	depth := 0
	for i := pos; i < len(in); {
		switch in[i] {
		case '"':
			i = skipString(in, i)
			if depth == 0 {
				return i
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',':
			if depth == 0 {
				return i
			}
		}
		i++
	}
	return len(in)
}
