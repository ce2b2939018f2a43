package pg

import (
	"encoding/json"
	"testing"
)

// TestIsolation_UsersSharingUUIDs: two users syncing rows with the same UUIDs keep separate
// versions, streams, conflicts and parents (invariant I3).
func TestIsolation_UsersSharingUUIDs(t *testing.T) {
	s, _ := newStore(t, StoreConfig{})
	upload(t, s, "alice", "phone", userChange(1, rowPK, 0, "Ann"))
	upload(t, s, "alice", "phone", userChange(2, rowPK, 1, "Ann Lee"))

	// Bob's insert of the same UUID is his own version 1, not a conflict with Alice's row.
	res := upload(t, s, "bob", "phone", userChange(1, rowPK, 0, "Bob"))
	if out := res.Outcomes[0]; out.Status != StatusApplied || out.NewVersion != 1 || res.Highest != 1 {
		t.Fatalf("bob's insert: %+v highest %d, want applied v1, highest 1 (his own sequence)", out, res.Highest)
	}
	// Bob's conflict shows Bob's row, never Alice's.
	out := upload(t, s, "bob", "phone", userChange(2, rowPK, 5, "Bob")).Outcomes[0]
	if out.Status != StatusConflict || out.ServerRow.Version != 1 || string(out.ServerRow.Payload) != `{"email":"Bob@example.com","id":"`+rowPK+`","name":"Bob"}` {
		t.Fatalf("bob's conflict: %+v %+v, want his own version 1", out, out.ServerRow)
	}
	// A parent that exists only for Alice is missing for Bob.
	postPK := "9a0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"
	alicesOnly := "7a0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"
	upload(t, s, "alice", "phone", userChange(3, alicesOnly, 0, "Cy"))
	post := ChangeInput{SourceChangeID: 3, Schema: "business", Table: "posts", Op: "INSERT", PK: postPK,
		Payload: json.RawMessage(`{"id":"` + postPK + `","author_id":"` + alicesOnly + `"}`)}
	if out := upload(t, s, "bob", "phone", post).Outcomes[0]; out.Invalid == nil || out.Invalid.Reason != ReasonFKMissing {
		t.Fatalf("bob's post under alice's user: %+v, want fk_missing", out)
	}
	// Streams and watermarks are per user.
	for user, want := range map[string]int{"alice": 3, "bob": 1} {
		page := download(t, s, user, "laptop", DownloadQuery{Limit: 100})
		if len(page.Changes) != want || page.WindowUntil != int64(want) {
			t.Errorf("%s downloads %d entries, window %d; want %d and %d", user, len(page.Changes), page.WindowUntil, want, want)
		}
		for _, e := range page.Changes {
			if user == "bob" && string(e.Payload) != `{"email":"Bob@example.com","id":"`+rowPK+`","name":"Bob"}` {
				t.Errorf("bob downloads %s", e.Payload)
			}
		}
	}
}
