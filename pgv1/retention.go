package pgv1

import "github.com/jackc/pgx/v5"

// pruneBundlesSQL discards a user's bundles in (old floor, new floor] with their rows and moves
// the floor. Row states are kept: versions and tombstones outlive history, so a snapshot can
// always rebuild a client (docs/protocol-v1.md §1.7).
const pruneBundlesSQL = `
WITH gone_rows AS (
    DELETE FROM sync_v1.bundle_rows WHERE user_id = $1 AND bundle_seq > $2 AND bundle_seq <= $3
), gone AS (
    DELETE FROM sync_v1.bundles WHERE user_id = $1 AND bundle_seq > $2 AND bundle_seq <= $3
)
UPDATE sync_v1.scopes SET retained_floor = $3 WHERE user_id = $1 AND retained_floor < $3`

// queueRetention queues, for a commit that took bundleSeq over a user whose floor is floor,
// the discarding of the bundles beyond the newest Config.RetainBundles, at most
// Config.PruneBatch of them, so a commit's cost stays bounded however far behind retention is.
// Because bundle_seq is dense, the bundles to drop follow from the two numbers alone.
func (s *Store) queueRetention(batch *pgx.Batch, user string, floor, bundleSeq int64) {
	target := bundleSeq - s.cfg.RetainBundles
	if target <= floor {
		return
	}
	batch.Queue(pruneBundlesSQL, user, floor, min(target, floor+int64(s.cfg.PruneBatch)))
}
