package httpapi

import (
	"net/url"
	"strconv"
)

// queryInt reads the optional integer query parameter name: def when it is absent or empty.
// A value that is not a base-10 int64, or a parameter given twice, is refused with a message
// naming it; unknown parameters are ignored, as the reference ignores them.
func queryInt(q url.Values, name string, def int64) (int64, string) {
	vs := q[name]
	switch {
	case len(vs) == 0 || (len(vs) == 1 && vs[0] == ""):
		return def, ""
	case len(vs) > 1:
		return 0, name + " must be given once"
	}
	n, err := strconv.ParseInt(vs[0], 10, 64)
	if err != nil {
		return 0, name + " must be an integer"
	}
	return n, ""
}

// queryInts reads several integer parameters in order and stops at the first refusal.
type queryInts struct {
	q   url.Values
	msg string
}

// get reads name (def when absent) and reports whether every read so far succeeded; once one
// fails, later reads return 0 and keep the first message.
func (p *queryInts) get(name string, def int64) int64 {
	if p.msg != "" {
		return 0
	}
	n, msg := queryInt(p.q, name, def)
	p.msg = msg
	return n
}
