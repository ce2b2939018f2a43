package pgv1

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Capture records the real effects of a commit (docs/protocol-v1.md §1.3): every row that an
// INSERT, UPDATE or DELETE on a registered table changed while the transaction carries the
// capture marker, cascades, defaults and other triggers' changes included, because those are
// real row changes of the same tables. The design is in doc.go.

// captureMarker is the setting a commit transaction turns on (SET LOCAL) to have its effects
// captured. Writes of transactions without it (other applications, migrations) are not
// captured and never enter a bundle.
const captureMarker = "pulsesync.v1_capture"

// captureTable is the connection's temporary table of captured effects. ON COMMIT DELETE ROWS
// empties it at the end of every transaction that used it; being temporary, it costs no WAL.
const captureTable = "pulsesync_v1_capture"

// prepareCaptureSQL creates the capture table on the connection's first commit and turns the
// marker on for the rest of the transaction. pos orders effects in the order they happened.
const prepareCaptureSQL = `CREATE TEMP TABLE IF NOT EXISTS ` + captureTable + ` (
    pos       bigint GENERATED ALWAYS AS IDENTITY,
    tbl       text   NOT NULL,
    key_value text   NOT NULL,
    op        "char" NOT NULL,
    scope_id  text   NOT NULL
) ON COMMIT DELETE ROWS`

// captureOnSQL turns the marker on until the transaction ends.
const captureOnSQL = `SELECT set_config('` + captureMarker + `', 'on', true)`

// readCaptureSQL returns the transaction's effects in the order they happened.
const readCaptureSQL = `SELECT tbl, key_value, op, scope_id FROM pg_temp.` + captureTable + ` ORDER BY pos`

// captureFunctionSQL is the statement-level trigger function of one table and operation: it
// copies the keys of the rows the statement changed from its transition table. The table's
// name and key column are baked in, so the plan is cached once per connection.
const captureFunctionSQL = `CREATE OR REPLACE FUNCTION sync_v1.%[1]s() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    IF current_setting('` + captureMarker + `', true) = 'on' THEN
        INSERT INTO pg_temp.` + captureTable + ` (tbl, key_value, op, scope_id)
        SELECT %[2]s, r.%[3]s::text, %[4]s, r._sync_scope_id FROM %[5]s r;
    END IF;
    RETURN NULL;
END
$fn$`

// captureTriggerSQL attaches one capture function to its table.
const captureTriggerSQL = `DROP TRIGGER IF EXISTS %[1]s ON %[2]s;
CREATE TRIGGER %[1]s AFTER %[3]s ON %[2]s REFERENCING %[4]s TABLE AS %[5]s
    FOR EACH STATEMENT EXECUTE FUNCTION sync_v1.%[6]s()`

// captureLockKey serialises trigger installation between nodes starting at once.
const captureLockKey = 0x70756c7365763163 // "pulsev1c"

// installCapture (re)creates the capture functions and triggers of every registered table in
// one transaction. It is idempotent.
func installCapture(ctx context.Context, pool *pgxpool.Pool, reg *Registry) error {
	var sql strings.Builder
	fmt.Fprintf(&sql, "SELECT pg_advisory_xact_lock(%d);\n", captureLockKey)
	for _, t := range reg.tables {
		for _, ev := range []struct {
			event, suffix, op, transition, alias string
		}{
			{"INSERT", "ins", "I", "NEW", "new_rows"},
			{"UPDATE", "upd", "U", "NEW", "new_rows"},
			{"DELETE", "del", "D", "OLD", "old_rows"},
		} {
			fn := pgx.Identifier{fmt.Sprintf("capture_%s__%s_%s", t.schema, t.name, ev.suffix)}.Sanitize()
			fmt.Fprintf(&sql, captureFunctionSQL+";\n", fn, quoteLiteral(t.qualified()), t.key.ident, quoteLiteral(ev.op), ev.alias)
			trigger := pgx.Identifier{"pulsesync_v1_capture_" + ev.suffix}.Sanitize()
			fmt.Fprintf(&sql, captureTriggerSQL+";\n", trigger, t.ident, ev.event, ev.transition, ev.alias, fn)
		}
	}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, sql.String())
		return err
	})
	if err != nil {
		return fmt.Errorf("install v1 capture triggers: %w", err)
	}
	return nil
}

// quoteLiteral quotes s as an SQL string literal; s is a validated identifier, so only the
// quotes matter.
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// effect is one captured row change.
type effect struct {
	table *table
	key   string
	op    byte // 'I', 'U' or 'D'
}

// change is one row of a bundle before rendering: the normalised effects on one key.
type change struct {
	table *table
	key   string
	op    string // INSERT, UPDATE or DELETE
}

// normalise folds the effects, in the order they happened, into one change per key, ordered by
// the key's first effect (docs/protocol-v1.md §1.3): first INSERT and last DELETE cancel out;
// a last DELETE is a DELETE; a first INSERT is an INSERT; anything else, DELETE-then-INSERT
// included, is an UPDATE. Positions are unique, so no tie needs the table or key bytes.
func normalise(effects []effect) []change {
	type fold struct {
		first, last byte
		at          int
	}
	type rowID struct {
		t   *table
		key string
	}
	folds := make(map[rowID]*fold, len(effects))
	var order []rowID
	for _, e := range effects {
		id := rowID{e.table, e.key}
		f := folds[id]
		if f == nil {
			f = &fold{first: e.op, at: len(order)}
			folds[id] = f
			order = append(order, id)
		}
		f.last = e.op
	}
	out := make([]change, 0, len(order))
	for _, id := range order {
		f := folds[id]
		var op string
		switch {
		case f.first == 'I' && f.last == 'D':
			continue
		case f.last == 'D':
			op = "DELETE"
		case f.first == 'I':
			op = "INSERT"
		default:
			op = "UPDATE"
		}
		out = append(out, change{table: id.t, key: id.key, op: op})
	}
	return out
}
