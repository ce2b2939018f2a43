package pgv1

import (
	"context"
	"encoding/json"
	"fmt"
)

// committedRowsSQL reads a committed-rows page with everything its checks need: the user's
// retained floor, the bundle's metadata (source_id NULL when there is no such bundle) and at
// most $4 row wire texts after ordinal $3. It is one statement, so the floor, the metadata and
// the rows come from one snapshot, which is what the reference's repeatable-read transaction
// is for.
const committedRowsSQL = `
SELECT coalesce((SELECT retained_floor FROM sync_v1.scopes WHERE user_id = $1), 0),
       b.source_id, coalesce(b.source_bundle_id, 0), coalesce(b.row_count, 0),
       coalesce(b.bundle_hash, ''), coalesce(b.request_hash, ''),
       ARRAY(SELECT r.wire FROM sync_v1.bundle_rows r
             WHERE r.user_id = $1 AND r.bundle_seq = $2 AND r.row_ordinal > $3::bigint
             ORDER BY r.row_ordinal LIMIT $4)
FROM (VALUES (1)) AS one (x)
LEFT JOIN sync_v1.bundles b ON b.user_id = $1 AND b.bundle_seq = $2`

// CommittedRows resolves GET /sync/committed-bundles/{bundle_seq}/rows (docs/protocol-v1.md
// §3.7); after is -1 when the query has no after_row_ordinal, and maxRows is capped at
// MaxRowsPerCommittedBundleChunk. Checks, in the reference's order: a range error → 400
// committed_bundle_chunk_invalid, bundleSeq at or below the retained floor → 409
// history_pruned (even if its rows still exist), no such bundle of the user → 404
// committed_bundle_not_found. Any bundle of the user may be read, not only the caller's own.
//
// Ordinals are 0-based and dense, so NextRowOrdinal is after + len(Rows) (the value echoed
// when the page is empty, 0 for an absent after) and HasMore says rows follow the page.
func (s *Store) CommittedRows(ctx context.Context, c Caller, bundleSeq, after int64, maxRows int) (CommittedRowsPage, error) {
	if bundleSeq <= 0 || after < -1 || maxRows <= 0 {
		return CommittedRowsPage{}, &Error{Code: "committed_bundle_chunk_invalid",
			Message: "bundle_seq must be positive, after_row_ordinal non-negative and max_rows positive"}
	}
	maxRows = min(maxRows, MaxRowsPerCommittedBundleChunk)

	var (
		floor int64
		src   *string
		meta  BundleMeta
		wires [][]byte
	)
	err := s.pool.QueryRow(ctx, committedRowsSQL, c.User, bundleSeq, after, maxRows).Scan(
		&floor, &src, &meta.SourceBundleID, &meta.RowCount, &meta.BundleHash, &meta.RequestHash, &wires)
	if err != nil {
		return CommittedRowsPage{}, fmt.Errorf("read committed rows: %w", err)
	}
	if bundleSeq <= floor {
		s.counters.historyPruned.Add(1)
		return CommittedRowsPage{}, &Error{Code: "history_pruned",
			Message: fmt.Sprintf("bundle %d is at or below the retained history floor %d", bundleSeq, floor)}
	}
	if src == nil {
		return CommittedRowsPage{}, &Error{Code: "committed_bundle_not_found",
			Message: fmt.Sprintf("bundle %d is not committed", bundleSeq)}
	}
	meta.BundleSeq, meta.SourceID = bundleSeq, *src

	page := CommittedRowsPage{Meta: meta, Rows: make([]json.RawMessage, len(wires))}
	for i, w := range wires {
		page.Rows[i] = w
	}
	if len(wires) == 0 {
		page.NextRowOrdinal = max(after, 0)
		return page, nil
	}
	page.NextRowOrdinal = after + int64(len(wires))
	page.HasMore = page.NextRowOrdinal+1 < meta.RowCount
	return page, nil
}
