package pgv1

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/pulsesync/pulsesync/sequencer"
)

// Status is the store's part of GET /syncx/status (docs/protocol-v1.md §3.13).
//
// The reference aggregates every counter over all history on each call (§6.1 M3). Here the
// event counters are kept in memory by this process since it started, so they are per process
// and approximate for a cluster; the floor and sequence figures come from one aggregate over the
// users' scope rows, which costs one row per user and never touches bundles.
type Status struct {
	// LatestBundleSeqMax is the highest bundle_seq of any user.
	LatestBundleSeqMax int64
	// RetainedBundleFloorMin and …Max range over the users' retained floors.
	RetainedBundleFloorMin, RetainedBundleFloorMax int64
	// RetainedBundleWindowMin and …Max range over the users' retained windows: bundles above
	// the floor, up to the highest bundle_seq.
	RetainedBundleWindowMin, RetainedBundleWindowMax int64
	// RetentionFloorAheadCount counts users whose floor is above their highest bundle_seq; a
	// healthy server has none.
	RetentionFloorAheadCount int64
	// CommittedBundleCount is the number of bundles ever committed, all users and nodes
	// (bundle_seq is dense per user, so it is the sum of the users' highest seqs).
	CommittedBundleCount int64

	// Per process, since start:

	// HistoryPrunedErrorCount counts history_pruned refusals.
	HistoryPrunedErrorCount int64
	// AcceptedPushReplayCount counts already_committed answers.
	AcceptedPushReplayCount int64
	// RejectedRegisteredWriteCount counts refused writes to registered tables.
	RejectedRegisteredWriteCount int64
	// CommittedBundleBytes sums the byte_count (canonical hash input length) of the bundles
	// this process committed.
	CommittedBundleBytes int64
}

// counters are the event counts behind Status, kept by this process. Their zero value is ready
// to use. The write path feeds acceptedReplays, rejectedWrites and committedBytes; the reads
// feed historyPruned, as does the write path where it refuses with history_pruned.
type counters struct {
	historyPruned   atomic.Int64
	acceptedReplays atomic.Int64
	rejectedWrites  atomic.Int64
	committedBytes  atomic.Int64
}

// statusSQL aggregates the users' floors and highest seqs. $1 is the prefix of the sequencer keys
// of bundle streams (sequencer.BundleStream of the empty user).
const statusSQL = `
SELECT coalesce(max(head), 0), coalesce(min(floor), 0), coalesce(max(floor), 0),
       coalesce(min(greatest(head - floor, 0)), 0), coalesce(max(greatest(head - floor, 0)), 0),
       count(*) FILTER (WHERE floor > head), coalesce(sum(head), 0)::bigint
FROM (SELECT sc.retained_floor AS floor, coalesce(us.last_seq, 0) AS head
      FROM sync_v1.scopes sc LEFT JOIN sync.user_seq us ON us.user_id = $1 || sc.user_id) AS u`

// Status returns the store's status counters; see Status for what each one covers.
func (s *Store) Status(ctx context.Context) (Status, error) {
	var st Status
	err := s.pool.QueryRow(ctx, statusSQL, sequencer.BundleStream("")).Scan(
		&st.LatestBundleSeqMax, &st.RetainedBundleFloorMin, &st.RetainedBundleFloorMax,
		&st.RetainedBundleWindowMin, &st.RetainedBundleWindowMax, &st.RetentionFloorAheadCount,
		&st.CommittedBundleCount)
	if err != nil {
		return Status{}, fmt.Errorf("aggregate user state: %w", err)
	}
	st.HistoryPrunedErrorCount = s.counters.historyPruned.Load()
	st.AcceptedPushReplayCount = s.counters.acceptedReplays.Load()
	st.RejectedRegisteredWriteCount = s.counters.rejectedWrites.Load()
	st.CommittedBundleBytes = s.counters.committedBytes.Load()
	return st, nil
}
