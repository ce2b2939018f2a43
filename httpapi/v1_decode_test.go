package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pulsesync/pulsesync/pgv1"
)

// A chunk row as SQLiteNow sends it (docs/protocol-v1.md §3.4, §7 step 2).
const sampleChunk = `{"start_row_ordinal":0,"rows":[{"schema":"business","table":"users",
  "key":{"id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"},"op":"INSERT","base_row_version":0,
  "payload":{"active":"1","email":"ann@example.com","id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01",
             "name":"Ann","visits":"3"}},
 {"schema":"business","table":"users","key":{"id":"0b7e3f1a-2c4d-4e6f-8a1b-3c5d7e9f1a2b"},"op":"DELETE","base_row_version":3}]}`

func TestDecodeChunk_KeepsKeyAndPayloadAsSent(t *testing.T) {
	req, err := decodeChunk([]byte(sampleChunk))
	if err != nil {
		t.Fatal(err)
	}
	if req.start != 0 || len(req.rows) != 2 {
		t.Fatalf("start %d, %d rows; want 0 and 2", req.start, len(req.rows))
	}
	r0, r1 := req.rows[0], req.rows[1]
	if r0.Schema != "business" || r0.Table != "users" || r0.Op != "INSERT" || r0.BaseRowVersion != 0 {
		t.Fatalf("row 0 = %+v", r0)
	}
	if string(r0.Key) != `{"id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"}` {
		t.Fatalf("row 0 key %s, want the text as sent", r0.Key)
	}
	if !strings.HasPrefix(string(r0.Payload), `{"active":"1",`) || !strings.HasSuffix(string(r0.Payload), `"visits":"3"}`) {
		t.Fatalf("row 0 payload %s, want the text as sent", r0.Payload)
	}
	if r1.Op != "DELETE" || r1.BaseRowVersion != 3 || r1.Payload != nil {
		t.Fatalf("row 1 = %+v, want a DELETE with base 3 and no payload", r1)
	}
}

func TestDecodeChunk_NullPayloadIsAbsent(t *testing.T) {
	req, err := decodeChunk([]byte(`{"start_row_ordinal":5,"rows":[{"schema":"s","table":"t","key":{"id":"a"},"op":"DELETE","base_row_version":1,"payload":null}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if req.start != 5 || req.rows[0].Payload != nil {
		t.Fatalf("got start %d payload %q, want 5 and none", req.start, req.rows[0].Payload)
	}
}

// Escaped member names and strings decode to their values; the raw values keep their text.
func TestDecodeChunk_Escapes(t *testing.T) {
	body := `{"start_row_ordinal":0,"rows":[{"sch\u0065ma":"bus\/iness","table":"us\u00e9rs","key":{"id":"x"},"op":"INS\u0045RT","base_row_version":0,"payload":{"a":"\ud83d\ude00"}}]}`
	req, err := decodeChunk([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	r := req.rows[0]
	if r.Schema != "bus/iness" || r.Table != "usérs" || r.Op != "INSERT" || string(r.Payload) != `{"a":"\ud83d\ude00"}` {
		t.Fatalf("got %+v", r)
	}
}

// Every malformed, duplicated, unknown or wrongly typed body is a *jsonError (docs/protocol-v1.md
// §3.4 check 2 → 400 invalid_request), never a panic or an accepted request.
func TestDecodeChunk_Refusals(t *testing.T) {
	row := `{"schema":"s","table":"t","key":{"id":"a"},"op":"INSERT","base_row_version":0,"payload":{"id":"a"}}`
	cases := []struct{ name, body, want string }{
		{"empty body", ``, "must be a JSON object"},
		{"not JSON", `hello`, "must be a JSON object"},
		{"array", `[]`, "must be a JSON object"},
		{"trailing data", `{"start_row_ordinal":0,"rows":[]} {}`, "data after"},
		{"trailing garbage", `{"start_row_ordinal":0,"rows":[]}x`, "data after"},
		{"truncated", `{"start_row_ordinal":0,"rows":[` + row, "unexpected end"},
		{"unknown member", `{"start_row_ordinal":0,"rows":[],"extra":1}`, `unknown member "extra"`},
		{"unknown source_id", `{"source_id":"x","start_row_ordinal":0,"rows":[]}`, `unknown member "source_id"`},
		{"duplicate member", `{"start_row_ordinal":0,"start_row_ordinal":1,"rows":[]}`, "twice"},
		{"duplicate via escape", `{"start_row_ordinal":0,"start_row_ordin\u0061l":1,"rows":[]}`, "twice"},
		{"start as string", `{"start_row_ordinal":"0","rows":[]}`, "start_row_ordinal must be a JSON integer"},
		{"start fraction", `{"start_row_ordinal":0.0,"rows":[]}`, "start_row_ordinal must be a JSON integer"},
		{"start exponent", `{"start_row_ordinal":1e2,"rows":[]}`, "start_row_ordinal must be a JSON integer"},
		{"start over int64", `{"start_row_ordinal":9223372036854775808,"rows":[]}`, "outside the int64 range"},
		{"start leading zero", `{"start_row_ordinal":01,"rows":[]}`, "invalid JSON"},
		{"rows not array", `{"start_row_ordinal":0,"rows":{}}`, "rows must be a JSON array"},
		{"row not object", `{"start_row_ordinal":0,"rows":[1]}`, "rows[0] must be a JSON object"},
		{"base as string", `{"start_row_ordinal":0,"rows":[` + strings.Replace(row, `"base_row_version":0`, `"base_row_version":"0"`, 1) + `]}`, "rows[0].base_row_version must be a JSON integer"},
		{"schema as number", `{"start_row_ordinal":0,"rows":[` + row + `,` + strings.Replace(row, `"schema":"s"`, `"schema":1`, 1) + `]}`, "rows[1].schema must be a JSON string"},
		{"op as null", `{"start_row_ordinal":0,"rows":[` + strings.Replace(row, `"op":"INSERT"`, `"op":null`, 1) + `]}`, "rows[0].op must be a JSON string"},
		{"row unknown member", `{"start_row_ordinal":0,"rows":[` + strings.Replace(row, `"op"`, `"source_id":"x","op"`, 1) + `]}`, `rows[0] has an unknown member "source_id"`},
		{"row duplicate member", `{"start_row_ordinal":0,"rows":[` + strings.Replace(row, `"op"`, `"table":"u","op"`, 1) + `]}`, `rows[0] has member "table" twice`},
		{"payload duplicate column", `{"start_row_ordinal":0,"rows":[` + strings.Replace(row, `{"id":"a"}}`, `{"id":"a","id":"b"}}`, 1) + `]}`, "appears twice"},
		{"key duplicate column", `{"start_row_ordinal":0,"rows":[` + strings.Replace(row, `"key":{"id":"a"}`, `"key":{"id":"a","id":"a"}`, 1) + `]}`, "appears twice"},
		{"payload bad literal", `{"start_row_ordinal":0,"rows":[` + strings.Replace(row, `{"id":"a"}}`, `{"id":tru}}`, 1) + `]}`, "JSON boolean"},
		{"payload bad number", `{"start_row_ordinal":0,"rows":[` + strings.Replace(row, `{"id":"a"}}`, `{"id":-}}`, 1) + `]}`, "invalid JSON"},
		{"control char in string", "{\"start_row_ordinal\":0,\"rows\":[{\"schema\":\"a\x01\"}]}", "control character"},
		{"invalid UTF-8", "{\"start_row_ordinal\":0,\"rows\":[{\"schema\":\"a\xff\"}]}", "invalid UTF-8"},
		{"bad escape", `{"start_row_ordinal":0,"rows":[{"schema":"\x"}]}`, "invalid escape"},
		{"short unicode escape", `{"start_row_ordinal":0,"rows":[{"schema":"\u12"}]}`, "four hex digits"},
		{"deep nesting", `{"start_row_ordinal":0,"rows":[` + strings.Replace(row, `{"id":"a"}}`, strings.Repeat("[", 100)+strings.Repeat("]", 100)+`}`, 1) + `]}`, "nested deeper"},
		{"missing colon", `{"start_row_ordinal" 0}`, "expected ':'"},
		{"missing comma", `{"start_row_ordinal":0 "rows":[]}`, "expected ',' or '}'"},
		{"single quotes", `{'start_row_ordinal':0}`, "a member name"},
		{"comment", `{"start_row_ordinal":0,/*x*/"rows":[]}`, "a member name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeChunk([]byte(tc.body))
			var je *jsonError
			if !errors.As(err, &je) {
				t.Fatalf("got %v, want a *jsonError", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestDecodeCreatePush(t *testing.T) {
	req, err := decodeCreatePush([]byte(`{"source_bundle_id":2,"planned_row_count":7,"canonical_request_hash":"ab","initialization_id":null}`))
	if err != nil {
		t.Fatal(err)
	}
	if req != (pgv1.CreatePush{SourceBundleID: 2, PlannedRowCount: 7, RequestHash: "ab"}) {
		t.Fatalf("got %+v", req)
	}
	for _, body := range []string{
		`{"source_bundle_id":"2"}`, `{"planned_row_count":1.5}`, `{"canonical_request_hash":1}`,
		`{"initialization_id":5}`, `{"source_id":"x"}`, `{}{}`, `null`,
	} {
		if _, err := decodeCreatePush([]byte(body)); err == nil {
			t.Errorf("%s: accepted, want a refusal", body)
		}
	}
}

func TestDecodeSnapshotCreate(t *testing.T) {
	for _, body := range []string{"", "  \n", "{}", `{"source_replacement":null}`} {
		repl, err := decodeSnapshotCreate([]byte(body))
		if err != nil || repl != nil {
			t.Errorf("%q: got %+v, %v; want no replacement", body, repl, err)
		}
	}
	repl, err := decodeSnapshotCreate([]byte(`{"source_replacement":{"previous_source_id":"a","new_source_id":"b","reason":"history_pruned"}}`))
	if err != nil || *repl != (pgv1.SourceReplacement{PreviousSourceID: "a", NewSourceID: "b", Reason: "history_pruned"}) {
		t.Fatalf("got %+v, %v", repl, err)
	}
	for _, body := range []string{
		`{"source_replacement":{"previous_source_id":"a","new_source_id":"b"}}`,
		`{"source_replacement":{"previous_source_id":"a","new_source_id":"b","reason":"x","extra":1}}`,
		`{"source_replacement":{"previous_source_id":1,"new_source_id":"b","reason":"x"}}`,
		`{"source_replacement":"x"}`, `{"other":1}`, `{} x`, `[]`,
	} {
		if _, err := decodeSnapshotCreate([]byte(body)); err == nil {
			t.Errorf("%s: accepted, want a refusal", body)
		}
	}
}

func TestDecodeConnectAndEmpty(t *testing.T) {
	for body, want := range map[string]bool{`{"has_local_pending_rows":true}`: true, `{"has_local_pending_rows":false}`: false, `{}`: false} {
		got, err := decodeConnect([]byte(body))
		if err != nil || got != want {
			t.Errorf("%s: got %v, %v; want %v", body, got, err, want)
		}
	}
	for _, body := range []string{`{"has_local_pending_rows":"true"}`, `{"has_local_pending_rows":1}`, `{"x":true}`, `true`} {
		if _, err := decodeConnect([]byte(body)); err == nil {
			t.Errorf("%s: accepted, want a refusal", body)
		}
	}
	for _, body := range []string{"", "{}", " { } "} {
		if err := decodeEmpty([]byte(body)); err != nil {
			t.Errorf("%q: %v, want accepted", body, err)
		}
	}
	if err := decodeEmpty([]byte(`{"a":1}`)); err == nil {
		t.Error(`{"a":1} accepted as an empty body`)
	}
}

// chunkOracle decodes a chunk body with encoding/json, strictly: what decodeChunk accepts,
// the standard library must accept too, with the same values.
type chunkOracle struct {
	StartRowOrdinal int64 `json:"start_row_ordinal"`
	Rows            []struct {
		Schema         string          `json:"schema"`
		Table          string          `json:"table"`
		Key            json.RawMessage `json:"key"`
		Op             string          `json:"op"`
		BaseRowVersion int64           `json:"base_row_version"`
		Payload        json.RawMessage `json:"payload"`
	} `json:"rows"`
}

// FuzzDecodeChunk checks the chunk decoder against encoding/json: it never panics, and a body
// it accepts is valid JSON that encoding/json decodes to the same values, with raw keys and
// payloads that are themselves valid JSON. The seed corpus is in testdata/fuzz/FuzzDecodeChunk.
func FuzzDecodeChunk(f *testing.F) {
	f.Add([]byte(sampleChunk))
	f.Add([]byte(`{"start_row_ordinal":5,"rows":[{"schema":"s","table":"t","key":{"id":"a"},"op":"DELETE","base_row_version":1,"payload":null}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeChunk(body)
		if err != nil {
			var je *jsonError
			if !errors.As(err, &je) {
				t.Fatalf("refusal %v is not a *jsonError", err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		var want chunkOracle
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", body, err)
		}
		if want.StartRowOrdinal != req.start || len(want.Rows) != len(req.rows) {
			t.Fatalf("start/rows %d/%d, encoding/json says %d/%d", req.start, len(req.rows), want.StartRowOrdinal, len(want.Rows))
		}
		for i, got := range req.rows {
			w := want.Rows[i]
			if got.Schema != w.Schema || got.Table != w.Table || got.Op != w.Op || got.BaseRowVersion != w.BaseRowVersion {
				t.Fatalf("row %d: %+v, encoding/json says %+v", i, got, w)
			}
			for _, raw := range []json.RawMessage{got.Key, got.Payload} {
				if raw != nil && !json.Valid(raw) {
					t.Fatalf("row %d: raw value %q is not valid JSON", i, raw)
				}
			}
			if string(w.Payload) != "null" && !bytes.Equal(got.Payload, w.Payload) {
				t.Fatalf("row %d: payload %q, encoding/json says %q", i, got.Payload, w.Payload)
			}
		}
	})
}

// benchChunk is a chunk of n rows shaped like a client's: a uuid key and six typed columns.
func benchChunk(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"start_row_ordinal":0,"rows":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		id := fmt.Sprintf("6f0d3c4e-8f0b-4c1e-9a57-%012d", i)
		fmt.Fprintf(&b, `{"schema":"business","table":"users","key":{"id":%q},"op":"UPDATE","base_row_version":%d,`+
			`"payload":{"active":"1","email":"user%d@example.com","id":%q,"name":"User \"%d\" é","score":"12.50","visits":"%d"}}`,
			id, i+1, i, id, i, i)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// BenchmarkDecodeChunk decodes a 200-row chunk, the size SQLiteNow sends by default.
func BenchmarkDecodeChunk(b *testing.B) {
	body := benchChunk(200)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeChunk(body); err != nil {
			b.Fatal(err)
		}
	}
}
