package importv0_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pulsesync/pulsesync/internal/pgtest"
	"github.com/pulsesync/pulsesync/internal/servertest"
	"github.com/pulsesync/pulsesync/pg/importv0"
)

// TestImport_SourceChangedBeforeServingIsImportedAgain re-imports a source that grew after a
// finished import, before any device used the target: the new entry arrives and every
// sequence moves above the new maximum.
func TestImport_SourceChangedBeforeServingIsImportedAgain(t *testing.T) {
	t.Parallel()
	ref := newScenario(t, "json")
	dst := connect(t, pgtest.NewDB(t))
	mustRun(t, t.Context(), ref.pool, dst, importv0.Config{})
	ref.record(t, entry{ID: 12, User: "alice", Source: "alice-phone", SCID: 4, Table: "users", Op: "UPDATE", PK: u1, Payload: `{"name":"Ann C"}`, Version: 3})

	if plan, err := importv0.DryRun(t.Context(), ref.pool, dst, importv0.Config{}); err != nil || plan.Action != "re-import (the source changed)" {
		t.Errorf("dry run over the grown source: %+v, %v; want a re-import", plan, err)
	}
	res := mustRun(t, t.Context(), ref.pool, dst, importv0.Config{})
	if res.Floor != 12 || res.Changes != 12 {
		t.Errorf("re-import: floor %d, %d changes; want 12 and 12", res.Floor, res.Changes)
	}
	var version, serverID, bobSeq int64
	err := dst.QueryRow(t.Context(), `SELECT r.server_version, r.server_id, q.last_seq FROM sync.rows r, sync.user_seq q
		WHERE r.user_id = 'alice' AND r.pk = $1 AND q.user_id = 'bob'`, u1).Scan(&version, &serverID, &bobSeq)
	if err != nil || version != 3 || serverID != 12 || bobSeq != 12 {
		t.Errorf("u1 at version %d (entry %d), bob's sequence at %d (%v); want 3, 12, 12", version, serverID, bobSeq, err)
	}
}

// importLockKey is the advisory lock an import holds on its target ("impv00").
const importLockKey int64 = 0x696d70763030

// TestImport_RefusesWhatWouldBreakCursors checks each refusal: a target that holds sync state
// of its own, a source that changed after the target served uploads, another source, and a
// second import running at once. A finished import of an unchanged source still re-runs as a
// no-op after serving.
func TestImport_RefusesWhatWouldBreakCursors(t *testing.T) {
	t.Parallel()
	ref := newScenario(t, "json")

	used := connect(t, pgtest.NewDB(t))
	if _, err := used.Exec(t.Context(), `INSERT INTO sync.user_seq (user_id, last_seq) VALUES ('carol', 3)`); err != nil {
		t.Fatalf("seed a used target: %v", err)
	}
	if _, err := importv0.Run(t.Context(), ref.pool, used, importv0.Config{}); !errors.Is(err, importv0.ErrTargetNotEmpty) {
		t.Errorf("import into a used target: %v, want ErrTargetNotEmpty", err)
	}

	dstURL := pgtest.NewDB(t)
	dst := connect(t, dstURL)
	// Another import holds the target's lock on a connection of its own.
	other, err := pgx.Connect(t.Context(), dstURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = other.Close(context.Background()) })
	if _, err := other.Exec(t.Context(), `SELECT pg_advisory_lock($1)`, importLockKey); err != nil {
		t.Fatalf("take the import lock: %v", err)
	}
	if _, err := importv0.Run(t.Context(), ref.pool, dst, importv0.Config{}); !errors.Is(err, importv0.ErrBusy) {
		t.Errorf("import while another holds the lock: %v, want ErrBusy", err)
	}
	if _, err := other.Exec(t.Context(), `SELECT pg_advisory_unlock($1)`, importLockKey); err != nil {
		t.Fatalf("release the import lock: %v", err)
	}

	mustRun(t, t.Context(), ref.pool, dst, importv0.Config{})
	elsewhere := newScenario(t, "json")
	if _, err := importv0.Run(t.Context(), elsewhere.pool, dst, importv0.Config{}); !errors.Is(err, importv0.ErrOtherSource) {
		t.Errorf("import from another source: %v, want ErrOtherSource", err)
	}

	srv := servertest.New(t, servertest.Options{DatabaseURL: dstURL})
	phone := device{srv, "alice", "alice-phone"}
	if up := phone.upload(t, change{SCID: 4, Table: "users", Op: "UPDATE", PK: u1, Base: 2, Payload: json.RawMessage(`{"name":"Ann B"}`)}); up.Highest != 12 {
		t.Fatalf("upload after the switch: highest %d, want 12", up.Highest)
	}
	if res, err := importv0.Run(t.Context(), ref.pool, dst, importv0.Config{}); err != nil || res.Action != "nothing to do (already imported)" {
		t.Errorf("re-run of an unchanged source after serving: %+v, %v; want nothing to do", res, err)
	}
	ref.record(t, entry{ID: 12, User: "bob", Source: "bob-tablet", SCID: 5, Table: "users", Op: "UPDATE", PK: b1, Payload: `{"name":"B"}`, Version: 3})
	if _, err := importv0.Run(t.Context(), ref.pool, dst, importv0.Config{}); !errors.Is(err, importv0.ErrServed) {
		t.Errorf("import of a grown source after serving: %v, want ErrServed", err)
	}
}
