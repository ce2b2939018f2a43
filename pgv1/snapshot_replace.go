package pgv1

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/pulsesync/pulsesync/pgv1/wire"
)

// replacementReasons are the reasons a client may give for a source replacement
// (docs/protocol-v1.md §3.9).
var replacementReasons = []string{"history_pruned", "source_sequence_out_of_order", "source_sequence_changed", "source_retired"}

// replacementSourcesSQL reads the state of both sources of a replacement. The user's lock held by
// the caller fences every other change to them.
const replacementSourcesSQL = `SELECT source_id, state, coalesce(replaced_by_source_id, '')
FROM sync_v1.sources WHERE user_id = $1 AND source_id IN ($2, $3)`

const (
	// reserveSourceSQL announces the replacement's new source: nothing committed yet.
	reserveSourceSQL = `INSERT INTO sync_v1.sources (user_id, source_id, state) VALUES ($1, $2, 'reserved')`
	// retireSourceSQL retires the previous source, recording its successor and why; a source
	// the server never saw commit gets its row here.
	retireSourceSQL = `INSERT INTO sync_v1.sources AS s (user_id, source_id, state, replaced_by_source_id, retire_reason)
VALUES ($1, $2, 'retired', $3, $4)
ON CONFLICT (user_id, source_id) DO UPDATE
SET state = 'retired', replaced_by_source_id = excluded.replaced_by_source_id, retire_reason = excluded.retire_reason`
)

// replaceSource validates and applies a source replacement inside the snapshot's transaction,
// as docs/protocol-v1.md §3.9 step 5 says:
//   - either id invalid or reserved for the server, previous ≠ the caller's source, new =
//     previous, or an unknown reason → 400 snapshot_session_invalid;
//   - previous already retired: a different recorded successor → 409 source_retired naming it;
//     new unknown → reserved now; new reserved or active → accepted as is (a retried rotation);
//     new retired → 409 source_replacement_invalid;
//   - previous not retired: new known in any state → 409 source_replacement_invalid; otherwise
//     new is reserved and previous retired with the reason and its successor.
func (s *Store) replaceSource(ctx context.Context, tx pgx.Tx, c Caller, r SourceReplacement) error {
	invalid := func(msg string) error { return &Error{Code: "snapshot_session_invalid", Message: msg} }
	prev, next := r.PreviousSourceID, r.NewSourceID
	switch {
	case !wire.ValidSourceID(prev) || !wire.ValidSourceID(next) || s.ReservedSource(prev) || s.ReservedSource(next):
		return invalid("source_replacement ids must be non-empty visible ASCII tokens")
	case prev != c.Source:
		return invalid("source_replacement.previous_source_id must be the request's source")
	case next == prev:
		return invalid("source_replacement.new_source_id must differ from previous_source_id")
	case !slices.Contains(replacementReasons, r.Reason):
		return invalid("source_replacement.reason must be one of history_pruned, source_sequence_out_of_order, source_sequence_changed, source_retired")
	}

	rows, err := tx.Query(ctx, replacementSourcesSQL, c.User, prev, next)
	if err != nil {
		return fmt.Errorf("read replaced sources: %w", err)
	}
	type source struct{ state, replacedBy string }
	known := map[string]source{}
	var id string
	var src source
	_, err = pgx.ForEachRow(rows, []any{&id, &src.state, &src.replacedBy}, func() error {
		known[id] = src
		return nil
	})
	if err != nil {
		return fmt.Errorf("read replaced sources: %w", err)
	}
	old, newSrc := known[prev], known[next]
	_, newKnown := known[next]

	if old.state == "retired" {
		switch {
		case old.replacedBy != next:
			return &Error{Code: "source_retired", Message: "source is retired",
				Retired: &Retired{SourceID: prev, ReplacedBySourceID: old.replacedBy}}
		case !newKnown:
			if _, err := tx.Exec(ctx, reserveSourceSQL, c.User, next); err != nil {
				return fmt.Errorf("reserve source: %w", err)
			}
			return nil
		case newSrc.state == "reserved" || newSrc.state == "active":
			return nil
		default:
			return &Error{Code: "source_replacement_invalid", Message: "the replacement source is retired"}
		}
	}
	if newKnown {
		return &Error{Code: "source_replacement_invalid", Message: "the replacement source is already known"}
	}
	batch := &pgx.Batch{}
	batch.Queue(reserveSourceSQL, c.User, next)
	batch.Queue(retireSourceSQL, c.User, prev, next, r.Reason)
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("replace source: %w", err)
	}
	return nil
}
