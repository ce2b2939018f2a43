package importv0_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/pulsesync/pulsesync/internal/pgtest"
	"github.com/pulsesync/pulsesync/pg/importv0"
)

// generated returns n entries of two users' devices: interleaved users, each row inserted,
// updated, now and then deleted and inserted again, ids in commit order except that every
// pair of neighbours of different users swapped.
func generated(n int) (entries []entry, order []int) {
	versions := map[string]int64{}
	deleted := map[string]bool{}
	scids := map[string]int64{}
	for i := 1; i <= n; i++ {
		user := "alice"
		if i%3 == 0 {
			user = "bob"
		}
		source := fmt.Sprintf("%s-device-%d", user, i%2)
		pk := fmt.Sprintf("%08x-0000-4000-8000-%012x", i%41, i%41)
		if user == "bob" {
			pk = fmt.Sprintf("%08x-1111-4000-8000-%012x", i%13, i%13)
		}
		key := user + pk
		versions[key]++
		scids[source]++
		e := entry{ID: int64(i), User: user, Source: source, SCID: scids[source], Table: "users", PK: pk,
			Version: versions[key], Op: "UPDATE", Payload: fmt.Sprintf(`{"name":"n%d"}`, i)}
		switch {
		case versions[key] == 1 || deleted[key]:
			e.Op, deleted[key] = "INSERT", false
		case i%7 == 0:
			e.Op, e.Payload, deleted[key] = "DELETE", "", true
		}
		entries = append(entries, e)
	}
	for i := 1; i <= n; i++ {
		order = append(order, i)
	}
	for i := 0; i+1 < n; i += 2 {
		if entries[order[i]-1].User != entries[order[i+1]-1].User {
			order[i], order[i+1] = order[i+1], order[i]
		}
	}
	return entries, order
}

// newGenerated returns a reference database holding n generated entries.
func newGenerated(t *testing.T, n int) *reference {
	t.Helper()
	ref := newReference(t, "json")
	entries, order := generated(n)
	inOrder := make([]entry, 0, n)
	for _, id := range order {
		inOrder = append(inOrder, entries[id-1])
	}
	ref.record(t, inOrder...)
	return ref
}

// TestImport_InterruptedImportResumesToTheSameState cancels an import in the middle of its
// change log and again in the middle of its rows; each later run resumes where the last
// stopped, and the target ends as an uninterrupted import leaves it.
func TestImport_InterruptedImportResumesToTheSameState(t *testing.T) {
	t.Parallel()
	ref := newGenerated(t, 300)
	whole := connect(t, pgtest.NewDB(t))
	mustRun(t, t.Context(), ref.pool, whole, importv0.Config{BatchSize: 25})
	want := snapshot(t, whole)

	dst := connect(t, pgtest.NewDB(t))
	for _, stop := range []importv0.Progress{{Phase: "changes", Done: 100}, {Phase: "rows", Done: 25}} {
		ctx, cancel := context.WithCancel(t.Context())
		_, err := importv0.Run(ctx, ref.pool, dst, importv0.Config{BatchSize: 25, Progress: func(p importv0.Progress) {
			if p.Phase == stop.Phase && p.Done >= stop.Done {
				cancel()
			}
		}})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("import cancelled in %s: %v, want context.Canceled", stop.Phase, err)
		}
		plan, err := importv0.DryRun(t.Context(), ref.pool, dst, importv0.Config{})
		if err != nil || plan.Action != "resume" || plan.Phase != stop.Phase {
			t.Fatalf("dry run after cancelling in %s: %+v, %v; want resume in %s", stop.Phase, plan, err, stop.Phase)
		}
	}

	var reports []importv0.Progress
	res := mustRun(t, t.Context(), ref.pool, dst, importv0.Config{BatchSize: 25, Progress: func(p importv0.Progress) {
		reports = append(reports, p)
	}})
	if res.Action != "resume" || res.Phase != "rows" {
		t.Errorf("last run: action %q in %q, want resume in rows", res.Action, res.Phase)
	}
	if got := snapshot(t, dst); !slices.Equal(got, want) {
		t.Fatalf("interrupted import ended as\n%q\nan uninterrupted one as\n%q", got, want)
	}
	// The resumed run reports the rows phase from where the earlier runs left it.
	if len(reports) == 0 || reports[0].Phase != "rows" || reports[0].Done <= 25 {
		t.Fatalf("first report of the resumed run %+v, want rows beyond the 25 written before", reports)
	}
	if last := reports[len(reports)-1]; last.Done != last.Total {
		t.Errorf("last report %+v, want its phase complete", last)
	}
}

// TestImport_DryRunWritesNothing reports a source's counts against a fresh target, migrated or
// not, and leaves the target as it was.
func TestImport_DryRunWritesNothing(t *testing.T) {
	t.Parallel()
	ref := newScenario(t, "json")
	dst := connect(t, pgtest.NewDB(t))
	before := snapshot(t, dst)
	plan, err := importv0.DryRun(t.Context(), ref.pool, dst, importv0.Config{})
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	want := importv0.Counts{Entries: 11, Deletes: 2, Users: 2, Floor: 11, Rows: 5, Deleted: 2, Failures: 1}
	if plan.Counts != want || plan.Action != "import" {
		t.Errorf("dry run: %+v, want counts %+v and action import", plan, want)
	}
	if after := snapshot(t, dst); !slices.Equal(before, after) {
		t.Errorf("dry run changed the target: %q", after)
	}
	var records int
	if err := dst.QueryRow(t.Context(), `SELECT count(*) FROM sync.import_v0_progress`).Scan(&records); err != nil || records != 0 {
		t.Errorf("import records after a dry run: %d (%v), want 0", records, err)
	}

	bare := connect(t, pgtest.NewDB(t))
	if _, err := bare.Exec(t.Context(), `DROP SCHEMA sync CASCADE`); err != nil {
		t.Fatalf("drop the sync schema: %v", err)
	}
	if plan, err := importv0.DryRun(t.Context(), ref.pool, bare, importv0.Config{}); err != nil || plan.Action != "import" {
		t.Errorf("dry run into an unmigrated target: %+v, %v; want action import", plan, err)
	}
}
