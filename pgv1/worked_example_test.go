package pgv1

import (
	"slices"
	"testing"
)

// The worked example of docs/protocol-v1.md §7, steps 1, 2, 4, 6, 7 and 10, at store level:
// every request hash the clients compute and every bundle hash the store answers must equal
// the document's.
func TestWorkedExample(t *testing.T) {
	t.Parallel()
	s, pool := newTestStore(t, Config{})
	ctx := t.Context()
	const ann = "6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"
	phone := Caller{User: "alice", Source: "5b0e8f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"}
	laptop := Caller{User: "alice", Source: "9d8c7b6a-5f4e-4d3c-9b2a-1f0e9d8c7b6a"}
	users := func(op string, base int64, payload string) []PushRow {
		return []PushRow{row("users", "id", ann, op, base, payload)}
	}
	check := func(step string, got BundleMeta, seq int64, source string, sbid int64, bundleHash, reqHash string) {
		t.Helper()
		want := BundleMeta{BundleSeq: seq, SourceID: source, SourceBundleID: sbid, RowCount: 1, BundleHash: bundleHash, RequestHash: reqHash}
		if got != want {
			t.Fatalf("%s: got %+v\nwant %+v", step, got, want)
		}
	}

	// Step 1: the phone attaches with an offline row.
	conn, err := s.Connect(ctx, phone, true)
	if err != nil || conn.Resolution != InitializeLocal || conn.InitializationID == "" {
		t.Fatalf("step 1 connect: %+v, %v", conn, err)
	}

	// Step 2: the seed push.
	seed := users("INSERT", 0, `{"active":"1","email":"ann@example.com","id":"`+ann+`","name":"Ann","visits":"3"}`)
	const seedReq = "361fd779dbf72311f02211bed60bca4c1fd2a72b9f8dd6a3a8d62d921ad0c69a"
	if h := requestHash(t, seed); h != seedReq {
		t.Fatalf("step 2 request hash %s, want %s", h, seedReq)
	}
	m := mustPush(t, s, phone, 1, seed, pushOpts{initID: conn.InitializationID})
	check("step 2 commit", m, 1, phone.Source, 1, "2f7b2f65081f9904a2ef24a28138d4c58abca00cc41dfc5ebcbf90c1f1c57af7", seedReq)
	wantWire := `{"schema":"business","table":"users","key":{"id":"` + ann + `"},"op":"INSERT","row_version":1,` +
		`"payload":{"active":true,"email":"ann@example.com","id":"` + ann + `","name":"Ann","visits":"3"}}`
	if got := bundleWires(t, pool, "alice", 1); !slices.Equal(got, []string{wantWire}) {
		t.Fatalf("step 2 stored rows %q, want %q", got, wantWire)
	}
	// The lost-answer retry: the same tuple is already committed.
	again, err := s.CreatePushSession(ctx, phone, CreatePush{SourceBundleID: 1, PlannedRowCount: 1, RequestHash: seedReq})
	if err != nil || again.AlreadyCommitted == nil || *again.AlreadyCommitted != m {
		t.Fatalf("step 2 retried create: %+v, %v; want already_committed %+v", again, err, m)
	}

	// Step 3 (connect only): the laptop finds the scope initialized.
	if conn, err := s.Connect(ctx, laptop, false); err != nil || conn.Resolution != RemoteAuthoritative {
		t.Fatalf("step 3 connect: %+v, %v", conn, err)
	}

	// Step 4: the laptop renames Ann.
	rename := users("UPDATE", 1, `{"active":"1","email":"ann@example.com","id":"`+ann+`","name":"Ann Lee","visits":"4"}`)
	m = mustPush(t, s, laptop, 1, rename, pushOpts{})
	check("step 4 commit", m, 2, laptop.Source, 1, "090ec5fe1f8b552188a629f09afffc720ee145a5cf22aa6e875733f15d670388",
		"51591ac181cc6899f14aad0ddd73ebe9583041cc52a279500e266a4e82ae6fb4")

	// Step 6: the phone, still at version 1, conflicts.
	stale := users("UPDATE", 1, `{"active":"1","email":"ann@work.example","id":"`+ann+`","name":"Ann","visits":"3"}`)
	if h := requestHash(t, stale); h != "628bd53f7671827cbd95e33e4ee2f663ee3f523f58dcf7a86e8ce569b4e0f344" {
		t.Fatalf("step 6 request hash %s", h)
	}
	created, err := s.CreatePushSession(ctx, phone, CreatePush{SourceBundleID: 2, PlannedRowCount: 1, RequestHash: requestHash(t, stale)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.StageChunk(ctx, phone, created.PushID, 0, stale); err != nil {
		t.Fatal(err)
	}
	_, err = s.CommitPush(ctx, phone, created.PushID)
	pe := protocolError(t, err)
	if pe.Code != "push_conflict" || pe.Conflict == nil {
		t.Fatalf("step 6: %v, want push_conflict", err)
	}
	cf := pe.Conflict
	wantRow := `{"active":true,"email":"ann@example.com","id":"` + ann + `","name":"Ann Lee","visits":"4"}`
	if cf.Schema != "business" || cf.Table != "users" || string(cf.Key) != `{"id":"`+ann+`"}` || cf.Op != "UPDATE" ||
		cf.BaseRowVersion != 1 || cf.ServerRowVersion != 2 || cf.ServerRowDeleted || string(cf.ServerRow) != wantRow {
		t.Fatalf("step 6 conflict %+v (server_row %s)", cf, cf.ServerRow)
	}
	if err := s.DeletePushSession(ctx, phone, created.PushID); err != nil {
		t.Fatalf("step 6 delete session: %v", err)
	}

	// Step 7: the merged re-push of the same tuple.
	merged := users("UPDATE", 2, `{"active":"1","email":"ann@work.example","id":"`+ann+`","name":"Ann Lee","visits":"4"}`)
	m = mustPush(t, s, phone, 2, merged, pushOpts{})
	check("step 7 commit", m, 3, phone.Source, 2, "5cb4db83979ca754e8a3b1e46b7656eea77c18e6a885f0396764180411742034",
		"9067eea6bb8ff1380c71044d1525b966eb2bb543637fb3b94fdd751b57a6a3da")

	// Step 10: the laptop deletes Ann (vector C).
	m = mustPush(t, s, laptop, 2, users("DELETE", 3, ""), pushOpts{})
	check("step 10 commit", m, 4, laptop.Source, 2, "353abf1d6fb0e04889327d75278438526f0fa1868c489fb6385b050f60251f8b",
		"5e07a0e9691c998aaa41e1e7010f1feaa44fd84fa9a35dc8ec720b81a120f992")
	wantWire = `{"schema":"business","table":"users","key":{"id":"` + ann + `"},"op":"DELETE","row_version":4}`
	if got := bundleWires(t, pool, "alice", 4); !slices.Equal(got, []string{wantWire}) {
		t.Fatalf("step 10 stored rows %q, want %q", got, wantWire)
	}
}
