package httpapi_test

import (
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/pulsesync/pulsesync/internal/servertest"
)

const (
	rowR     = "6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"
	rowR2    = "0b7e2a9c-3c1d-4e5f-8a6b-7c8d9e0f1a2b"
	unparsed = "Failed to parse upload request"
)

// insertUser is one change inserting business.users row pk.
func insertUser(scid int, pk, name string) string {
	return fmt.Sprintf(`{"source_change_id":%d,"schema":"business","table":"users","op":"INSERT","pk":%q,"server_version":0,`+
		`"payload":{"id":%q,"name":%q}}`, scid, pk, pk, name)
}

// batch wraps changes into an upload body.
func batch(changes ...string) string {
	return `{"last_server_seq_seen":0,"changes":[` + strings.Join(changes, ",") + `]}`
}

// TestUpload_BadInputIsRefusedAndChangesNothing sends every kind of malformed upload of
// docs/protocol-v0.md §3.9 and the request-level rules (§10.3 #1-#3), and checks the documented 4xx
// envelope and that the user's watermark and stream are exactly as before.
func TestUpload_BadInputIsRefusedAndChangesNothing(t *testing.T) {
	const maxBody = 64 << 10
	srv := servertest.New(t, servertest.Options{MaxBodyBytes: maxBody})
	phone := newDevice(srv, "alice", "phone")
	if got := phone.upload(t, batch(insertUser(1, rowR, "Ann"))); *got.HighestServerSeq != 1 {
		t.Fatalf("setup upload: highest_server_seq %d, want 1", *got.HighestServerSeq)
	}
	before := snapshot(t, srv, "alice")

	big := batch(fmt.Sprintf(`{"source_change_id":9,"schema":"business","table":"users","op":"INSERT","pk":%q,`+
		`"server_version":0,"payload":{"id":%q,"name":"%s"}}`, rowR2, rowR2, strings.Repeat("x", maxBody)))
	cases := []struct {
		name    string
		body    string
		chunked bool // send without Content-Length
		status  int
		code    string
		message string
	}{
		{"empty body", "", false, 400, "invalid_request", unparsed},
		{"malformed JSON", `{"changes":[`, false, 400, "invalid_request", unparsed},
		{"not JSON", `changes=1`, false, 400, "invalid_request", unparsed},
		{"changes not an array", `{"changes":"x"}`, false, 400, "invalid_request", unparsed},
		{"source_change_id string", batch(strings.Replace(insertUser(2, rowR2, "B"), `:2,`, `:"2",`, 1)), false, 400, "invalid_request", unparsed},
		{"source_change_id fraction", batch(strings.Replace(insertUser(2, rowR2, "B"), `:2,`, `:2.5,`, 1)), false, 400, "invalid_request", unparsed},
		{"source_change_id exponent", batch(strings.Replace(insertUser(2, rowR2, "B"), `:2,`, `:2e0,`, 1)), false, 400, "invalid_request", unparsed},
		{"source_change_id beyond int64", batch(strings.Replace(insertUser(2, rowR2, "B"), `:2,`, `:9223372036854775808,`, 1)), false, 400, "invalid_request", unparsed},
		{"server_version string", batch(strings.Replace(insertUser(2, rowR2, "B"), `"server_version":0`, `"server_version":"0"`, 1)), false, 400, "invalid_request", unparsed},
		{"server_version fraction", batch(strings.Replace(insertUser(2, rowR2, "B"), `"server_version":0`, `"server_version":0.5`, 1)), false, 400, "invalid_request", unparsed},
		{"last_server_seq_seen exponent", `{"last_server_seq_seen":1e3,"changes":[` + insertUser(2, rowR2, "B") + `]}`, false, 400, "invalid_request", unparsed},
		{"table not a string", batch(strings.Replace(insertUser(2, rowR2, "B"), `"table":"users"`, `"table":7`, 1)), false, 400, "invalid_request", unparsed},
		{"change not an object", batch(insertUser(2, rowR2, "B"), `42`), false, 400, "invalid_request", unparsed},
		{"change null", batch(insertUser(2, rowR2, "B"), `null`), false, 400, "invalid_request", unparsed},
		{"trailing garbage", batch(insertUser(2, rowR2, "B")) + ` ]`, false, 400, "invalid_request", unparsed},
		{"two JSON values", batch(insertUser(2, rowR2, "B")) + `{}`, false, 400, "invalid_request", unparsed},
		{"invalid UTF-8", batch(insertUser(2, rowR2, "B\xff")), false, 400, "invalid_request", unparsed},
		{"missing source_change_id", batch(insertUser(2, rowR2, "B"), strings.Replace(insertUser(3, rowR, "C"), `"source_change_id":3,`, ``, 1)),
			false, 400, "invalid_request", "changes[1]: source_change_id is required"},
		{"duplicate source_change_id", batch(insertUser(5, rowR2, "B"), strings.Replace(insertUser(5, rowR, "C"), rowR, "1b7e2a9c-3c1d-4e5f-8a6b-7c8d9e0f1a2b", 2)),
			false, 400, "invalid_request", "duplicate source_change_id 5 in one request"},
		{"duplicate row key in another letter case", batch(insertUser(2, rowR2, "B"), insertUser(3, strings.ToUpper(rowR2), "C")),
			false, 400, "invalid_request", "more than one change for row business.users pk=" + rowR2 + " in one request"},
		{"body over the limit", big, false, 413, "request_too_large", fmt.Sprintf("request body larger than %d bytes", maxBody)},
		{"chunked body over the limit", big, true, 413, "request_too_large", fmt.Sprintf("request body larger than %d bytes", maxBody)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r response
			if tc.chunked {
				req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/sync/upload",
					struct{ io.Reader }{strings.NewReader(tc.body)}) // hides the length
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Authorization", "Bearer "+phone.token)
				r = send(t, srv, req)
			} else {
				r = call(t, srv, http.MethodPost, "/sync/upload", phone.token, tc.body)
			}
			wantError(t, r, tc.status, tc.code, tc.message)
			if after := snapshot(t, srv, "alice"); !reflect.DeepEqual(after, before) {
				t.Fatalf("the refused upload changed the user's state\nbefore %+v\nafter  %+v", before, after)
			}
		})
	}
}

func TestUpload_EmptyBatchesAnswerTheWatermark(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	phone := newDevice(srv, "alice", "phone")
	for _, body := range []string{`null`, `{}`, `{"changes":null}`, `{"changes":[]}`} {
		r := call(t, srv, http.MethodPost, "/sync/upload", phone.token, body)
		if want := "{\"accepted\":true,\"highest_server_seq\":0,\"statuses\":[]}\n"; r.status != 200 || string(r.body) != want {
			t.Fatalf("new user, body %s: got %d %q, want 200 %q", body, r.status, r.body, want)
		}
	}
	phone.upload(t, batch(insertUser(1, rowR, "Ann"), insertUser(2, rowR2, "Bob")))
	laptop := newDevice(srv, "alice", "laptop")
	r := call(t, srv, http.MethodPost, "/sync/upload", laptop.token, `{"last_server_seq_seen":0,"changes":[]}`)
	if want := "{\"accepted\":true,\"highest_server_seq\":2,\"statuses\":[]}\n"; r.status != 200 || string(r.body) != want {
		t.Fatalf("after two changes: got %d %q, want 200 %q", r.status, r.body, want)
	}
}

// TestUpload_ResponseEncoding checks the exact bytes of an upload answer holding every kind of
// status entry (docs/protocol-v0.md §3.2, §3.3): key order, omitted keys and details shapes.
func TestUpload_ResponseEncoding(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	phone := newDevice(srv, "alice", "phone")
	first := fmt.Sprintf(`{"source_change_id":1,"schema":"business","table":"users","op":"INSERT","pk":%q,"server_version":0,`+
		`"payload":{ "id" : %q, "name":"A<b>&\u2028é"}}`, strings.ToUpper(rowR), rowR)
	const rowR3 = "1b7e2a9c-3c1d-4e5f-8a6b-7c8d9e0f1a2b"
	r := call(t, srv, http.MethodPost, "/sync/upload", phone.token, batch(first, insertUser(2, rowR3, "Dee")))
	if want := `{"accepted":true,"highest_server_seq":2,"statuses":[{"source_change_id":1,"status":"applied","new_server_version":1},` +
		`{"source_change_id":2,"status":"applied","new_server_version":1}]}` + "\n"; string(r.body) != want {
		t.Fatalf("first upload: got %d %s\nwant %s", r.status, r.body, want)
	}

	const missingAuthor = "99999999-9999-4999-8999-999999999999"
	second := batch(
		insertUser(2, rowR3, "Dee"), // a replay: recorded key
		strings.Replace(strings.Replace(first, `"source_change_id":1`, `"source_change_id":3`, 1), `"op":"INSERT"`, `"op":"UPDATE"`, 1),
		`{"source_change_id":4,"schema":"Business","table":"Nope","op":"INSERT","pk":"`+rowR2+`","server_version":0,"payload":{}}`,
		`{"source_change_id":5,"schema":"business","table":"users","op":"MERGE","pk":"`+rowR2+`","server_version":0,"payload":{}}`,
		`{"source_change_id":6,"schema":"business","table":"posts","op":"INSERT","pk":"`+rowR2+`","server_version":0,`+
			`"payload":{"id":"`+rowR2+`","author_id":"`+missingAuthor+`"}}`,
		insertUser(7, "2c7e2a9c-3c1d-4e5f-8a6b-7c8d9e0f1a2b", "Cy"),
	)
	want := `{"accepted":false,"highest_server_seq":3,"statuses":[` +
		`{"source_change_id":2,"status":"applied"},` +
		`{"source_change_id":3,"status":"conflict","server_row":{"schema_name":"business","table_name":"users","id":"` + rowR + `",` +
		`"server_version":1,"deleted":false,"payload":{"id":"` + rowR + `","name":"A<b>&\u2028é"}}},` +
		`{"source_change_id":4,"status":"invalid","message":"table not registered business.nope",` +
		`"invalid":{"reason":"unregistered_table","details":{"schema":"business","table":"nope"}}},` +
		`{"source_change_id":5,"status":"invalid","message":"invalid operation: MERGE",` +
		`"invalid":{"reason":"bad_payload","details":{"error":"invalid operation: MERGE"}}},` +
		`{"source_change_id":6,"status":"invalid","invalid":{"reason":"fk_missing","details":{"missing":["business.users:` + missingAuthor + `"]}}},` +
		`{"source_change_id":7,"status":"applied","new_server_version":1}]}` + "\n"
	r = call(t, srv, http.MethodPost, "/sync/upload", phone.token, second)
	if r.status != 200 || string(r.body) != want {
		t.Fatalf("got %d\n%s\nwant\n%s", r.status, r.body, want)
	}
}

// TestUpload_PayloadTextSurvivesVerbatim uploads a payload with JSON that is valid but awkward
// (escaped NUL and lone surrogate, a number beyond float64, HTML characters): it is applied, not
// a 5xx, and downloaded as sent, only without insignificant white space.
func TestUpload_PayloadTextSurvivesVerbatim(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	phone := newDevice(srv, "alice", "phone")
	const payload = `{"id":"` + rowR + `","name":"a\u0000b\ud800<&>","email":null,"n":1e400,"tags":["x","y"]}`
	spaced := strings.NewReplacer(`,`, " ,\n ", `:`, ` : `).Replace(payload)
	got := phone.upload(t, batch(`{"source_change_id":1,"schema":"business","table":"users","op":"INSERT","pk":"`+rowR+`","server_version":0,"payload":`+spaced+`}`))
	if s := got.Statuses[0]; s.Status != "applied" {
		t.Fatalf("status %+v, want applied", s)
	}
	p := newDevice(srv, "alice", "laptop").download(t, "after=0")
	if len(p.Changes) != 1 || string(p.Changes[0].Payload) != payload {
		t.Fatalf("downloaded %+v, want the payload %s", p.Changes, payload)
	}
}
