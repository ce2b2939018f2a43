package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/pulsesync/pulsesync/internal/servertest"
)

// TestDownload_ParameterErrors checks every 400 of docs/protocol-v0.md §4.1 byte for byte, including the
// reference encoder's \u003e, and the validation order.
func TestDownload_ParameterErrors(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	token := srv.Token("alice", "phone")
	body := func(message string) string {
		return `{"error":"invalid_request","message":"` + message + "\"}\n"
	}
	cases := []struct{ query, want string }{
		{"after=x", body("after must be an integer")},
		{"after=1.5", body("after must be an integer")},
		{"after=99999999999999999999", body("after must be an integer")},
		{"after=-1", body(`after must be \u003e= 0`)},
		{"limit=x", body("limit must be an integer")},
		{"limit=0", body("limit must be between 1 and 1000")},
		{"limit=1001", body("limit must be between 1 and 1000")},
		{"limit=-5", body("limit must be between 1 and 1000")},
		{"schema=Business", body("invalid schema name")},
		{"schema=a-b", body("invalid schema name")},
		{"schema=%20business", body("invalid schema name")},
		{"until=x", body("until must be an integer")},
		{"until=-1", body(`until must be \u003e= 0`)},
		{"after=-1&limit=x&schema=BAD&until=x", body(`after must be \u003e= 0`)},
		{"limit=0&schema=BAD&until=x", body("limit must be between 1 and 1000")},
		{"schema=BAD&until=-1", body("invalid schema name")},
		{"include_self=yes&until=-1", body(`until must be \u003e= 0`)},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			r := call(t, srv, http.MethodGet, "/sync/download?"+tc.query, token, "")
			if r.status != http.StatusBadRequest || string(r.body) != tc.want {
				t.Fatalf("got %d %q, want 400 %q", r.status, r.body, tc.want)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q, want application/json", ct)
			}
		})
	}
}

// tsPattern is RFC 3339 with at most microseconds and no trailing zero in the fraction.
var tsPattern = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,5}[1-9])?(Z|[+-]\d\d:\d\d)$`)

// TestDownload_Edges covers the semantics and edge cases of docs/protocol-v0.md §4.2 and §4.4 through
// HTTP. Stream of alice: 1 phone INSERT R, 2 phone INSERT R2, 3 phone DELETE R, 4 laptop INSERT R3.
func TestDownload_Edges(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	phone := newDevice(srv, "alice", "phone")
	laptop := newDevice(srv, "alice", "laptop")
	const rowR3 = "1b7e2a9c-3c1d-4e5f-8a6b-7c8d9e0f1a2b"
	phone.upload(t, batch(insertUser(1, rowR, "Ann"), insertUser(2, rowR2, "Bob")))
	phone.upload(t, batch(`{"source_change_id":3,"schema":"business","table":"users","op":"DELETE","pk":"`+rowR+`","server_version":1}`))
	laptop.upload(t, batch(insertUser(1, rowR3, "Cy")))

	ids := func(p downloadResponse) []int64 {
		out := []int64{}
		for _, c := range p.Changes {
			out = append(out, c.ServerID)
		}
		return out
	}
	cases := []struct {
		name        string
		dev         *device
		query       string
		ids         []int64
		hasMore     bool
		nextAfter   int64
		windowUntil int64
	}{
		{"others' entries, default limit", laptop, "after=0", []int64{1, 2, 3}, false, 3, 4},
		{"full last page has no more", laptop, "after=0&limit=3", []int64{1, 2, 3}, false, 3, 4},
		{"short page has more", laptop, "after=0&limit=2", []int64{1, 2}, true, 2, 4},
		{"own entries are skipped", phone, "after=0&limit=1000&schema=business", []int64{4}, false, 4, 4},
		{"only own entries remain: cursor stays", laptop, "after=3", []int64{}, false, 3, 4},
		{"include_self", laptop, "after=3&include_self=true", []int64{4}, false, 4, 4},
		{"include_self needs exactly true", laptop, "after=3&include_self=TRUE", []int64{}, false, 3, 4},
		{"after beyond everything is echoed", laptop, "after=100", []int64{}, false, 100, 4},
		{"after at the top", laptop, "after=4", []int64{}, false, 4, 4},
		{"until below after", laptop, "after=3&until=2", []int64{}, false, 3, 2},
		{"until bounds the window", laptop, "after=0&until=2", []int64{1, 2}, false, 2, 2},
		{"until beyond the top is echoed", phone, "after=0&until=50", []int64{4}, false, 4, 50},
		{"other schema", laptop, "after=0&schema=public", []int64{}, false, 0, 4},
		{"empty parameters mean defaults", laptop, "after=&limit=&schema=&until=", []int64{1, 2, 3}, false, 3, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.dev.download(t, tc.query)
			if got := ids(p); !reflect.DeepEqual(got, tc.ids) || p.HasMore != tc.hasMore || p.NextAfter != tc.nextAfter || p.WindowUntil != tc.windowUntil {
				t.Fatalf("got ids %v has_more %v next_after %d window_until %d; want %v %v %d %d",
					got, p.HasMore, p.NextAfter, p.WindowUntil, tc.ids, tc.hasMore, tc.nextAfter, tc.windowUntil)
			}
		})
	}

	t.Run("user without stream", func(t *testing.T) {
		r := call(t, srv, http.MethodGet, "/sync/download?after=5&limit=10", srv.Token("bob", "phone"), "")
		if want := "{\"changes\":[],\"has_more\":false,\"next_after\":5,\"window_until\":0}\n"; r.status != 200 || string(r.body) != want {
			t.Fatalf("got %d %q, want 200 %q", r.status, r.body, want)
		}
	})

	t.Run("entries", func(t *testing.T) {
		r := call(t, srv, http.MethodGet, "/sync/download?after=0", laptop.token, "")
		var raw struct{ Changes []map[string]json.RawMessage }
		wantStatus(t, r, http.StatusOK, &raw)
		p := laptop.download(t, "after=0")
		for i, c := range p.Changes {
			if !tsPattern.MatchString(c.TS) {
				t.Errorf("entry %d: ts %q is not RFC 3339 with a trimmed fraction", c.ServerID, c.TS)
			}
			_, hasPayload := raw.Changes[i]["payload"]
			if wantDeleted := c.Op == "DELETE"; c.Deleted != wantDeleted || hasPayload == wantDeleted {
				t.Errorf("entry %d: op %s, deleted %v, payload key present %v", c.ServerID, c.Op, c.Deleted, hasPayload)
			}
		}
		want := fmt.Sprintf(`{"server_id":1,"schema":"business","table":"users","op":"INSERT","pk":%q,`+
			`"payload":{"id":%q,"name":"Ann"},"server_version":1,"deleted":false,"source_id":"phone","source_change_id":1,"ts":"`, rowR, rowR)
		if !strings.HasPrefix(string(r.body), `{"changes":[`+want) {
			t.Errorf("first entry not in the documented field order:\n%s\nwant prefix\n%s", r.body, want)
		}
		want = fmt.Sprintf(`{"server_id":3,"schema":"business","table":"users","op":"DELETE","pk":%q,"server_version":2,"deleted":true,`+
			`"source_id":"phone","source_change_id":3,"ts":"`, rowR)
		if !strings.Contains(string(r.body), want) {
			t.Errorf("DELETE entry wrong:\n%s\nwant\n%s", r.body, want)
		}
	})

	t.Run("frozen window ignores later commits", func(t *testing.T) {
		first := laptop.download(t, "after=0&limit=1")
		phone.upload(t, batch(insertUser(4, "2c7e2a9c-3c1d-4e5f-8a6b-7c8d9e0f1a2b", "Dee")))
		p := laptop.download(t, fmt.Sprintf("after=%d&limit=10&until=%d", first.NextAfter, first.WindowUntil))
		if got := ids(p); !reflect.DeepEqual(got, []int64{2, 3}) || p.WindowUntil != 4 || p.HasMore {
			t.Fatalf("within window 4: ids %v window_until %d has_more %v, want [2 3] 4 false", got, p.WindowUntil, p.HasMore)
		}
		if got := ids(laptop.download(t, "after=3")); !reflect.DeepEqual(got, []int64{5}) {
			t.Fatalf("next window: ids %v, want [5]", got)
		}
	})
}
