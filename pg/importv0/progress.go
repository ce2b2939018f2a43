package importv0

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pulsesync/pulsesync/pg"
)

// The phases of an import, in order. Each one's batches commit with their cursor, so a run
// that stops resumes inside the phase it was in.
const (
	phaseChanges  = "changes"  // the change log, in server_id order
	phaseRows     = "rows"     // row versions and after-images, staged
	phaseFailures = "failures" // materialization failures of current row versions
	phaseFinish   = "finish"   // everything copied: rows, owners and sequences are next
	phaseDone     = "done"     // rows, owners and sequences written: the import is complete
)

var (
	// ErrTargetNotEmpty means the target already holds v0 sync state that no import wrote:
	// importing into it could collide with ids its users already saw.
	ErrTargetNotEmpty = errors.New("the target already holds sync state: import into a freshly migrated database")
	// ErrOtherSource means the target holds an import from a different source.
	ErrOtherSource = errors.New("the target holds an import from another source")
	// ErrServed means pulsesync accepted uploads in the target after (or during) an import, and
	// the import would now have to add entries below ids devices may have seen.
	ErrServed = errors.New("pulsesync has accepted uploads in the target since the import began")
	// ErrBusy means another import into the same target is running.
	ErrBusy = errors.New("another import into the target is running")
)

// rowKey is the key of a row version in the source, the rows phase's cursor.
type rowKey struct {
	user, schema, table string
	pk                  pg.UUID
}

// progress is the target's record of its import (sync.import_v0_progress).
type progress struct {
	exists         bool
	source         string
	floor          int64
	sourceEntries  int64
	seqFloor       int64
	phase          string
	phaseDone      int64
	changesAfter   int64
	rowsAfter      *rowKey // nil until the first rows batch
	failuresAfter  int64
	targetNotEmpty bool // sync state exists that no import of this record wrote
	served         bool // a user sequence differs from what the import last set
}

// readProgressSQL reads the import record (if any) and the two facts about the target that
// decide whether an import may run: whether it holds sync state at all, and whether any user
// sequence differs from the floor the last finished import set (0 before one finished).
const readProgressSQL = `SELECT p.source, p.floor, p.source_entries, p.seq_floor, p.phase, p.phase_done,
       p.changes_after, p.rows_after_user, p.rows_after_schema, p.rows_after_table, p.rows_after_pk,
       p.failures_after,
       EXISTS (SELECT 1 FROM sync.changes) OR EXISTS (SELECT 1 FROM sync.rows) OR EXISTS (SELECT 1 FROM sync.user_seq),
       EXISTS (SELECT 1 FROM sync.user_seq WHERE last_seq <> coalesce(p.seq_floor, 0))
FROM (SELECT 1) one LEFT JOIN sync.import_v0_progress p ON true`

// readProgress reads the target's import record.
func readProgress(ctx context.Context, q pg.Querier) (progress, error) {
	var (
		p                      progress
		source, phase          *string
		floor, entries, seq    *int64
		done, changes, failsAt *int64
		user, schema, table    *string
		pk                     *pg.UUID
	)
	err := q.QueryRow(ctx, readProgressSQL).Scan(&source, &floor, &entries, &seq, &phase, &done, &changes,
		&user, &schema, &table, &pk, &failsAt, &p.targetNotEmpty, &p.served)
	if err != nil {
		return progress{}, fmt.Errorf("read import progress: %w", err)
	}
	if source == nil {
		return p, nil
	}
	p.exists = true
	p.source, p.phase = *source, *phase
	p.floor, p.sourceEntries, p.seqFloor, p.phaseDone = *floor, *entries, *seq, *done
	p.changesAfter, p.failuresAfter = *changes, *failsAt
	if user != nil {
		p.rowsAfter = &rowKey{user: *user, schema: *schema, table: *table, pk: *pk}
	}
	return p, nil
}

// action is what a run does, given the target's record and the source's counts.
type action int

const (
	actStart   action = iota // a fresh target: import from the beginning
	actResume                // an unfinished import of this source: continue where it stopped
	actRestart               // the source changed and nothing was served: import again over it
	actNothing               // a finished import of the source as it is now
)

// String names the action for reports.
func (a action) String() string {
	return [...]string{"import", "resume", "re-import (the source changed)", "nothing to do (already imported)"}[a]
}

// decide chooses what a run does, or refuses with one of the package's errors. A target that
// served uploads is never written again: its users' ids above the floor are visible, and any
// entry the import added now could land below a cursor a device already holds.
func decide(p progress, c Counts, label string) (action, error) {
	if !p.exists {
		if p.targetNotEmpty {
			return 0, ErrTargetNotEmpty
		}
		return actStart, nil
	}
	if p.source != label {
		return 0, fmt.Errorf("%w: it began from %s, not %s", ErrOtherSource, p.source, label)
	}
	changed := c.Floor > p.floor || c.Entries != p.sourceEntries
	switch {
	case !changed && p.phase == phaseDone:
		return actNothing, nil
	case p.served:
		return 0, ErrServed
	case changed:
		return actRestart, nil
	}
	return actResume, nil
}

// startSQL records a new import, or restarts one over a changed source. The floor never goes
// down: sequences a finished import set must stay valid whatever the source does.
const startSQL = `INSERT INTO sync.import_v0_progress AS p (source, floor, source_entries, phase)
VALUES ($1, $2, $3, 'changes')
ON CONFLICT (id) DO UPDATE SET floor = GREATEST(p.floor, excluded.floor), source_entries = excluded.source_entries,
    phase = 'changes', phase_done = 0, changes_after = 0, rows_after_user = NULL, rows_after_schema = NULL,
    rows_after_table = NULL, rows_after_pk = NULL, failures_after = 0,
    started_at = now(), updated_at = now(), finished_at = NULL
RETURNING floor`

// start records the beginning (or restart) of an import of c from label and returns the
// record a run continues from. A restart empties the staged rows, which the source may have
// changed since.
func start(ctx context.Context, dst *pgxpool.Pool, c Counts, label string) (progress, error) {
	p := progress{exists: true, source: label, sourceEntries: c.Entries, phase: phaseChanges}
	err := pgx.BeginFunc(ctx, dst, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `TRUNCATE sync.import_v0_rows`); err != nil {
			return err
		}
		return tx.QueryRow(ctx, startSQL, label, c.Floor, c.Entries).Scan(&p.floor)
	})
	if err != nil {
		return progress{}, fmt.Errorf("record import start: %w", err)
	}
	return p, nil
}

// advanceSQL moves the import to its next phase.
const advanceSQL = `UPDATE sync.import_v0_progress SET phase = $1, phase_done = 0, updated_at = now()`

// lockKey is the advisory lock one import holds on its target for its whole run.
const lockKey = 0x696d70763030 // "impv00"

// lockTarget takes the target's import lock on a connection of its own and returns the
// function releasing both; ErrBusy if another import holds it.
func lockTarget(ctx context.Context, dst *pgxpool.Pool) (unlock func(), err error) {
	conn, err := dst.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquire connection for the import lock: %w", err)
	}
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockKey).Scan(&locked); err != nil {
		conn.Release()
		return nil, fmt.Errorf("take import lock: %w", err)
	}
	if !locked {
		conn.Release()
		return nil, ErrBusy
	}
	return func() {
		// A session lock outlives a cancelled run: release it on a context of its own.
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lockKey)
		conn.Release()
	}, nil
}
