package httpapi

import (
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"strconv"
	"testing"

	"github.com/pulsesync/pulsesync/pg"
)

const testPK = "6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"

// decodeCases are the upload bodies of docs/protocol-v0.md §1.2, §3.1 and §3.9 with their outcome:
// either the changes decoded, or the 400 message. They double as the fuzz seed corpus.
var decodeCases = []struct {
	name    string
	body    string
	want    []pg.ChangeInput // when message is ""
	message string
}{
	{name: "literal null is an empty batch", body: `null`, want: []pg.ChangeInput{}},
	{name: "empty object", body: `{}`, want: []pg.ChangeInput{}},
	{name: "changes null", body: `{"last_server_seq_seen":3,"changes":null}`, want: []pg.ChangeInput{}},
	{name: "changes empty", body: ` {"changes":[]} `, want: []pg.ChangeInput{}},
	{name: "full change with unknown fields", body: `{"last_server_seq_seen":42,"extra":{"a":[1,2]},"changes":[
		{"source_change_id":7,"schema":"business","table":"users","op":"UPDATE","pk":"` + testPK + `",
		 "server_version":3,"payload":{"id":"x", "name" : "Ann"},"what":null}]}`,
		want: []pg.ChangeInput{{SourceChangeID: 7, Schema: "business", Table: "users", Op: "UPDATE", PK: testPK,
			BaseVersion: 3, Payload: json.RawMessage(`{"id":"x", "name" : "Ann"}`)}}},
	{name: "payload absent is nil, null is null", body: `{"changes":[
		{"source_change_id":1,"op":"DELETE"},{"source_change_id":2,"op":"DELETE","payload":null}]}`,
		want: []pg.ChangeInput{{SourceChangeID: 1, Op: "DELETE"}, {SourceChangeID: 2, Op: "DELETE", Payload: json.RawMessage(`null`)}}},
	{name: "payload of any JSON kind is kept for the store to judge", body: `{"changes":[{"source_change_id":1,"payload":[1,"a"]}]}`,
		want: []pg.ChangeInput{{SourceChangeID: 1, Payload: json.RawMessage(`[1,"a"]`)}}},
	{name: "int64 extremes and zero ids", body: `{"changes":[{"source_change_id":-9223372036854775808,"server_version":9223372036854775807},{"source_change_id":0}]}`,
		want: []pg.ChangeInput{{SourceChangeID: -9223372036854775808, BaseVersion: 9223372036854775807}, {SourceChangeID: 0}}},
	{name: "null strings mean absent", body: `{"changes":[{"source_change_id":5,"schema":null,"table":null,"server_version":null}]}`,
		want: []pg.ChangeInput{{SourceChangeID: 5}}},
	{name: "trailing white space", body: "{}\n\t ", want: []pg.ChangeInput{}},

	{name: "empty body", body: ``, message: msgUnparsableUpload},
	{name: "only white space", body: "  \n", message: msgUnparsableUpload},
	{name: "malformed JSON", body: `{"changes":[`, message: msgUnparsableUpload},
	{name: "not an object", body: `[]`, message: msgUnparsableUpload},
	{name: "string body", body: `"changes"`, message: msgUnparsableUpload},
	{name: "changes is an object", body: `{"changes":{}}`, message: msgUnparsableUpload},
	{name: "change is a number", body: `{"changes":[1]}`, message: msgUnparsableUpload},
	{name: "change is null", body: `{"changes":[null]}`, message: msgUnparsableUpload},
	{name: "change is an array", body: `{"changes":[[]]}`, message: msgUnparsableUpload},
	{name: "source_change_id as string", body: `{"changes":[{"source_change_id":"1"}]}`, message: msgUnparsableUpload},
	{name: "source_change_id fraction", body: `{"changes":[{"source_change_id":1.5}]}`, message: msgUnparsableUpload},
	{name: "source_change_id integral fraction", body: `{"changes":[{"source_change_id":1.0}]}`, message: msgUnparsableUpload},
	{name: "source_change_id exponent", body: `{"changes":[{"source_change_id":1e2}]}`, message: msgUnparsableUpload},
	{name: "source_change_id above int64", body: `{"changes":[{"source_change_id":9223372036854775808}]}`, message: msgUnparsableUpload},
	{name: "server_version as string", body: `{"changes":[{"source_change_id":1,"server_version":"3"}]}`, message: msgUnparsableUpload},
	{name: "server_version fraction", body: `{"changes":[{"source_change_id":1,"server_version":3.5}]}`, message: msgUnparsableUpload},
	{name: "last_server_seq_seen as string", body: `{"last_server_seq_seen":"1"}`, message: msgUnparsableUpload},
	{name: "last_server_seq_seen exponent", body: `{"last_server_seq_seen":1E3}`, message: msgUnparsableUpload},
	{name: "schema as number", body: `{"changes":[{"source_change_id":1,"schema":5}]}`, message: msgUnparsableUpload},
	{name: "trailing garbage", body: `{"changes":[]} x`, message: msgUnparsableUpload},
	{name: "two values", body: `{}{}`, message: msgUnparsableUpload},
	{name: "invalid UTF-8", body: "{\"changes\":[{\"source_change_id\":1,\"payload\":{\"n\":\"\xff\"}}]}", message: msgUnparsableUpload},
	{name: "missing source_change_id", body: `{"changes":[{"source_change_id":1},{"table":"users"}]}`, message: "changes[1]: source_change_id is required"},
	{name: "null source_change_id", body: `{"changes":[{"source_change_id":null}]}`, message: "changes[0]: source_change_id is required"},
}

func TestDecodeUpload(t *testing.T) {
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeUpload([]byte(tc.body))
			if tc.message != "" {
				var bad *badRequest
				if !errors.As(err, &bad) || bad.message != tc.message {
					t.Fatalf("decodeUpload(%s) = %+v, %v; want a bad request %q", tc.body, got, err, tc.message)
				}
				return
			}
			if err != nil {
				t.Fatalf("decodeUpload(%s): %v", tc.body, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("decodeUpload(%s)\n got %#v\nwant %#v", tc.body, got, tc.want)
			}
		})
	}
}

// encodeUploadBody writes changes back into an upload body, payloads verbatim.
func encodeUploadBody(t *testing.T, changes []pg.ChangeInput) []byte {
	t.Helper()
	str := func(s string) []byte {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := []byte(`{"changes":[`)
	for i, c := range changes {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"source_change_id":`...)
		b = strconv.AppendInt(b, c.SourceChangeID, 10)
		b = append(append(b, `,"schema":`...), str(c.Schema)...)
		b = append(append(b, `,"table":`...), str(c.Table)...)
		b = append(append(b, `,"op":`...), str(c.Op)...)
		b = append(append(b, `,"pk":`...), str(c.PK)...)
		b = strconv.AppendInt(append(b, `,"server_version":`...), c.BaseVersion, 10)
		if c.Payload != nil {
			b = append(append(b, `,"payload":`...), c.Payload...)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// missingIDMessage is the one refusal besides msgUnparsableUpload: a change without its id.
var missingIDMessage = regexp.MustCompile(`^changes\[(0|[1-9][0-9]*)\]: source_change_id is required$`)

// FuzzDecodeUpload checks that decoding never panics, that every refusal is a 400 with one of
// the two documented messages and that an accepted body survives a round trip: re-encoding its
// changes and decoding them again yields the same ids, fields and raw payloads, in the same
// order. Hostile bodies beyond decodeCases are in testdata/fuzz/FuzzDecodeUpload.
func FuzzDecodeUpload(f *testing.F) {
	for _, tc := range decodeCases {
		f.Add([]byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		changes, err := decodeUpload(body)
		if err != nil {
			var bad *badRequest
			if !errors.As(err, &bad) {
				t.Fatalf("decodeUpload(%q) failed with %T %v, want *badRequest", body, err, err)
			}
			if bad.message != msgUnparsableUpload && !missingIDMessage.MatchString(bad.message) {
				t.Fatalf("decodeUpload(%q) refused with %q, not a documented message", body, bad.message)
			}
			return
		}
		again, err := decodeUpload(encodeUploadBody(t, changes))
		if err != nil {
			t.Fatalf("re-decoding the changes of %q: %v", body, err)
		}
		if !reflect.DeepEqual(again, changes) {
			t.Fatalf("round trip of %q changed the changes\nfirst  %#v\nsecond %#v", body, changes, again)
		}
	})
}
