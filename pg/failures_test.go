package pg

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// forbiddingDDL makes the value "forbidden" fail the projection of the demo tables and of a
// registered table in another schema, other.notes.
const forbiddingDDL = `
ALTER TABLE business.users ADD CONSTRAINT users_name_allowed CHECK (name <> 'forbidden');
ALTER TABLE business.posts ADD CONSTRAINT posts_title_allowed CHECK (title <> 'forbidden');
CREATE SCHEMA other;
CREATE TABLE other.notes (id uuid PRIMARY KEY, body text CONSTRAINT notes_body_allowed CHECK (body <> 'forbidden'));`

// newFailingStore returns a Store over the tables of forbiddingDDL.
func newFailingStore(t testing.TB) (*Store, *pgxpool.Pool) {
	t.Helper()
	return newStoreWithTables(t, forbiddingDDL, "other.notes")
}

// recordedFailure returns user's failure record of row pk and fails the test if there is none.
func recordedFailure(t testing.TB, s *Store, user, pk string) Failure {
	t.Helper()
	f, ok := failureOf(t, s, user, pk)
	if !ok {
		t.Fatalf("no failure record of %s for %s", pk, user)
	}
	return f
}

// retryFailure runs Store.RetryFailure and fails the test on error.
func retryFailure(t testing.TB, s *Store, user string, id int64) RetryResult {
	t.Helper()
	res, err := s.RetryFailure(context.Background(), user, id)
	if err != nil {
		t.Fatalf("retry failure %d as %s: %v", id, user, err)
	}
	return res
}

// lockFailure holds the row lock of failure id from a transaction of its own, as a retry in
// progress does, until the returned release runs (at the latest when the test ends).
func lockFailure(t testing.TB, pool *pgxpool.Pool, id int64) (release func()) {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	release = func() { _ = tx.Rollback(ctx) }
	t.Cleanup(release)
	var locked int64
	if err := tx.QueryRow(ctx, `SELECT id FROM sync.materialize_failures WHERE id = $1 FOR UPDATE`, id).Scan(&locked); err != nil {
		t.Fatalf("lock failure %d: %v", id, err)
	}
	return release
}

// describeFailure prints every field of f, for comparing records.
func describeFailure(f Failure) string {
	return fmt.Sprintf("{id %d user %s %s.%s pk %s version %d op %s payload %s error %q first seen %s retries %d}",
		f.ID, f.User, f.Schema, f.Table, f.PK, f.AttemptedVersion, f.Op, f.Payload, f.Error,
		f.FirstSeen.UTC().Format(time.RFC3339Nano), f.RetryCount)
}

func TestListFailures_NewestFirstFilteredLimitedAndPerUser(t *testing.T) {
	s, _ := newFailingStore(t)
	// Three uploads, so three first_seen times: 101 users, then a post, then a note.
	var users []ChangeInput
	for i := 1; i <= 101; i++ {
		users = append(users, userChange(int64(i), numberedPK(i), 0, "forbidden"))
	}
	upload(t, s, "alice", "phone", users...)
	postPK, notePK, bobsPK := numberedPK(1001), numberedPK(1002), numberedPK(1003)
	upload(t, s, "alice", "phone", rowChange(1001, "business.posts", "INSERT", postPK, 0, `{"id":"`+postPK+`","title":"forbidden"}`))
	notePayload := `{"id":"` + notePK + `","body":"forbidden"}`
	upload(t, s, "alice", "phone", rowChange(1002, "other.notes", "INSERT", notePK, 0, notePayload))
	upload(t, s, "bob", "phone", userChange(1, bobsPK, 0, "forbidden"))

	all, err := s.ListFailures(context.Background(), "alice", FailureFilter{Limit: 1000})
	if err != nil {
		t.Fatalf("list failures: %v", err)
	}
	if len(all) != 103 {
		t.Fatalf("alice has %d failures, want 103", len(all))
	}
	note := all[0]
	if note.ID <= 0 || note.User != "alice" || note.Schema != "other" || note.Table != "notes" || note.PK.String() != notePK ||
		note.AttemptedVersion != 1 || note.Op != "INSERT" || string(note.Payload) != notePayload ||
		!strings.Contains(note.Error, `"notes_body_allowed"`) || time.Since(note.FirstSeen).Abs() > time.Minute || note.RetryCount != 0 {
		t.Fatalf("newest failure %s, want alice's note %s at version 1", describeFailure(note), notePK)
	}
	if all[1].PK.String() != postPK || !all[1].FirstSeen.Before(note.FirstSeen) || !all[2].FirstSeen.Before(all[1].FirstSeen) {
		t.Fatalf("second failure %s, third %s: want the post, then the older users", describeFailure(all[1]), describeFailure(all[2]))
	}
	for i := 3; i < len(all); i++ {
		if all[i].Table != "users" || all[i].ID >= all[i-1].ID {
			t.Fatalf("failure %d is %s id %d after id %d; want users, newest id first", i, all[i].Table, all[i].ID, all[i-1].ID)
		}
	}

	cases := []struct {
		name      string
		user      string
		filter    FailureFilter
		wantLen   int
		wantFirst string // pk of the first record, "" = skip
	}{
		{"schema", "alice", FailureFilter{Schema: "business", Limit: 1000}, 102, postPK},
		{"table", "alice", FailureFilter{Table: "posts", Limit: 1000}, 1, postPK},
		{"schema and table", "alice", FailureFilter{Schema: "other", Table: "notes", Limit: 1000}, 1, notePK},
		{"schema and table of different tables", "alice", FailureFilter{Schema: "other", Table: "users", Limit: 1000}, 0, ""},
		{"limit 0 means 100", "alice", FailureFilter{}, 100, notePK},
		{"negative limit means 100", "alice", FailureFilter{Limit: -1}, 100, notePK},
		{"limit above 1000 means 100", "alice", FailureFilter{Limit: 1001}, 100, notePK},
		{"limit 1", "alice", FailureFilter{Limit: 1}, 1, notePK},
		{"limit 1000", "alice", FailureFilter{Limit: 1000}, 103, notePK},
		{"another user sees only their own", "bob", FailureFilter{}, 1, bobsPK},
		{"a user without failures", "carol", FailureFilter{}, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListFailures(context.Background(), tc.user, tc.filter)
			if err != nil {
				t.Fatalf("list failures: %v", err)
			}
			if len(got) != tc.wantLen {
				t.Fatalf("%s with %+v: %d failures, want %d", tc.user, tc.filter, len(got), tc.wantLen)
			}
			for _, f := range got {
				if f.User != tc.user || (tc.filter.Schema != "" && f.Schema != tc.filter.Schema) || (tc.filter.Table != "" && f.Table != tc.filter.Table) {
					t.Fatalf("%s with %+v lists %s", tc.user, tc.filter, describeFailure(f))
				}
			}
			if tc.wantFirst != "" && got[0].PK.String() != tc.wantFirst {
				t.Fatalf("%s with %+v: first is %s, want %s", tc.user, tc.filter, got[0].PK, tc.wantFirst)
			}
		})
	}
}

func TestRetryFailure_SucceedsOnceTheCauseIsFixed(t *testing.T) {
	s, pool := newFailingStore(t)
	pk := numberedPK(1)
	upload(t, s, "alice", "phone", userChange(1, pk, 0, "Ann"))
	upload(t, s, "alice", "phone", userChange(2, pk, 1, "forbidden"))
	f := recordedFailure(t, s, "alice", pk)

	if _, err := pool.Exec(context.Background(), `ALTER TABLE business.users DROP CONSTRAINT users_name_allowed`); err != nil {
		t.Fatal(err)
	}
	if got, want := retryFailure(t, s, "alice", f.ID), (RetryResult{Status: StatusApplied, Version: 2}); got != want {
		t.Fatalf("retry: %+v, want %+v", got, want)
	}
	wantNoFailure(t, s, "alice", pk)
	if got, _ := userRow(t, pool, pk); got != "forbidden,forbidden@example.com" {
		t.Fatalf("business row after the retry: %q, want version 2's values", got)
	}
}

func TestRetryFailure_FailingAgainCountsTheRetry(t *testing.T) {
	s, pool := newFailingStore(t)
	pk := numberedPK(1)
	upload(t, s, "alice", "phone", userChange(1, pk, 0, "forbidden"))
	first := recordedFailure(t, s, "alice", pk)

	for n := 1; n <= 2; n++ {
		got := retryFailure(t, s, "alice", first.ID)
		if got.Status != StatusMaterializeError || got.Version != 1 || !strings.Contains(got.Message, `"users_name_allowed"`) {
			t.Fatalf("retry %d: %+v, want materialize_error at version 1 naming the constraint", n, got)
		}
		f := recordedFailure(t, s, "alice", pk)
		if f.ID != first.ID || f.RetryCount != n || f.Error != got.Message || !f.FirstSeen.Equal(first.FirstSeen) {
			t.Fatalf("record after retry %d: %s, want retry count %d, error %q, first seen kept", n, describeFailure(f), n, got.Message)
		}
	}
	if got, ok := userRow(t, pool, pk); ok {
		t.Fatalf("business row %q written by a failing retry", got)
	}
}

func TestRetryFailure_StaleFailureIsRemoved(t *testing.T) {
	s, pool := newFailingStore(t)
	pk := numberedPK(1)
	upload(t, s, "alice", "phone", userChange(1, pk, 0, "Ann"))
	upload(t, s, "alice", "phone", userChange(2, pk, 1, "forbidden"))
	f := recordedFailure(t, s, "alice", pk)
	// The sync record is gone, as after a user's data was erased.
	if _, err := pool.Exec(context.Background(), `DELETE FROM sync.rows WHERE user_id = 'alice' AND pk = $1`, pk); err != nil {
		t.Fatal(err)
	}

	want := RetryResult{Status: StatusApplied, Version: 2, Message: "failure was stale; removed"}
	if got := retryFailure(t, s, "alice", f.ID); got != want {
		t.Fatalf("retry: %+v, want %+v", got, want)
	}
	wantNoFailure(t, s, "alice", pk)
}

// TestRetryFailure_UnknownOrAnotherUsersIDIsNotFound: ownership is checked before the record
// is locked (§10.3 #13), so even while the record is locked another user learns nothing, and
// the record is left as it was.
func TestRetryFailure_UnknownOrAnotherUsersIDIsNotFound(t *testing.T) {
	s, pool := newFailingStore(t)
	pk := numberedPK(1)
	upload(t, s, "alice", "phone", userChange(1, pk, 0, "forbidden"))
	before := recordedFailure(t, s, "alice", pk)
	release := lockFailure(t, pool, before.ID)

	cases := []struct {
		name string
		user string
		id   int64
	}{
		{"another user's id", "bob", before.ID},
		{"unknown id", "alice", before.ID + 1000},
		{"zero id", "alice", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := s.RetryFailure(context.Background(), tc.user, tc.id)
			if !errors.Is(err, ErrFailureNotFound) {
				t.Fatalf("retry of %d as %s: %+v, %v; want ErrFailureNotFound", tc.id, tc.user, res, err)
			}
		})
	}
	release()
	if after := recordedFailure(t, s, "alice", pk); describeFailure(after) != describeFailure(before) {
		t.Fatalf("alice's record changed to %s, want %s", describeFailure(after), describeFailure(before))
	}
}

// TestRetryFailure_LockedRecordMeansRetryInProgress: while another transaction holds the
// record, a retry answers ErrRetryInProgress at once and changes nothing.
func TestRetryFailure_LockedRecordMeansRetryInProgress(t *testing.T) {
	s, pool := newFailingStore(t)
	pk := numberedPK(1)
	upload(t, s, "alice", "phone", userChange(1, pk, 0, "forbidden"))
	before := recordedFailure(t, s, "alice", pk)

	release := lockFailure(t, pool, before.ID)
	if res, err := s.RetryFailure(context.Background(), "alice", before.ID); !errors.Is(err, ErrRetryInProgress) {
		t.Fatalf("retry while locked: %+v, %v; want ErrRetryInProgress", res, err)
	}
	release()
	if after := recordedFailure(t, s, "alice", pk); describeFailure(after) != describeFailure(before) {
		t.Fatalf("record after the refused retry: %s, want %s", describeFailure(after), describeFailure(before))
	}
	if got := retryFailure(t, s, "alice", before.ID); got.Status != StatusMaterializeError {
		t.Fatalf("retry after the lock was released: %+v, want it to run (materialize_error)", got)
	}
}

// TestRetryFailure_DeleteBlockedByChildFailsAgainThenSucceeds: retrying a parent's delete that
// a business child still blocks is a failed retry, not a failed transaction, also when the
// foreign key is deferred; once the child is gone the retry deletes the parent.
func TestRetryFailure_DeleteBlockedByChildFailsAgainThenSucceeds(t *testing.T) {
	for _, tc := range parentChildCases {
		t.Run(tc.name, func(t *testing.T) {
			s, pool := newStoreWithTables(t, tc.ddl)
			parent, child := numberedPK(1), numberedPK(2)
			upload(t, s, "alice", "phone", userChange(1, parent, 0, "Ann"))
			addChild(t, s, pool, tc.insertChild, 2, parent, child)
			upload(t, s, "alice", "phone", rowChange(3, "business.users", "DELETE", parent, 1, ""))
			f := recordedFailure(t, s, "alice", parent)

			got := retryFailure(t, s, "alice", f.ID)
			if got.Status != StatusMaterializeError || got.Version != 2 || !strings.Contains(got.Message, "foreign key constraint") {
				t.Fatalf("retry with the child present: %+v, want materialize_error at version 2", got)
			}
			if _, ok := userRow(t, pool, parent); !ok {
				t.Fatalf("parent business row deleted while its child exists")
			}
			if f := recordedFailure(t, s, "alice", parent); f.RetryCount != 1 {
				t.Fatalf("record after the failed retry: %s, want retry count 1", describeFailure(f))
			}

			removeChild(t, s, pool, tc.deleteChild, 4, parent, child)
			if got, want := retryFailure(t, s, "alice", f.ID), (RetryResult{Status: StatusApplied, Version: 2}); got != want {
				t.Fatalf("retry without the child: %+v, want %+v", got, want)
			}
			if got, ok := userRow(t, pool, parent); ok {
				t.Fatalf("parent business row %q survived the successful retry", got)
			}
			wantNoFailure(t, s, "alice", parent)
		})
	}
}
