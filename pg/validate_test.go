package pg

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const rowPK = "6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"

// TestUpload_ValidationRules covers every rule of docs/protocol-v0.md §3.5, in the reference's order.
func TestUpload_ValidationRules(t *testing.T) {
	s, _ := newStore(t, StoreConfig{MaxPayloadBytes: 64})
	obj := json.RawMessage(`{"id":"` + rowPK + `"}`)
	cases := []struct {
		name    string
		in      ChangeInput
		reason  string
		message string
	}{
		{"schema with a dash", ChangeInput{Schema: "busi-ness", Table: "users", Op: "INSERT", PK: rowPK, Payload: obj},
			ReasonBadPayload, `bad_payload: invalid schema name "busi-ness"`},
		{"table with a space inside", ChangeInput{Schema: "business", Table: "us ers", Op: "INSERT", PK: rowPK, Payload: obj},
			ReasonBadPayload, `bad_payload: invalid table name "us ers"`},
		{"schema checked before table", ChangeInput{Schema: "a.b", Table: "c.d", Op: "INSERT", PK: rowPK, Payload: obj},
			ReasonBadPayload, `bad_payload: invalid schema name "a.b"`},
		{"table of 64 bytes is no identifier, echoed whole", ChangeInput{Schema: "business", Table: strings.Repeat("t", 64), Op: "INSERT", PK: rowPK, Payload: obj},
			ReasonBadPayload, `bad_payload: invalid table name "` + strings.Repeat("t", 63) + `…"`},
		{"table of 1 MiB is echoed cut", ChangeInput{Schema: "business", Table: strings.Repeat("t", 1<<20), Op: "INSERT", PK: rowPK, Payload: obj},
			ReasonBadPayload, `bad_payload: invalid table name "` + strings.Repeat("t", 63) + `…"`},
		{"long schema cut at a character boundary", ChangeInput{Schema: "a" + strings.Repeat("é", 40), Table: "users", Op: "INSERT", PK: rowPK, Payload: obj},
			ReasonBadPayload, `bad_payload: invalid schema name "a` + strings.Repeat("é", 31) + `…"`},
		{"long operation is echoed cut", ChangeInput{Schema: "business", Table: "users", Op: strings.Repeat("X", 5000), PK: rowPK, Payload: obj},
			ReasonBadPayload, "invalid operation: " + strings.Repeat("X", 63) + "…"},
		{"long pk is echoed cut", ChangeInput{Schema: "business", Table: "users", Op: "INSERT", PK: strings.Repeat("9", 5000), Payload: obj},
			ReasonBadPayload, "bad_payload: invalid UUID format: " + strings.Repeat("9", 63) + "…"},
		{"unregistered table", ChangeInput{Schema: "business", Table: "comments", Op: "INSERT", PK: rowPK, Payload: obj},
			ReasonUnregisteredTable, "table not registered business.comments"},
		{"absent schema means public", ChangeInput{Table: "users", Op: "INSERT", PK: rowPK, Payload: obj},
			ReasonUnregisteredTable, "table not registered public.users"},
		{"unknown operation", ChangeInput{Schema: "business", Table: "users", Op: "UPSERT", PK: rowPK, Payload: obj},
			ReasonBadPayload, "invalid operation: UPSERT"},
		{"table checked before operation", ChangeInput{Schema: "business", Table: "nope", Op: "UPSERT", PK: rowPK, Payload: obj},
			ReasonUnregisteredTable, "table not registered business.nope"},
		{"pk not a UUID", ChangeInput{Schema: "business", Table: "users", Op: "INSERT", PK: "12345", Payload: obj},
			ReasonBadPayload, "bad_payload: invalid UUID format: 12345"},
		{"operation checked before pk", ChangeInput{Schema: "business", Table: "users", Op: "MERGE", PK: "x", Payload: obj},
			ReasonBadPayload, "invalid operation: MERGE"},
		{"insert without payload", ChangeInput{Schema: "business", Table: "users", Op: "INSERT", PK: rowPK},
			ReasonBadPayload, "payload required for INSERT operation"},
		{"update without payload", ChangeInput{Schema: "business", Table: "users", Op: "update", PK: rowPK},
			ReasonBadPayload, "payload required for UPDATE operation"},
		{"payload over the limit", ChangeInput{Schema: "business", Table: "users", Op: "INSERT", PK: rowPK,
			Payload: json.RawMessage(`{"name":"` + strings.Repeat("x", 60) + `"}`)},
			ReasonBadPayload, "bad_payload: payload too large: 71 > 64"},
		{"size checked before shape", ChangeInput{Schema: "business", Table: "users", Op: "INSERT", PK: rowPK,
			Payload: json.RawMessage(`"` + strings.Repeat("x", 70) + `"`)},
			ReasonBadPayload, "bad_payload: payload too large: 72 > 64"},
		{"payload null", ChangeInput{Schema: "business", Table: "users", Op: "INSERT", PK: rowPK, Payload: json.RawMessage(`null`)},
			ReasonBadPayload, "invalid JSON payload"},
		{"payload array", ChangeInput{Schema: "business", Table: "users", Op: "INSERT", PK: rowPK, Payload: json.RawMessage(`[1]`)},
			ReasonBadPayload, "invalid JSON payload"},
		{"payload string", ChangeInput{Schema: "business", Table: "users", Op: "INSERT", PK: rowPK, Payload: json.RawMessage(`"x"`)},
			ReasonBadPayload, "invalid JSON payload"},
		{"payload number", ChangeInput{Schema: "business", Table: "users", Op: "INSERT", PK: rowPK, Payload: json.RawMessage(`7`)},
			ReasonBadPayload, "invalid JSON payload"},
		{"payload not UTF-8", ChangeInput{Schema: "business", Table: "users", Op: "INSERT", PK: rowPK, Payload: json.RawMessage("{\"name\":\"\xff\"}")},
			ReasonBadPayload, "invalid JSON payload"},
		{"delete with payload", ChangeInput{Schema: "business", Table: "users", Op: "DELETE", PK: rowPK, Payload: obj},
			ReasonBadPayload, "DELETE must not include payload"},
		{"foreign key value not a UUID", ChangeInput{Schema: "business", Table: "posts", Op: "INSERT", PK: rowPK,
			Payload: json.RawMessage(`{"author_id":"nope"}`)},
			ReasonBadPayload, "bad payload for business.posts pk=" + rowPK},
		{"foreign key value a number", ChangeInput{Schema: "business", Table: "posts", Op: "INSERT", PK: rowPK,
			Payload: json.RawMessage(`{"author_id":5}`)},
			ReasonBadPayload, "bad payload for business.posts pk=" + rowPK},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.SourceChangeID = int64(i + 1)
			res := upload(t, s, "alice", "phone", tc.in)
			out := res.Outcomes[0]
			if out.Status != StatusInvalid || out.Invalid == nil {
				t.Fatalf("status %q, want invalid/%s", out.Status, tc.reason)
			}
			if out.Invalid.Reason != tc.reason || out.Invalid.Message != tc.message {
				t.Errorf("got %s %q, want %s %q", out.Invalid.Reason, out.Invalid.Message, tc.reason, tc.message)
			}
			if want := tc.reason != ReasonUnregisteredTable; res.Accepted != want {
				t.Errorf("accepted = %v, want %v", res.Accepted, want)
			}
			switch tc.reason {
			case ReasonBadPayload:
				if out.Invalid.Details.Error != tc.message {
					t.Errorf("details.error = %q, want the message", out.Invalid.Details.Error)
				}
			case ReasonUnregisteredTable:
				if d := out.Invalid.Details; d.Schema == "" || d.Table == "" || !strings.HasSuffix(tc.message, d.Schema+"."+d.Table) {
					t.Errorf("details = %+v, want the schema and table of %q", d, tc.message)
				}
			}
		})
	}
	assertStream(t, s, "alice", 0)
}

// TestUpload_NormalisesNamesOpAndPK: names are trimmed and lower-cased, the operation upper-cased,
// and every accepted pk form is rewritten to the canonical form before anything else.
func TestUpload_NormalisesNamesOpAndPK(t *testing.T) {
	s, _ := newStore(t, StoreConfig{})
	forms := []string{
		"6F0D3C4E-8F0B-4C1E-9A57-2F1E3B7C9D01",
		"{6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d02}",
		"urn:uuid:6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d03",
		"6f0d3c4e8f0b4c1e9a572f1e3b7c9d04",
		"00000000-0000-0000-0000-000000000000",
	}
	want := []string{
		"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01", "6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d02",
		"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d03", "6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d04",
		"00000000-0000-0000-0000-000000000000",
	}
	var changes []ChangeInput
	for i, pk := range forms {
		changes = append(changes, ChangeInput{SourceChangeID: int64(i + 1), Schema: " Business ", Table: "USERS ",
			Op: " insert", PK: pk, Payload: json.RawMessage(`{"id": "` + pk + `",  "name": "x"}`)})
	}
	res := upload(t, s, "alice", "phone", changes...)
	for i, out := range res.Outcomes {
		if out.Status != StatusApplied || out.NewVersion != 1 {
			t.Fatalf("change %d: %+v, want applied version 1", i, out)
		}
	}
	page := download(t, s, "alice", "laptop", DownloadQuery{Limit: 100})
	for i, e := range page.Changes {
		if e.PK.String() != want[i] || e.Schema != "business" || e.Table != "users" || e.Op != "INSERT" {
			t.Errorf("entry %d: %s %s.%s %s, want %s business.users INSERT", i, e.PK, e.Schema, e.Table, e.Op, want[i])
		}
		// The payload keeps the client's key as sent, without insignificant whitespace.
		if wantPayload := `{"id":"` + forms[i] + `","name":"x"}`; string(e.Payload) != wantPayload {
			t.Errorf("entry %d payload %s, want %s", i, e.Payload, wantPayload)
		}
	}
}

// TestUpload_DeleteWithNullPayloadIsADelete: docs/protocol-v0.md §3.1 lets a server treat a null DELETE
// payload as absent; pulsesync does, so such a client does not lose its delete.
func TestUpload_DeleteWithNullPayloadIsADelete(t *testing.T) {
	s, _ := newStore(t, StoreConfig{})
	upload(t, s, "alice", "phone", userChange(1, rowPK, 0, "Ann"))
	res := upload(t, s, "alice", "phone", ChangeInput{SourceChangeID: 2, Schema: "business", Table: "users",
		Op: "DELETE", PK: rowPK, BaseVersion: 1, Payload: json.RawMessage(`null`)})
	if out := res.Outcomes[0]; out.Status != StatusApplied || out.NewVersion != 2 {
		t.Fatalf("got %+v, want applied version 2", out)
	}
}

// TestUpload_RefusesRequestsThatRepeatAKey: two changes of one row, or two changes with one
// source_change_id, make the whole request a RequestError and change nothing (§10.3 #1, #2).
func TestUpload_RefusesRequestsThatRepeatAKey(t *testing.T) {
	s, _ := newStore(t, StoreConfig{})
	other := "7a0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"
	cases := map[string][]ChangeInput{
		"same row in two forms":     {userChange(1, rowPK, 0, "a"), userChange(2, strings.ToUpper(rowPK), 0, "b")},
		"same source_change_id":     {userChange(1, rowPK, 0, "a"), userChange(1, other, 0, "b")},
		"same id, second invalid":   {userChange(3, rowPK, 0, "a"), {SourceChangeID: 3, Table: "nope"}},
		"same row, upsert + delete": {userChange(4, rowPK, 0, "a"), {SourceChangeID: 5, Schema: "business", Table: "users", Op: "DELETE", PK: rowPK}},
	}
	for name, changes := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := s.Upload(context.Background(), "alice", "phone", changes)
			var reqErr *RequestError
			if !errors.As(err, &reqErr) {
				t.Fatalf("err = %v, want a *RequestError", err)
			}
		})
	}
	assertStream(t, s, "alice", 0)
}

// TestUpload_BatchTooLarge refuses an upload over MaxChanges whole (§3.4 step 4, §3.10).
func TestUpload_BatchTooLarge(t *testing.T) {
	s, _ := newStore(t, StoreConfig{MaxChanges: 2})
	res := upload(t, s, "alice", "phone", userChange(1, rowPK, 0, "a"),
		userChange(2, "7a0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01", 0, "b"), userChange(3, "8a0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01", 0, "c"))
	if res.Accepted {
		t.Error("accepted = true, want false")
	}
	for _, out := range res.Outcomes {
		if out.Status != StatusInvalid || out.Invalid.Reason != ReasonBatchTooLarge ||
			out.Invalid.Message != "batch too large: changes=3 limit=2" {
			t.Errorf("got %+v %+v, want invalid batch_too_large", out, out.Invalid)
		}
	}
	assertStream(t, s, "alice", 0)
}

// TestUpload_UnregisteredTableDoesNotBlockOthers: accepted is false, yet the valid changes of
// the request are applied (§3.10 b).
func TestUpload_UnregisteredTableDoesNotBlockOthers(t *testing.T) {
	s, _ := newStore(t, StoreConfig{})
	res := upload(t, s, "alice", "phone", ChangeInput{SourceChangeID: 1, Schema: "business", Table: "nope", Op: "INSERT",
		PK: rowPK, Payload: json.RawMessage(`{}`)}, userChange(2, rowPK, 0, "Ann"))
	if res.Accepted || res.Outcomes[1].Status != StatusApplied || res.Highest != 1 {
		t.Fatalf("got accepted=%v %+v highest=%d, want false, applied, 1", res.Accepted, res.Outcomes[1], res.Highest)
	}
}

// download runs Store.Download and fails the test on error.
func download(t testing.TB, s *Store, user, source string, q DownloadQuery) DownloadPage {
	t.Helper()
	page, err := s.Download(context.Background(), user, source, q)
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	return page
}

// assertStream checks that user's stream holds exactly n entries.
func assertStream(t testing.TB, s *Store, user string, n int) {
	t.Helper()
	page := download(t, s, user, "", DownloadQuery{Limit: 1000, IncludeSelf: true})
	if len(page.Changes) != n {
		t.Fatalf("stream of %s has %d entries, want %d", user, len(page.Changes), n)
	}
}
