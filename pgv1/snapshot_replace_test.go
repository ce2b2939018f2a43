package pgv1

import (
	"context"
	"fmt"
	"testing"
)

// sourceRow is a sync_v1.sources row as a replacement leaves it.
type sourceRow struct {
	state, replacedBy, reason string
}

// readSources returns user's sources by id.
func readSources(t testing.TB, s *Store, user string) map[string]sourceRow {
	t.Helper()
	rows, err := s.pool.Query(context.Background(), `SELECT source_id, state, coalesce(replaced_by_source_id, ''),
		coalesce(retire_reason, '') FROM sync_v1.sources WHERE user_id = $1`, user)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]sourceRow{}
	for rows.Next() {
		var id string
		var r sourceRow
		if err := rows.Scan(&id, &r.state, &r.replacedBy, &r.reason); err != nil {
			t.Fatal(err)
		}
		out[id] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Source replacement with a snapshot (docs/protocol-v1.md §3.9 step 5): validation, then the
// effects by the previous source's state. Each case runs for a user of its own, whose sources
// start as given.
func TestCreateSnapshot_SourceReplacement(t *testing.T) {
	t.Parallel()
	s, pool := newTestStore(t, Config{ReservedSources: []string{"server-writer"}})
	ctx := context.Background()
	repl := func(prev, next, reason string) *SourceReplacement {
		return &SourceReplacement{PreviousSourceID: prev, NewSourceID: next, Reason: reason}
	}
	cases := []struct {
		name    string
		sources string // VALUES rows (user, source, state, replaced_by) to start from, or ""
		header  string
		repl    *SourceReplacement
		code    string
		retired *Retired
		after   map[string]sourceRow
	}{
		{name: "§3.9 step 5: previous not a valid id", header: "old", repl: repl("o ld", "new", "history_pruned"), code: "snapshot_session_invalid"},
		{name: "§3.9 step 5: new empty", header: "old", repl: repl("old", "", "history_pruned"), code: "snapshot_session_invalid"},
		{name: "§3.9 step 5: new is a reserved server id", header: "old", repl: repl("old", "server-writer", "history_pruned"), code: "snapshot_session_invalid"},
		{name: "§3.9 step 5: previous is not the header", header: "other", repl: repl("old", "new", "history_pruned"), code: "snapshot_session_invalid"},
		{name: "§3.9 step 5: new equals previous", header: "old", repl: repl("old", "old", "history_pruned"), code: "snapshot_session_invalid"},
		{name: "§3.9 step 5: unknown reason", header: "old", repl: repl("old", "new", "bored"), code: "snapshot_session_invalid"},
		{
			name: "§3.9 step 5: rotation of an active source", sources: "('old', 'active', NULL)",
			header: "old", repl: repl("old", "new", "source_sequence_changed"),
			after: map[string]sourceRow{"old": {"retired", "new", "source_sequence_changed"}, "new": {"reserved", "", ""}},
		},
		{
			name: "§3.9 step 5: rotation of a source the server never saw", header: "old", repl: repl("old", "new", "history_pruned"),
			after: map[string]sourceRow{"old": {"retired", "new", "history_pruned"}, "new": {"reserved", "", ""}},
		},
		{
			name: "§3.9 step 5: new already known", sources: "('old', 'active', NULL), ('new', 'active', NULL)",
			header: "old", repl: repl("old", "new", "history_pruned"), code: "source_replacement_invalid",
		},
		{
			name: "§3.9 step 5: previous retired towards another source", sources: "('old', 'retired', 'elsewhere')",
			header: "old", repl: repl("old", "new", "source_retired"), code: "source_retired",
			retired: &Retired{SourceID: "old", ReplacedBySourceID: "elsewhere"},
		},
		{
			name: "§3.9 step 5: previous retired without a successor", sources: "('old', 'retired', NULL)",
			header: "old", repl: repl("old", "new", "source_retired"), code: "source_retired",
			retired: &Retired{SourceID: "old"},
		},
		{
			name: "§3.9 step 5: retried rotation, new not yet recorded", sources: "('old', 'retired', 'new')",
			header: "old", repl: repl("old", "new", "history_pruned"),
			after: map[string]sourceRow{"old": {"retired", "new", ""}, "new": {"reserved", "", ""}},
		},
		{
			name: "§3.9 step 5: retried rotation, new reserved", sources: "('old', 'retired', 'new'), ('new', 'reserved', NULL)",
			header: "old", repl: repl("old", "new", "history_pruned"),
			after: map[string]sourceRow{"old": {"retired", "new", ""}, "new": {"reserved", "", ""}},
		},
		{
			name: "§3.9 step 5: retried rotation, new active", sources: "('old', 'retired', 'new'), ('new', 'active', NULL)",
			header: "old", repl: repl("old", "new", "history_pruned"),
			after: map[string]sourceRow{"old": {"retired", "new", ""}, "new": {"active", "", ""}},
		},
		{
			name: "§3.9 step 5: retried rotation, new retired", sources: "('old', 'retired', 'new'), ('new', 'retired', 'newer')",
			header: "old", repl: repl("old", "new", "history_pruned"), code: "source_replacement_invalid",
		},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			user := fmt.Sprintf("user%d", i)
			seedUsers(t, s, user, 1, 1)
			if tc.sources != "" {
				mustExec(t, pool, `INSERT INTO sync_v1.sources (user_id, source_id, state, replaced_by_source_id)
					SELECT $1, v.* FROM (VALUES `+tc.sources+`) AS v`, user)
			}
			before := readSources(t, s, user)
			info, err := s.CreateSnapshot(ctx, Caller{User: user, Source: tc.header}, tc.repl)
			if tc.code != "" {
				e := wantError(t, err, tc.code)
				if tc.retired != nil && (e.Retired == nil || *e.Retired != *tc.retired) {
					t.Errorf("retired %+v, want %+v", e.Retired, tc.retired)
				}
				if got := readSources(t, s, user); fmt.Sprint(got) != fmt.Sprint(before) {
					t.Errorf("a refused replacement changed the sources: %v → %v", before, got)
				}
				return
			}
			if err != nil || info.RowCount != 1 {
				t.Fatalf("snapshot %+v, %v", info, err)
			}
			if got := readSources(t, s, user); fmt.Sprint(got) != fmt.Sprint(tc.after) {
				t.Errorf("sources %v, want %v", got, tc.after)
			}
		})
	}
}

// The replacement is atomic with the snapshot: a build refused by a limit keeps the sources
// as they were.
func TestCreateSnapshot_RefusedBuildKeepsSources(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, Config{MaxRowsPerSnapshot: 1})
	seedUsers(t, s, "alice", 1, 2)
	_, err := s.CreateSnapshot(context.Background(), Caller{User: "alice", Source: "old"},
		&SourceReplacement{PreviousSourceID: "old", NewSourceID: "new", Reason: "history_pruned"})
	wantError(t, err, "snapshot_session_limit_exceeded")
	if got := readSources(t, s, "alice"); len(got) != 0 {
		t.Fatalf("sources %v after a refused build, want none", got)
	}
}
