package pg

import (
	"context"
	"fmt"
)

// downloadSQL reads the window top and one page in one statement, so both come from the same
// snapshot: every id at or below the top is visible in it (invariant I1). The page is one
// range scan of the (user_id, server_id) primary key.
const downloadSQL = `WITH w AS (SELECT COALESCE((SELECT last_seq FROM sync.user_seq WHERE user_id = $1), 0) AS top)
SELECT w.top, c.server_id, c.schema_name, c.table_name, c.op, c.pk, c.payload, c.server_version,
       c.source_id, c.source_change_id, c.ts
FROM w LEFT JOIN LATERAL (
    SELECT * FROM sync.changes c
    WHERE c.user_id = $1 AND c.server_id > $2 AND c.server_id <= CASE WHEN $3::int8 > 0 THEN $3::int8 ELSE w.top END
      AND ($4::text = '' OR c.schema_name = $4::text) AND ($5::bool OR c.source_id <> $6::text)
    ORDER BY c.server_id
    LIMIT $7) c ON true`

// Download returns one page of user's stream after q.After (docs/protocol-v0.md §4.2): entries up to
// the window top, which is q.Until when set and otherwise the user's watermark, without the
// caller's own entries unless q.IncludeSelf.
func (s *Store) Download(ctx context.Context, user, source string, q DownloadQuery) (DownloadPage, error) {
	rows, err := s.pool.Query(ctx, downloadSQL, user, q.After, q.Until, q.Schema, q.IncludeSelf, source, q.Limit+1)
	if err != nil {
		return DownloadPage{}, fmt.Errorf("download: %w", err)
	}
	defer rows.Close()
	page := DownloadPage{Changes: make([]StreamEntry, 0, min(q.Limit, 128))}
	var (
		top     int64
		e       StreamEntry
		payload []byte
		arena   []byte // one buffer for every payload of the page
		offsets []int
	)
	entry := []any{&top, &e.ServerID, &e.Schema, &e.Table, &e.Op, &e.PK, &payload, &e.Version, &e.SourceID, &e.SourceChangeID, &e.TS}
	for rows.Next() {
		if rows.RawValues()[1] == nil { // the window's row with no entry joined: read the top only
			entry = []any{&top, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil}
		}
		if err := rows.Scan(entry...); err != nil {
			return DownloadPage{}, fmt.Errorf("download: %w", err)
		}
		if e.ServerID == 0 || len(page.Changes) == q.Limit {
			page.HasMore = e.ServerID != 0
			break
		}
		offsets = append(offsets, len(arena))
		if payload != nil {
			arena = append(arena, payload...)
		}
		e.Payload = payload // marks presence; replaced by its arena slice below
		page.Changes = append(page.Changes, e)
	}
	if err := rows.Err(); err != nil {
		return DownloadPage{}, fmt.Errorf("download: %w", err)
	}
	for i := range page.Changes {
		if page.Changes[i].Payload != nil {
			end := len(arena)
			if i+1 < len(offsets) {
				end = offsets[i+1]
			}
			page.Changes[i].Payload = arena[offsets[i]:end:end]
		}
	}
	page.WindowUntil = top
	if q.Until > 0 {
		page.WindowUntil = q.Until
	}
	page.NextAfter = q.After
	if n := len(page.Changes); n > 0 {
		page.NextAfter = page.Changes[n-1].ServerID
	}
	return page, nil
}
