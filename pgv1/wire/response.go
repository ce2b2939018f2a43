package wire

import (
	"math"
	"strconv"

	"github.com/pulsesync/pulsesync/internal/jcs"
)

// AppendWireValue appends the canonical JSON token a read endpoint serves for one column value:
// text is what the column's RenderSQL expression returned, isNull whether it was NULL. Strings
// are escaped with jcs.AppendString, bool is true or false, and float text is re-rendered as the
// ECMAScript shortest spelling (PostgreSQL prints "1e+20" where the protocol wants
// "100000000000000000000"), so the token is exactly what the bundle hash covers
// (docs/protocol-v1.md §1.6, §4.3).
//
// A float NaN or infinity, which only a write outside the protocol can store, has no ECMAScript
// spelling; it is served as PostgreSQL's text ("NaN", "Infinity"), which clients refuse.
func AppendWireValue(dst []byte, k Kind, text string, isNull bool) []byte {
	if isNull {
		return append(dst, "null"...)
	}
	switch k {
	case KindBool:
		if text == "true" || text == "t" {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case KindFloat4, KindFloat8:
		if f, err := strconv.ParseFloat(text, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			dst = append(dst, '"')
			dst = jcs.AppendNumber(dst, f)
			return append(dst, '"')
		}
	}
	return jcs.AppendString(dst, text)
}
