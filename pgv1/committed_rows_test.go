package pgv1

import (
	"context"
	"encoding/json"
	"testing"
)

// Every refusal of docs/protocol-v1.md §3.7, in the reference's order.
func TestCommittedRows_Refusals(t *testing.T) {
	t.Parallel()
	s, pool := newTestStore(t, Config{})
	alice := Caller{User: "alice", Source: "phone"}
	seedUsers(t, s, "alice", 3, 1)
	seedUsers(t, s, "bob", 5, 1)
	// The floor moves to 1 without discarding bundle 1's rows: §3.7 step 2 refuses it anyway.
	mustExec(t, pool, `UPDATE sync_v1.scopes SET retained_floor = 1 WHERE user_id = 'alice'`)

	cases := []struct {
		name       string
		seq, after int64
		maxRows    int
		code       string
	}{
		{"§3.7 step 1: bundle_seq 0", 0, -1, 10, "committed_bundle_chunk_invalid"},
		{"§3.7 step 1: after_row_ordinal below 0", 2, -2, 10, "committed_bundle_chunk_invalid"},
		{"§3.7 step 1: max_rows 0", 2, -1, 0, "committed_bundle_chunk_invalid"},
		{"§3.7 step 1 before step 2: invalid and pruned", 1, -2, 10, "committed_bundle_chunk_invalid"},
		{"§3.7 step 2: at the floor, rows still present", 1, -1, 10, "history_pruned"},
		{"§3.7 step 3: beyond the user's history", 4, -1, 10, "committed_bundle_not_found"},
		{"§3.7 step 3: another user's seq is not this user's bundle", 5, -1, 10, "committed_bundle_not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CommittedRows(context.Background(), alice, tc.seq, tc.after, tc.maxRows)
			wantError(t, err, tc.code)
		})
	}
	if got := s.counters.historyPruned.Load(); got != 1 {
		t.Errorf("history_pruned counted %d times, want 1", got)
	}
}

// Paging of docs/protocol-v1.md §3.7: 0-based ordinals, next_row_ordinal = the last ordinal
// returned (after, or 0, when empty), has_more iff rows remain, max_rows capped at 5000.
func TestCommittedRows_Paging(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, Config{})
	c := Caller{User: "alice", Source: "phone"}
	rows := make([]seedRow, 5)
	for i := range rows {
		rows[i] = userRow(testUUID(i), "u")
	}
	seedBundle(t, s, "alice", "laptop", rows...)
	seq := seedBundle(t, s, "alice", "laptop", rows[:1]...) // a second bundle must not leak in

	type page struct {
		first, n int // ordinals of the rows expected
		next     int64
		hasMore  bool
	}
	cases := []struct {
		name    string
		after   int64
		maxRows int
		want    page
	}{
		{"first page, no after", -1, 2, page{0, 2, 1, true}},
		{"middle page", 1, 2, page{2, 2, 3, true}},
		{"last page", 3, 2, page{4, 1, 4, false}},
		{"after the last row: empty, after echoed", 4, 2, page{0, 0, 4, false}},
		{"whole bundle at once", -1, 1000, page{0, 5, 4, false}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.CommittedRows(context.Background(), c, 1, tc.after, tc.maxRows)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Rows) != tc.want.n || got.NextRowOrdinal != tc.want.next || got.HasMore != tc.want.hasMore {
				t.Fatalf("got %d rows, next %d, has_more %v; want %d, %d, %v",
					len(got.Rows), got.NextRowOrdinal, got.HasMore, tc.want.n, tc.want.next, tc.want.hasMore)
			}
			for i, r := range got.Rows {
				if want := bundleRowWire(rows[tc.want.first+i], 1); string(r) != want {
					t.Errorf("row %d = %s, want %s", tc.want.first+i, r, want)
				}
			}
			m := got.Meta
			if m.BundleSeq != 1 || m.SourceID != "laptop" || m.SourceBundleID != 1 || m.RowCount != 5 ||
				len(m.BundleHash) != 64 || m.RequestHash == "" {
				t.Errorf("metadata %+v", m)
			}
		})
	}
	// Any bundle of the user may be read, not only the caller's source's.
	got, err := s.CommittedRows(context.Background(), c, seq, -1, 10)
	if err != nil || len(got.Rows) != 1 || !json.Valid(got.Rows[0]) {
		t.Fatalf("bundle %d: %+v, %v", seq, got, err)
	}
}

// max_rows is silently capped at 5000 (docs/protocol-v1.md §3.7).
func TestCommittedRows_MaxRowsCapped(t *testing.T) {
	t.Parallel()
	s, pool := newTestStore(t, Config{})
	seedUsers(t, s, "alice", 1, 1)
	// Stretch bundle 1 to 5001 rows directly: the cap is about the page, not the contents.
	mustExec(t, pool, `INSERT INTO sync_v1.bundle_rows (user_id, bundle_seq, row_ordinal, wire)
		SELECT 'alice', 1, o, '{}' FROM generate_series(1, 5000) AS o`)
	mustExec(t, pool, `UPDATE sync_v1.bundles SET row_count = 5001 WHERE user_id = 'alice'`)
	got, err := s.CommittedRows(context.Background(), Caller{User: "alice"}, 1, -1, 100000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Rows) != MaxRowsPerCommittedBundleChunk || got.NextRowOrdinal != 4999 || !got.HasMore {
		t.Fatalf("got %d rows, next %d, has_more %v; want 5000, 4999, true", len(got.Rows), got.NextRowOrdinal, got.HasMore)
	}
}
