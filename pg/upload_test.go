package pg

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
)

// deleteChange builds a DELETE of a demo user row.
func deleteChange(scid int64, pk string, base int64) ChangeInput {
	return ChangeInput{SourceChangeID: scid, Schema: "business", Table: "users", Op: "DELETE", PK: pk, BaseVersion: base}
}

// TestUpload_OptimisticConcurrency walks every cell of docs/protocol-v0.md §3.6.
func TestUpload_OptimisticConcurrency(t *testing.T) {
	type serverRecord int
	const (
		none serverRecord = iota
		liveV2
		tombstoneV3
	)
	cases := []struct {
		name        string
		record      serverRecord
		change      func(scid int64) ChangeInput
		status      Status
		newVersion  int64
		reason      string // for invalid
		rowVersion  int64  // for conflict: server_row.server_version
		rowDeleted  bool
		streamDelta int // entries the change adds to the stream
	}{
		{"none, upsert base 0", none, func(id int64) ChangeInput { return userChange(id, rowPK, 0, "new") }, StatusApplied, 1, "", 0, false, 1},
		{"none, upsert base 5", none, func(id int64) ChangeInput { return userChange(id, rowPK, 5, "new") }, StatusInvalid, 0, ReasonInternalError, 0, false, 0},
		{"none, upsert base -1", none, func(id int64) ChangeInput { return userChange(id, rowPK, -1, "new") }, StatusInvalid, 0, ReasonInternalError, 0, false, 0},
		{"none, delete base 0", none, func(id int64) ChangeInput { return deleteChange(id, rowPK, 0) }, StatusApplied, 0, "", 0, false, 0},
		{"none, delete base 5", none, func(id int64) ChangeInput { return deleteChange(id, rowPK, 5) }, StatusApplied, 0, "", 0, false, 0},
		{"live, upsert matching base", liveV2, func(id int64) ChangeInput { return userChange(id, rowPK, 2, "new") }, StatusApplied, 3, "", 0, false, 1},
		{"live, update op same as insert", liveV2, func(id int64) ChangeInput {
			c := userChange(id, rowPK, 2, "new")
			c.Op = "UPDATE"
			return c
		}, StatusApplied, 3, "", 0, false, 1},
		{"live, upsert stale base", liveV2, func(id int64) ChangeInput { return userChange(id, rowPK, 1, "new") }, StatusConflict, 0, "", 2, false, 0},
		{"live, insert base 0", liveV2, func(id int64) ChangeInput { return userChange(id, rowPK, 0, "new") }, StatusConflict, 0, "", 2, false, 0},
		{"live, delete matching base", liveV2, func(id int64) ChangeInput { return deleteChange(id, rowPK, 2) }, StatusApplied, 3, "", 0, false, 1},
		{"live, delete stale base", liveV2, func(id int64) ChangeInput { return deleteChange(id, rowPK, 1) }, StatusConflict, 0, "", 2, false, 0},
		{"tombstone, upsert matching base revives", tombstoneV3, func(id int64) ChangeInput { return userChange(id, rowPK, 3, "new") }, StatusApplied, 4, "", 0, false, 1},
		{"tombstone, insert base 0", tombstoneV3, func(id int64) ChangeInput { return userChange(id, rowPK, 0, "new") }, StatusConflict, 0, "", 3, true, 0},
		{"tombstone, delete matching base", tombstoneV3, func(id int64) ChangeInput { return deleteChange(id, rowPK, 3) }, StatusApplied, 4, "", 0, false, 1},
		{"tombstone, delete stale base", tombstoneV3, func(id int64) ChangeInput { return deleteChange(id, rowPK, 2) }, StatusConflict, 0, "", 3, true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t, StoreConfig{})
			scid := int64(1)
			if tc.record >= liveV2 {
				upload(t, s, "alice", "phone", userChange(1, rowPK, 0, "v1"))
				upload(t, s, "alice", "phone", userChange(2, rowPK, 1, "v2"))
				scid = 3
			}
			if tc.record == tombstoneV3 {
				upload(t, s, "alice", "phone", deleteChange(3, rowPK, 2))
				scid = 4
			}
			before := download(t, s, "alice", "", DownloadQuery{Limit: 1000, IncludeSelf: true}).WindowUntil
			out := upload(t, s, "alice", "phone", tc.change(scid)).Outcomes[0]
			if out.Status != tc.status || out.NewVersion != tc.newVersion {
				t.Fatalf("got %s version %d, want %s version %d", out.Status, out.NewVersion, tc.status, tc.newVersion)
			}
			switch tc.status {
			case StatusInvalid:
				if out.Invalid.Reason != tc.reason {
					t.Errorf("reason %s, want %s", out.Invalid.Reason, tc.reason)
				}
			case StatusConflict:
				row := out.ServerRow
				if row == nil || row.Version != tc.rowVersion || row.Deleted != tc.rowDeleted || row.PK.String() != rowPK ||
					row.Schema != "business" || row.Table != "users" {
					t.Fatalf("server_row %+v, want version %d deleted %v", row, tc.rowVersion, tc.rowDeleted)
				}
				if tc.rowDeleted != (row.Payload == nil) {
					t.Errorf("server_row payload %s, want null exactly for a tombstone", row.Payload)
				}
				if !tc.rowDeleted && string(row.Payload) != `{"email":"v2@example.com","id":"`+rowPK+`","name":"v2"}` {
					t.Errorf("server_row payload %s, want the v2 after-image", row.Payload)
				}
			}
			after := download(t, s, "alice", "", DownloadQuery{Limit: 1000, IncludeSelf: true})
			if got := int(after.WindowUntil - before); got != tc.streamDelta {
				t.Errorf("stream grew by %d, want %d", got, tc.streamDelta)
			}
			if tc.streamDelta == 1 {
				last := after.Changes[len(after.Changes)-1]
				if want := tc.change(0).Op; last.Op != want || last.Version != tc.newVersion || (last.Op == opDelete) != (last.Payload == nil) {
					t.Errorf("last entry %s v%d payload %s, want %s v%d", last.Op, last.Version, last.Payload, want, tc.newVersion)
				}
			}
		})
	}
}

// TestUpload_ReplayIsAppliedWithoutEffect: a recorded key answers applied without a version and
// changes nothing, whatever the rest of the change says (§3.8).
func TestUpload_ReplayIsAppliedWithoutEffect(t *testing.T) {
	s, _ := newStore(t, StoreConfig{})
	upload(t, s, "alice", "phone", userChange(1, rowPK, 0, "Ann"))
	replay := userChange(1, "7a0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01", 9, "other") // different row, base and payload
	res := upload(t, s, "alice", "phone", replay)
	if out := res.Outcomes[0]; out.Status != StatusApplied || out.NewVersion != 0 || res.Highest != 1 || res.Advance.Seq != 0 {
		t.Fatalf("replay: %+v highest %d advance %+v, want applied without version, highest 1, no advance", out, res.Highest, res.Advance)
	}
	assertStream(t, s, "alice", 1)
	// The key belongs to the source: another device may use the same number.
	if out := upload(t, s, "alice", "laptop", replay).Outcomes[0]; out.Status != StatusInvalid || out.Invalid.Reason != ReasonInternalError {
		t.Fatalf("laptop's change 1: %+v, want judged afresh (internal_error: base 9 of an unknown row)", out)
	}
}

// TestUpload_ConflictDoesNotConsumeKey: after a conflict or an invalid outcome the client resends
// the same source_change_id, and it is judged afresh (§3.8, §10.2).
func TestUpload_ConflictDoesNotConsumeKey(t *testing.T) {
	s, _ := newStore(t, StoreConfig{})
	upload(t, s, "alice", "laptop", userChange(1, rowPK, 0, "Ann"))
	upload(t, s, "alice", "laptop", userChange(2, rowPK, 1, "Ann Lee"))
	other := "7a0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"
	post := ChangeInput{SourceChangeID: 8, Schema: "business", Table: "posts", Op: "INSERT", PK: other,
		Payload: json.RawMessage(`{"id":"` + other + `","author_id":"9a0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"}`)}
	// Two changes per request: the reference's multi-change fast path leaked exactly these.
	res := upload(t, s, "alice", "phone", userChange(7, rowPK, 1, "Ann B"), post)
	if res.Outcomes[0].Status != StatusConflict || res.Outcomes[1].Invalid == nil || res.Outcomes[1].Invalid.Reason != ReasonFKMissing {
		t.Fatalf("first send: %+v %+v, want conflict and fk_missing", res.Outcomes[0], res.Outcomes[1])
	}
	assertStream(t, s, "alice", 2)
	post.Payload = json.RawMessage(`{"id":"` + other + `","author_id":"` + rowPK + `"}`)
	res = upload(t, s, "alice", "phone", userChange(7, rowPK, 2, "Ann B"), post)
	if res.Outcomes[0].Status != StatusApplied || res.Outcomes[0].NewVersion != 3 || res.Outcomes[1].Status != StatusApplied || res.Outcomes[1].NewVersion != 1 {
		t.Fatalf("resend: %+v %+v, want both freshly applied", res.Outcomes[0], res.Outcomes[1])
	}
	page := download(t, s, "alice", "laptop", DownloadQuery{Limit: 100})
	if len(page.Changes) != 2 || page.Changes[0].Version != 3 || page.Changes[1].Table != "posts" {
		t.Fatalf("laptop sees %+v, want exactly the two applied changes", page.Changes)
	}
}

// TestUpload_IdempotentDeleteRecordsNothing: deleting a row the server never had is applied but
// leaves no stream entry and no key, so nothing leaks to other devices (§3.6, §10.2).
func TestUpload_IdempotentDeleteRecordsNothing(t *testing.T) {
	s, _ := newStore(t, StoreConfig{})
	res := upload(t, s, "alice", "phone", deleteChange(1, rowPK, 0), deleteChange(2, "7a0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01", 0))
	if res.Outcomes[0].Status != StatusApplied || res.Outcomes[0].NewVersion != 0 || res.Highest != 0 {
		t.Fatalf("got %+v highest %d, want applied without version, highest 0", res.Outcomes[0], res.Highest)
	}
	assertStream(t, s, "alice", 0)
	// Key 1 was not consumed: it can now carry an insert.
	if out := upload(t, s, "alice", "phone", userChange(1, rowPK, 0, "Ann")).Outcomes[0]; out.NewVersion != 1 {
		t.Fatalf("insert with key 1: %+v, want applied version 1", out)
	}
}

// TestUpload_ConcurrentSameKeyAppliesOnce: eight concurrent requests with one source_change_id
// make exactly one stream entry; the others answer as replays (§3.8, invariant I2).
func TestUpload_ConcurrentSameKeyAppliesOnce(t *testing.T) {
	s, _ := newStore(t, StoreConfig{})
	const n = 8
	var wg sync.WaitGroup
	outcomes := make([]Outcome, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			res, err := s.Upload(context.Background(), "alice", "phone", []ChangeInput{userChange(42, rowPK, 0, "Ann")})
			errs[i] = err
			if err == nil {
				outcomes[i] = res.Outcomes[0]
			}
		})
	}
	wg.Wait()
	fresh := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		if outcomes[i].Status != StatusApplied {
			t.Fatalf("request %d: %+v, want applied", i, outcomes[i])
		}
		if outcomes[i].NewVersion == 1 {
			fresh++
		}
	}
	if fresh != 1 {
		t.Errorf("%d requests applied the change freshly, want exactly 1", fresh)
	}
	assertStream(t, s, "alice", 1)
}

// TestUpload_ParentsFirstAndForeignKeyPrecheck: a child and its parent in one request apply in
// parent-first order whatever the request order; the ids follow processing order and the
// statuses request order; a child without its parent gets fk_missing (§3.4, §3.7).
func TestUpload_ParentsFirstAndForeignKeyPrecheck(t *testing.T) {
	s, _ := newStore(t, StoreConfig{})
	user2 := "7a0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"
	postPK := func(i int) string { return fmt.Sprintf("9a0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d%02d", i) }
	post := func(scid int64, pk, author string) ChangeInput {
		return ChangeInput{SourceChangeID: scid, Schema: "business", Table: "posts", Op: "INSERT", PK: pk,
			Payload: json.RawMessage(`{"id":"` + pk + `","title":"t","author_id":` + author + `}`)}
	}
	res := upload(t, s, "alice", "phone",
		post(1, postPK(1), `"`+rowPK+`"`),                // parent later in the request
		post(2, postPK(2), `"`+user2+`"`),                // parent nowhere
		post(3, postPK(3), `null`),                       // no parent: not checked
		post(4, postPK(4), `""`),                         // empty: not checked
		post(5, postPK(5), `"bw08To8LTB6aVy8eO3ydAQ=="`), // base64 of 16 bytes = rowPK
		userChange(6, rowPK, 0, "Ann"),
	)
	want := []Status{StatusApplied, StatusInvalid, StatusApplied, StatusApplied, StatusApplied, StatusApplied}
	for i, out := range res.Outcomes {
		if out.Status != want[i] {
			t.Errorf("change %d: %s %+v, want %s", i+1, out.Status, out.Invalid, want[i])
		}
	}
	if inv := res.Outcomes[1].Invalid; inv == nil || inv.Reason != ReasonFKMissing || inv.Message != "" ||
		len(inv.Details.Missing) != 1 || inv.Details.Missing[0] != "business.users:"+user2 {
		t.Errorf("fk_missing: %+v, want details.missing [business.users:%s] and no message", inv, user2)
	}
	page := download(t, s, "alice", "laptop", DownloadQuery{Limit: 100})
	if len(page.Changes) != 5 || page.Changes[0].Table != "users" {
		t.Fatalf("stream %+v, want the user first, then 4 posts", page.Changes)
	}
}

// TestUpload_DeletesChildrenFirst: deletes run after upserts, children before parents, so a
// request deleting a post and its author leaves no business row behind and no failure.
func TestUpload_DeletesChildrenFirst(t *testing.T) {
	s, pool := newStore(t, StoreConfig{})
	postPK := "9a0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"
	upload(t, s, "alice", "phone", userChange(1, rowPK, 0, "Ann"), ChangeInput{SourceChangeID: 2, Schema: "business",
		Table: "posts", Op: "INSERT", PK: postPK, Payload: json.RawMessage(`{"id":"` + postPK + `","author_id":"` + rowPK + `"}`)})
	res := upload(t, s, "alice", "phone", deleteChange(3, rowPK, 1),
		ChangeInput{SourceChangeID: 4, Schema: "business", Table: "posts", Op: "DELETE", PK: postPK, BaseVersion: 1})
	if res.Outcomes[0].NewVersion != 2 || res.Outcomes[1].NewVersion != 2 {
		t.Fatalf("got %+v, want both deletes applied", res.Outcomes)
	}
	page := download(t, s, "alice", "laptop", DownloadQuery{After: 2, Limit: 100})
	if len(page.Changes) != 2 || page.Changes[0].Table != "posts" || page.Changes[1].Table != "users" {
		t.Fatalf("stream %+v, want the post's delete before the user's", page.Changes)
	}
	var users, failures int
	if err := pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM business.users),
		(SELECT count(*) FROM sync.materialize_failures)`).Scan(&users, &failures); err != nil {
		t.Fatal(err)
	}
	if users != 0 || failures != 0 {
		t.Errorf("%d business users and %d failures left, want none", users, failures)
	}
}

// TestUpload_RolledBackUploadDoesNotConsumeKey: when the transaction of the first request with a
// key fails as a whole, nothing of it stays, and the same key sent again is applied (§3.8).
func TestUpload_RolledBackUploadDoesNotConsumeKey(t *testing.T) {
	s, pool := newStore(t, StoreConfig{})
	// A stand-in for any failure of the whole transaction (a lost connection, a full disk):
	// the stream insert fails for payloads that say so.
	_, err := pool.Exec(context.Background(), `
CREATE FUNCTION sync.fail_on_boom() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN IF NEW.payload LIKE '%boom%' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$;
CREATE TRIGGER fail_on_boom BEFORE INSERT ON sync.changes FOR EACH ROW EXECUTE FUNCTION sync.fail_on_boom();`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Upload(context.Background(), "alice", "phone", []ChangeInput{userChange(1, rowPK, 0, "boom")}); err == nil {
		t.Fatal("the failing upload reported success")
	}
	assertStream(t, s, "alice", 0)
	if w, _ := s.Watermark(context.Background(), "alice"); w != 0 {
		t.Fatalf("watermark %d after a rolled-back upload, want 0", w)
	}
	if out := upload(t, s, "alice", "phone", userChange(1, rowPK, 0, "Ann")).Outcomes[0]; out.Status != StatusApplied || out.NewVersion != 1 {
		t.Fatalf("resend: %+v, want applied version 1", out)
	}
}

// TestDecide_RetriedAttemptStartsFromCleanOutcomes: a transaction retried after a transient
// failure judges its changes afresh; nothing of the failed attempt's outcomes may survive.
func TestDecide_RetriedAttemptStartsFromCleanOutcomes(t *testing.T) {
	s, _ := newStore(t, StoreConfig{})
	c, invalid := s.validate(0, &ChangeInput{SourceChangeID: 7, Schema: "business", Table: "users", Op: "UPDATE",
		PK: rowPK, BaseVersion: 2, Payload: json.RawMessage(`{"name":"x"}`)})
	if invalid != nil {
		t.Fatal(invalid)
	}
	// The failed attempt found the row at version 3: a conflict, with the row filled in.
	outcomes := []Outcome{{SourceChangeID: 7, Status: StatusConflict, ServerRow: &ServerRow{Version: 3}}}
	// Meanwhile the row is back at version 2 (say the winner rolled back): applied.
	states := map[rowKey]rowState{c.key(): {version: 2}}
	s.decide([]*change{c}, nil, states, outcomes)
	if want := (Outcome{SourceChangeID: 7, Status: StatusApplied, NewVersion: 3}); outcomes[0].ServerRow != nil ||
		outcomes[0].Status != want.Status || outcomes[0].NewVersion != want.NewVersion {
		t.Fatalf("outcome %+v, want %+v without a server_row", outcomes[0], want)
	}
}
