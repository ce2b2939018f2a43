package sequencer

import (
	"context"
	"fmt"
)

// latestChunk caps the users one Latest query asks about, so that a node holding a very large
// number of connections sends several bounded queries rather than one enormous array.
const latestChunk = 10_000

// latestSQL reads the last committed id of many users in one round trip. Both aggregates
// consume the same rows in the same order, so the two arrays line up.
const latestSQL = `SELECT coalesce(array_agg(user_id), '{}'), coalesce(array_agg(last_seq), '{}')
FROM sync.user_seq WHERE user_id = ANY($1::text[])`

// Latest returns the last committed id of each of users that ever uploaded; users who never
// did are absent from the map. It is Watermark for many users at once, one query per 10,000
// users, and what reconciliation compares against the advances a node has heard of: every id
// at or below the returned value is visible, none above it is (invariant I1).
func Latest(ctx context.Context, q Querier, users []string) (map[string]int64, error) {
	latest := make(map[string]int64, len(users))
	for start := 0; start < len(users); start += latestChunk {
		chunk := users[start:min(start+latestChunk, len(users))]
		var ids []string
		var seqs []int64
		if err := q.QueryRow(ctx, latestSQL, chunk).Scan(&ids, &seqs); err != nil {
			return nil, fmt.Errorf("read latest seq of %d users: %w", len(chunk), err)
		}
		if len(ids) != len(seqs) {
			return nil, fmt.Errorf("read latest seq of %d users: %d ids but %d seqs", len(chunk), len(ids), len(seqs))
		}
		for i, id := range ids {
			latest[id] = seqs[i]
		}
	}
	return latest, nil
}
