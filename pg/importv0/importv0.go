package importv0

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config configures an import. The zero value means the documented defaults.
type Config struct {
	// SourceSchema is the schema of the reference's tables in the source; "" = "sync". A
	// source renamed to live beside pulsesync in one database names its new schema here.
	SourceSchema string
	// BatchSize is how many source records one target transaction writes; 0 = 5,000.
	BatchSize int
	// Progress, if set, is called after every committed batch, from the goroutine running
	// the import.
	Progress func(Progress)
}

func (c Config) withDefaults() Config {
	if c.SourceSchema == "" {
		c.SourceSchema = "sync"
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 5000
	}
	return c
}

// Progress reports how far a phase of an import has come.
type Progress struct {
	Phase string // "changes", "rows" or "failures"
	Done  int64  // source records of the phase written so far, earlier runs included
	Total int64  // source records of the phase
}

// Plan is what an import would do: the source's counts and the decision taken from the
// target's state.
type Plan struct {
	Source string // host:port/database schema of the source
	Counts Counts
	Action string // import, resume, re-import, nothing to do
	Phase  string // the phase a resumed import continues in; "" otherwise
}

// Result reports a finished import: the plan it carried out and what the target holds.
type Result struct {
	Plan
	// Orphans counts source row versions that no change-log entry describes; pulsesync keeps
	// a row's after-image in the stream, so they are not imported (a consistent source has none).
	Orphans int64
	// What the target holds afterwards.
	Changes, Rows, Owners, Failures, Users int64
	// Floor is the value every imported user's sequence continues above.
	Floor int64
}

// DryRun reads the source and the target and reports what Run would do, writing nothing. A
// target whose sync schema is not migrated yet counts as fresh.
func DryRun(ctx context.Context, src, dst *pgxpool.Pool, cfg Config) (Plan, error) {
	cfg = cfg.withDefaults()
	s, err := openSource(ctx, src, cfg.SourceSchema)
	if err != nil {
		return Plan{}, err
	}
	plan := Plan{Source: s.label}
	if plan.Counts, err = s.counts(ctx); err != nil {
		return Plan{}, err
	}
	var migrated bool
	if err := dst.QueryRow(ctx, tableExistsSQL, "sync.import_v0_progress").Scan(&migrated); err != nil {
		return Plan{}, fmt.Errorf("look for the import record: %w", err)
	}
	p := progress{}
	if migrated {
		if p, err = readProgress(ctx, dst); err != nil {
			return Plan{}, err
		}
	}
	act, err := decide(p, plan.Counts, s.label)
	if err != nil {
		return Plan{}, err
	}
	plan.Action = act.String()
	if act == actResume {
		plan.Phase = p.phase
	}
	return plan, nil
}

// Run imports the source into the target, whose sync schema must be migrated, and which no
// pulsesync node may serve until Run returns.
//
// It is idempotent and resumable: every batch commits with its cursor, an interrupted run
// continues where it stopped, a finished import of an unchanged source does nothing, and a
// source that changed since is imported again over the earlier import, as long as pulsesync
// has not accepted uploads in the target (ErrServed otherwise). The last step writes the row
// versions, business-row owners and user sequences in one transaction, so devices never see
// a half-imported target. Only one Run per target at a time (ErrBusy otherwise).
func Run(ctx context.Context, src, dst *pgxpool.Pool, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	s, err := openSource(ctx, src, cfg.SourceSchema)
	if err != nil {
		return Result{}, err
	}
	unlock, err := lockTarget(ctx, dst)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	res := Result{Plan: Plan{Source: s.label}}
	if res.Counts, err = s.counts(ctx); err != nil {
		return Result{}, err
	}
	p, err := readProgress(ctx, dst)
	if err != nil {
		return Result{}, err
	}
	act, err := decide(p, res.Counts, s.label)
	if err != nil {
		return Result{}, err
	}
	res.Action = act.String()
	if act == actResume {
		res.Phase = p.phase
	}
	if act == actStart || act == actRestart {
		if p, err = start(ctx, dst, res.Counts, s.label); err != nil {
			return Result{}, err
		}
	}
	r := &run{src: s, dst: dst, cfg: cfg}
	if err := r.phases(ctx, p, res.Counts); err != nil {
		return Result{}, err
	}
	if p.phase != phaseDone {
		if res.Orphans, err = finish(ctx, dst); err != nil {
			return Result{}, err
		}
	}
	if err := readTotals(ctx, dst, &res); err != nil {
		return Result{}, err
	}
	return res, nil
}

// run is one Run's copying state.
type run struct {
	src  *source
	dst  *pgxpool.Pool
	cfg  Config
	done int64 // records of the current phase written, earlier runs included
}

// phases copies the phases from the one p stopped in to the end of the copying.
func (r *run) phases(ctx context.Context, p progress, c Counts) error {
	steps := []struct {
		phase string
		total int64
		fetch func() fetcher
	}{
		{phaseChanges, c.Entries, func() fetcher { return r.fetchChanges(p.changesAfter) }},
		{phaseRows, c.Rows, func() fetcher { return r.fetchRows(p.rowsAfter) }},
		{phaseFailures, c.Failures, func() fetcher { return r.fetchFailures(p.failuresAfter) }},
	}
	reached := false
	for _, step := range steps {
		if step.phase == p.phase {
			reached, r.done = true, p.phaseDone
		} else {
			r.done = 0
		}
		if !reached {
			continue
		}
		if err := r.copyPhase(ctx, step.phase, step.total, step.fetch()); err != nil {
			return err
		}
	}
	return nil
}

// report passes progress to the configured callback.
func (r *run) report(p Progress) {
	if r.cfg.Progress != nil {
		r.cfg.Progress(p)
	}
}

// totalsSQL counts what the target holds after an import.
const totalsSQL = `SELECT (SELECT count(*) FROM sync.changes), (SELECT count(*) FROM sync.rows),
       (SELECT count(*) FROM sync.business_owners), (SELECT count(*) FROM sync.materialize_failures),
       (SELECT count(*) FROM sync.user_seq), (SELECT floor FROM sync.import_v0_progress)`

// readTotals fills res with the target's counts.
func readTotals(ctx context.Context, dst *pgxpool.Pool, res *Result) error {
	err := dst.QueryRow(ctx, totalsSQL).Scan(&res.Changes, &res.Rows, &res.Owners, &res.Failures, &res.Users, &res.Floor)
	if err != nil {
		return fmt.Errorf("count the target: %w", err)
	}
	return nil
}

// finishRowsSQL turns the staged row versions into sync.rows, pointing each at the stream
// entry that holds its current after-image: the entry of the row's version whose image equals
// the staged one (a source may hold several entries of one version, see docs/protocol-v0.md
// §10.2), else one of its version, else the row's latest entry. One sort over the staged rows
// joined with their entries, however large the import.
const finishRowsSQL = `INSERT INTO sync.rows AS r (user_id, schema_name, table_name, pk, server_version, deleted, server_id)
SELECT DISTINCT ON (s.user_id, s.schema_name, s.table_name, s.pk)
       s.user_id, s.schema_name, s.table_name, s.pk, s.server_version, s.deleted, c.server_id
FROM sync.import_v0_rows s
JOIN sync.changes c ON c.user_id = s.user_id AND c.schema_name = s.schema_name AND c.table_name = s.table_name AND c.pk = s.pk
ORDER BY s.user_id, s.schema_name, s.table_name, s.pk,
         CASE WHEN c.server_version <> s.server_version OR (c.op = 'DELETE') <> s.deleted THEN 0
              WHEN s.deleted OR c.payload::jsonb = s.payload::jsonb THEN 2
              ELSE 1 END DESC,
         c.server_version = s.server_version DESC, c.server_id DESC
ON CONFLICT (user_id, schema_name, table_name, pk) DO UPDATE
SET server_version = excluded.server_version, deleted = excluded.deleted, server_id = excluded.server_id
WHERE (r.server_version, r.deleted, r.server_id) IS DISTINCT FROM (excluded.server_version, excluded.deleted, excluded.server_id)`

// orphansSQL counts staged rows that finishRowsSQL could not place.
const orphansSQL = `SELECT count(*) FROM sync.import_v0_rows s
WHERE NOT EXISTS (SELECT 1 FROM sync.rows r
                  WHERE r.user_id = s.user_id AND r.schema_name = s.schema_name AND r.table_name = s.table_name AND r.pk = s.pk)`

// releaseOwnersSQL frees business rows whose owner's row is now a tombstone, as a delete does
// (only an import over a changed source finds any).
const releaseOwnersSQL = `DELETE FROM sync.business_owners o USING sync.import_v0_rows s
WHERE s.deleted AND o.schema_name = s.schema_name AND o.table_name = s.table_name AND o.pk = s.pk AND o.user_id = s.user_id`

// claimOwnersSQL gives every live business row to its user. Business tables are keyed by id
// alone, so where the reference let two users hold one id (docs/protocol-v0.md §10.3 #9) the
// business row holds the last writer's image: the user whose row changed last owns it.
const claimOwnersSQL = `INSERT INTO sync.business_owners AS o (schema_name, table_name, pk, user_id)
SELECT DISTINCT ON (schema_name, table_name, pk) schema_name, table_name, pk, user_id
FROM sync.import_v0_rows WHERE NOT deleted
ORDER BY schema_name, table_name, pk, updated_at DESC, user_id
ON CONFLICT (schema_name, table_name, pk) DO UPDATE SET user_id = excluded.user_id
WHERE o.user_id <> excluded.user_id`

// sequencesSQL starts every imported user's sequence at the floor ($1), so the first id
// pulsesync hands out is above every id of the old global sequence, which a device's cursor
// may hold whichever user's entry it came from.
const sequencesSQL = `INSERT INTO sync.user_seq AS q (user_id, last_seq)
SELECT user_id, $1 FROM (SELECT user_id FROM sync.changes UNION SELECT user_id FROM sync.import_v0_rows) u
ON CONFLICT (user_id) DO UPDATE SET last_seq = excluded.last_seq WHERE q.last_seq < excluded.last_seq`

const doneSQL = `UPDATE sync.import_v0_progress
SET phase = 'done', phase_done = 0, seq_floor = floor, updated_at = now(), finished_at = now()`

// finish writes rows, owners and sequences from the staged rows and the imported stream, in
// one transaction, marks the import done and empties the staging table. It returns how many
// staged rows had no stream entry.
func finish(ctx context.Context, dst *pgxpool.Pool) (orphans int64, err error) {
	err = pgx.BeginFunc(ctx, dst, func(tx pgx.Tx) error {
		var floor int64
		if err := tx.QueryRow(ctx, `SELECT floor FROM sync.import_v0_progress`).Scan(&floor); err != nil {
			return err
		}
		b := &pgx.Batch{}
		b.Queue(finishRowsSQL)
		b.Queue(orphansSQL).QueryRow(func(row pgx.Row) error { return row.Scan(&orphans) })
		b.Queue(releaseOwnersSQL)
		b.Queue(claimOwnersSQL)
		b.Queue(sequencesSQL, floor)
		b.Queue(`TRUNCATE sync.import_v0_rows`)
		b.Queue(doneSQL)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return 0, fmt.Errorf("write rows, owners and sequences: %w", err)
	}
	return orphans, nil
}
