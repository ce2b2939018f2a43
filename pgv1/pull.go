package pgv1

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/pulsesync/pulsesync/sequencer"
)

// pullSQL answers a pull in one statement, hence from one snapshot: the scope's state, the
// retained floor F, the highest committed bundle_seq H (the sequencer's watermark, which the
// commit moves in the transaction that writes the bundle, so every bundle up to H is visible
// here) and the page. The WHERE of picked repeats Pull's checks so that a refused pull reads no
// bundle; Pull tells the refusals apart from the state columns of the first row.
//
// picked takes at most $5 bundles in ($3, stable]; page keeps a bundle while the bytes before it
// stay within the budget $6 (bundles.byte_count, the canonical size of its rows, stands for the
// size of its wire text), so the first bundle is always kept. Each bundle is rendered as its
// complete wire object from the stored row texts, in bundle order. The rows come unordered:
// PostgreSQL would sort the rendered texts, megabytes of them, where Pull sorts a few seqs.
const pullSQL = `
WITH st AS (
    SELECT coalesce(sc.state, 'uninitialized') AS state,
           coalesce(sc.lease_expires_at > now(), false) AS lease_live,
           coalesce(sc.retained_floor, 0) AS floor,
           coalesce((SELECT last_seq FROM sync.user_seq WHERE user_id = $2), 0) AS head
    FROM (VALUES (1)) AS one (x) LEFT JOIN sync_v1.scopes sc ON sc.user_id = $1
), picked AS (
    SELECT b.*
    FROM st, sync_v1.bundles b
    WHERE st.state = 'initialized' AND $3::bigint BETWEEN st.floor AND st.head
      AND ($4::bigint = 0 OR $4::bigint BETWEEN greatest(st.floor, $3::bigint) AND st.head)
      AND b.user_id = $1 AND b.bundle_seq > $3::bigint
      AND b.bundle_seq <= CASE WHEN $4::bigint > 0 THEN $4::bigint ELSE st.head END
    ORDER BY b.bundle_seq
    LIMIT $5
), page AS (
    SELECT *, sum(byte_count) OVER (ORDER BY bundle_seq) - byte_count AS bytes_before FROM picked
)
SELECT st.state, st.lease_live, st.floor, st.head, p.bundle_seq,
       '{"bundle_seq":' || p.bundle_seq || ',"source_id":' || to_json(p.source_id)::text ||
       ',"source_bundle_id":' || p.source_bundle_id || ',"row_count":' || p.row_count ||
       ',"bundle_hash":' || to_json(p.bundle_hash)::text ||
       ',"canonical_request_hash":' || to_json(p.request_hash)::text || ',"rows":[' ||
       coalesce((SELECT string_agg(r.wire, ',' ORDER BY r.row_ordinal) FROM sync_v1.bundle_rows r
                 WHERE r.user_id = $1 AND r.bundle_seq = p.bundle_seq), '') || ']}'
FROM st LEFT JOIN page p ON p.bytes_before <= $6::bigint`

// Pull resolves GET /sync/pull (docs/protocol-v1.md §3.8). Checks, in the reference's order:
// a range error → 400 invalid_request; the scope not initialized → 409 scope_uninitialized /
// scope_initializing; after below the retained floor F → 409 history_pruned (after = F is valid,
// so 0 under a positive floor is pruned); after above the highest bundle_seq H → 409
// checkpoint_ahead (never clamped); a positive target below F, above H or below after → 409
// history_pruned, 409 checkpoint_ahead, 400 invalid_request.
//
// The page holds the complete bundles in (after, stable] in ascending order, stable being the
// target or else H, at most req.MaxBundles of them and, past the first, only while the page
// stays within Config.MaxPullBytes (§6.1 H8). HasMore says bundles up to stable follow. Since
// bundle_seq is dense above F and the page and H come from one snapshot, every bundle up to
// stable is delivered by following pages: a pull never skips one.
func (s *Store) Pull(ctx context.Context, c Caller, req PullRequest) (PullPage, error) {
	if req.After < 0 || req.Target < 0 || req.MaxBundles < 1 || req.MaxBundles > MaxBundlesPerPull {
		return PullPage{}, &Error{Code: "invalid_request",
			Message: fmt.Sprintf("after_bundle_seq and target_bundle_seq must be non-negative and max_bundles within 1…%d", MaxBundlesPerPull)}
	}
	rows, err := s.pool.Query(ctx, pullSQL, c.User, sequencer.BundleStream(c.User), req.After, req.Target, req.MaxBundles, s.cfg.MaxPullBytes)
	if err != nil {
		return PullPage{}, fmt.Errorf("pull bundles: %w", err)
	}
	defer rows.Close()

	type pulled struct {
		seq    int64
		bundle []byte
	}
	var (
		page    PullPage
		st      pullState
		checked bool
		bundles []pulled
	)
	for rows.Next() {
		var seq *int64
		var bundle []byte
		if err := rows.Scan(&st.state, &st.leaseLive, &st.floor, &st.head, &seq, &bundle); err != nil {
			return PullPage{}, fmt.Errorf("read pulled bundle: %w", err)
		}
		if !checked {
			if err := st.refusal(req); err != nil {
				if e := (*Error)(nil); errors.As(err, &e) && e.Code == "history_pruned" {
					s.counters.historyPruned.Add(1)
				}
				return PullPage{}, err
			}
			checked = true
			page.StableBundleSeq = st.head
			if req.Target > 0 {
				page.StableBundleSeq = req.Target
			}
		}
		if seq != nil {
			bundles = append(bundles, pulled{*seq, bundle})
		}
	}
	if err := rows.Err(); err != nil {
		return PullPage{}, fmt.Errorf("pull bundles: %w", err)
	}
	if !checked {
		return PullPage{}, fmt.Errorf("pull bundles: no state row")
	}
	slices.SortFunc(bundles, func(a, b pulled) int { return cmp.Compare(a.seq, b.seq) })
	page.Bundles = make([]json.RawMessage, len(bundles))
	for i, b := range bundles {
		page.Bundles[i] = b.bundle
	}
	page.HasMore = len(bundles) > 0 && bundles[len(bundles)-1].seq < page.StableBundleSeq
	return page, nil
}

// pullState is what a pull's checks look at, read in the page's snapshot.
type pullState struct {
	state     string
	leaseLive bool
	floor     int64 // F, the retained floor
	head      int64 // H, the highest committed bundle_seq
}

// refusal returns the refusal of checks 2–4 of docs/protocol-v1.md §3.8, nil when req may be
// answered.
func (st pullState) refusal(req PullRequest) error {
	if err := scopeRefusal(st.state, st.leaseLive); err != nil {
		return err
	}
	if err := st.outsideHistory("requested checkpoint", req.After); err != nil || req.Target == 0 {
		return err
	}
	if err := st.outsideHistory("target_bundle_seq", req.Target); err != nil {
		return err
	}
	if req.Target < req.After {
		return &Error{Code: "invalid_request", Message: fmt.Sprintf(
			"target_bundle_seq %d is below after_bundle_seq %d", req.Target, req.After)}
	}
	return nil
}

// outsideHistory refuses seq, called what in the message, when it lies outside the user's
// committed history: history_pruned below the retained floor, checkpoint_ahead above the
// highest bundle_seq.
func (st pullState) outsideHistory(what string, seq int64) error {
	switch {
	case seq < st.floor:
		return &Error{Code: "history_pruned", Message: fmt.Sprintf(
			"%s %d is older than retained history floor %d", what, seq, st.floor)}
	case seq > st.head:
		return &Error{Code: "checkpoint_ahead", Message: fmt.Sprintf(
			"%s %d is ahead of the latest bundle %d", what, seq, st.head)}
	}
	return nil
}
