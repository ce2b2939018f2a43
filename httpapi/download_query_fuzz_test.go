package httpapi

import (
	"net/url"
	"strconv"
	"testing"
	"time"
)

// downloadQueryMessages are the only refusals GET /sync/download may give for its parameters
// (docs/protocol-v0.md §4.1, and wait for the long-poll).
var downloadQueryMessages = map[string]bool{
	"after must be an integer":         true,
	"after must be >= 0":               true,
	"limit must be an integer":         true,
	"limit must be between 1 and 1000": true,
	"invalid schema name":              true,
	"until must be an integer":         true,
	"until must be >= 0":               true,
	"wait must be an integer":          true,
	"wait must be between 0 and 60":    true,
}

// FuzzParseDownloadQuery feeds raw query strings, parsed as the router parses them, to the
// download's parameter checks. It checks that they never panic, that every refusal is one of
// the documented messages, that an accepted query is within the documented bounds, and that it
// survives a round trip: written back as a query and parsed again, it is the same query.
func FuzzParseDownloadQuery(f *testing.F) {
	for _, s := range []string{
		"", "after=0", "after=5&limit=10", "after=-1", "after=x", "limit=0", "limit=1001", "limit=1000",
		"schema=business", "schema=Business", "schema=a%00b", "include_self=true&until=7", "until=-3",
		"after=9223372036854775807&until=9223372036854775807", "after=9223372036854775808",
		"after=1&after=x", "after=&limit=", "wait=60", "wait=61", "wait=-1", "wait=1e1", "after=+5",
		"after=%zz", "a;b=c", "limit=+0010", "schema=%E2%80%8B",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, _ := url.ParseQuery(raw) // as r.URL.Query: a malformed pair is dropped, the rest kept
		q, message := parseDownloadQuery(v)
		wait, waitMessage := parseWait(v)
		for _, m := range []string{message, waitMessage} {
			if m != "" && !downloadQueryMessages[m] {
				t.Fatalf("query %q refused with %q, not a documented message", raw, m)
			}
		}
		if waitMessage == "" && (wait < 0 || wait > maxWait*time.Second) {
			t.Fatalf("query %q accepted with wait %v, want 0 to %d s", raw, wait, maxWait)
		}
		if message != "" {
			return
		}
		switch {
		case q.After < 0 || q.Until < 0:
			t.Fatalf("query %q accepted with after %d, until %d; want both >= 0", raw, q.After, q.Until)
		case q.Limit < 1 || q.Limit > maxDownloadLimit:
			t.Fatalf("query %q accepted with limit %d, want 1 to %d", raw, q.Limit, maxDownloadLimit)
		case q.Schema != "" && !schemaPattern.MatchString(q.Schema):
			t.Fatalf("query %q accepted with schema %q, which breaks the schema rule", raw, q.Schema)
		}
		again := url.Values{
			"after":  {strconv.FormatInt(q.After, 10)},
			"limit":  {strconv.Itoa(q.Limit)},
			"schema": {q.Schema},
			"until":  {strconv.FormatInt(q.Until, 10)},
		}
		if q.IncludeSelf {
			again.Set("include_self", "true")
		}
		q2, message := parseDownloadQuery(again)
		if message != "" || q2 != q {
			t.Fatalf("query %q gave %+v; written back as %q it gave %+v, %q", raw, q, again.Encode(), q2, message)
		}
	})
}
