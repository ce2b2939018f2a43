package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"testing"

	"github.com/pulsesync/pulsesync/internal/servertest"
)

// exampleIDs maps the illustrative server ids of docs/protocol-v0.md §11 to ours: the same order, but
// dense per user, so the unused 103 of the example does not exist here.
var exampleIDs = map[float64]float64{0: 0, 101: 1, 102: 2, 104: 3, 105: 4, 106: 5}

// idKeys are the keys holding server ids.
var idKeys = map[string]bool{"server_id": true, "next_after": true, "window_until": true, "highest_server_seq": true}

// normalizeExample rewrites, in a decoded answer of the example, every server id through
// exampleIDs and checks and removes every ts, which differ from run to run.
func normalizeExample(t *testing.T, v any, mapIDs bool) any {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			switch {
			case k == "ts":
				if s, ok := x.(string); !ok || !tsPattern.MatchString(s) {
					t.Fatalf("ts %v is not RFC 3339 with a trimmed fraction", x)
				}
				delete(v, k)
			case idKeys[k] && mapIDs:
				id, ok := exampleIDs[x.(float64)]
				if !ok {
					t.Fatalf("example id %v has no counterpart", x)
				}
				v[k] = id
			default:
				v[k] = normalizeExample(t, x, mapIDs)
			}
		}
	case []any:
		for i := range v {
			v[i] = normalizeExample(t, v[i], mapIDs)
		}
	}
	return v
}

// mapQueryIDs rewrites the ids in a download query of the example through exampleIDs.
func mapQueryIDs(t *testing.T, query string) string {
	t.Helper()
	v, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"after", "until"} {
		if s := v.Get(k); s != "" {
			n, err := strconv.ParseFloat(s, 64)
			id, ok := exampleIDs[n]
			if err != nil || !ok {
				t.Fatalf("query %s: %s=%s has no counterpart", query, k, s)
			}
			v.Set(k, strconv.FormatFloat(id, 'f', -1, 64))
		}
	}
	return v.Encode()
}

func decodeAny(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// TestWorkedExample replays docs/protocol-v0.md §11 literally: every request as printed, every answer
// compared field by field with the printed one, modulo ids (mapped by exampleIDs) and ts.
func TestWorkedExample(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	phone := newDevice(srv, "alice", "phone-7f3a")
	laptop := newDevice(srv, "alice", "laptop-19c2")
	const upload, download = "POST /sync/upload", "GET /sync/download"

	steps := []struct {
		name, call string
		dev        *device
		query      string // download query
		body       string // upload body
		want       string
	}{
		{name: "1 phone creates R", call: upload, dev: phone, body: `{"last_server_seq_seen":0,"changes":[{"source_change_id":1,"schema":"business","table":"users","op":"INSERT",
 "pk":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","server_version":0,
 "payload":{"id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","name":"Ann","email":"ann@example.com"}}]}`,
			want: `{"accepted":true,"highest_server_seq":101,"statuses":[{"source_change_id":1,"status":"applied","new_server_version":1}]}`},

		{name: "2 laptop downloads", call: download, dev: laptop, query: "after=0&limit=1000&schema=business",
			want: `{"changes":[{"server_id":101,"schema":"business","table":"users","op":"INSERT","pk":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01",
  "payload":{"id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","name":"Ann","email":"ann@example.com"},
  "server_version":1,"deleted":false,"source_id":"phone-7f3a","source_change_id":1,"ts":"2026-01-20T09:15:02.481211Z"}],
 "has_more":false,"next_after":101,"window_until":101}`},

		{name: "3 laptop renames", call: upload, dev: laptop, body: `{"last_server_seq_seen":101,"changes":[{"source_change_id":1,"schema":"business","table":"users","op":"UPDATE",
 "pk":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","server_version":1,
 "payload":{"id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","name":"Ann Lee","email":"ann@example.com"}}]}`,
			want: `{"accepted":true,"highest_server_seq":102,"statuses":[{"source_change_id":1,"status":"applied","new_server_version":2}]}`},

		{name: "4 phone conflicts", call: upload, dev: phone, body: `{"last_server_seq_seen":0,"changes":[{"source_change_id":2,"schema":"business","table":"users","op":"UPDATE",
 "pk":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","server_version":1,
 "payload":{"id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","name":"Ann","email":"ann@work.example"}}]}`,
			want: `{"accepted":true,"highest_server_seq":102,"statuses":[{"source_change_id":2,"status":"conflict",
 "server_row":{"schema_name":"business","table_name":"users","id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01",
  "server_version":2,"deleted":false,
  "payload":{"id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","name":"Ann Lee","email":"ann@example.com"}}}]}`},

		{name: "5 phone merges and resends", call: upload, dev: phone, body: `{"last_server_seq_seen":0,"changes":[{"source_change_id":2,"schema":"business","table":"users","op":"UPDATE",
 "pk":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","server_version":2,
 "payload":{"id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","name":"Ann Lee","email":"ann@work.example"}}]}`,
			want: `{"accepted":true,"highest_server_seq":104,"statuses":[{"source_change_id":2,"status":"applied","new_server_version":3}]}`},

		{name: "6 laptop downloads from its cursor", call: download, dev: laptop, query: "after=101&limit=1000&schema=business",
			want: `{"changes":[{"server_id":104,"schema":"business","table":"users","op":"UPDATE","pk":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01",
  "payload":{"id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","name":"Ann Lee","email":"ann@work.example"},
  "server_version":3,"deleted":false,"source_id":"phone-7f3a","source_change_id":2,"ts":"2026-01-20T09:16:40.020577Z"}],
 "has_more":false,"next_after":104,"window_until":104}`},

		{name: "7 laptop deletes R", call: upload, dev: laptop, body: `{"last_server_seq_seen":104,"changes":[{"source_change_id":2,"schema":"business","table":"users","op":"DELETE",
 "pk":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","server_version":3}]}`,
			want: `{"accepted":true,"highest_server_seq":105,"statuses":[{"source_change_id":2,"status":"applied","new_server_version":4}]}`},

		{name: "8a phone pages, first page", call: download, dev: phone, query: "after=0&limit=1&schema=business",
			want: `{"changes":[{"server_id":102,"schema":"business","table":"users","op":"UPDATE","pk":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01",
  "payload":{"id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","name":"Ann Lee","email":"ann@example.com"},
  "server_version":2,"deleted":false,"source_id":"laptop-19c2","source_change_id":1,"ts":"2026-01-20T09:15:07.113402Z"}],
 "has_more":true,"next_after":102,"window_until":105}`},

		{name: "8b phone pages, frozen window", call: download, dev: phone, query: "after=102&limit=1&schema=business&until=105",
			want: `{"changes":[{"server_id":105,"schema":"business","table":"users","op":"DELETE","pk":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01",
  "server_version":4,"deleted":true,"source_id":"laptop-19c2","source_change_id":2,"ts":"2026-01-20T09:17:11.902113Z"}],
 "has_more":false,"next_after":105,"window_until":105}`},

		{name: "9 phone replays step 5", call: upload, dev: phone, body: `{"last_server_seq_seen":0,"changes":[{"source_change_id":2,"schema":"business","table":"users","op":"UPDATE",
 "pk":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","server_version":2,
 "payload":{"id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","name":"Ann Lee","email":"ann@work.example"}}]}`,
			want: `{"accepted":true,"highest_server_seq":105,"statuses":[{"source_change_id":2,"status":"applied"}]}`},

		{name: "10a phone re-creates R with base 0", call: upload, dev: phone, body: `{"last_server_seq_seen":105,"changes":[{"source_change_id":3,"schema":"business","table":"users","op":"INSERT",
 "pk":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","server_version":0,
 "payload":{"id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","name":"Ann","email":"ann@work.example"}}]}`,
			want: `{"accepted":true,"highest_server_seq":105,"statuses":[{"source_change_id":3,"status":"conflict",
 "server_row":{"schema_name":"business","table_name":"users","id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01",
  "server_version":4,"deleted":true,"payload":null}}]}`},

		{name: "10b resent with base 4", call: upload, dev: phone, body: `{"last_server_seq_seen":105,"changes":[{"source_change_id":3,"schema":"business","table":"users","op":"INSERT",
 "pk":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","server_version":4,
 "payload":{"id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","name":"Ann","email":"ann@work.example"}}]}`,
			want: `{"accepted":true,"highest_server_seq":106,"statuses":[{"source_change_id":3,"status":"applied","new_server_version":5}]}`},

		{name: "10c streamed as an INSERT", call: download, dev: laptop, query: "after=105&limit=1000&schema=business",
			want: `{"changes":[{"server_id":106,"schema":"business","table":"users","op":"INSERT","pk":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01",
  "payload":{"id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","name":"Ann","email":"ann@work.example"},
  "server_version":5,"deleted":false,"source_id":"phone-7f3a","source_change_id":3,"ts":"2026-01-20T09:18:00Z"}],
 "has_more":false,"next_after":106,"window_until":106}`},
	}
	for _, st := range steps {
		// Each step depends on the ones before: stop at the first failure.
		var r response
		if st.call == upload {
			r = call(t, srv, http.MethodPost, "/sync/upload", st.dev.token, st.body)
		} else {
			r = call(t, srv, http.MethodGet, "/sync/download?"+mapQueryIDs(t, st.query), st.dev.token, "")
		}
		if r.status != http.StatusOK {
			t.Fatalf("step %s: %d %s", st.name, r.status, r.body)
		}
		got := normalizeExample(t, decodeAny(t, r.body), false)
		want := normalizeExample(t, decodeAny(t, []byte(st.want)), true)
		if !reflect.DeepEqual(got, want) {
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(want)
			t.Fatalf("step %s:\n got %s\nwant %s", st.name, gotJSON, wantJSON)
		}
	}
}
