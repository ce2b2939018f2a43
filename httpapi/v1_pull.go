package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/pulsesync/pulsesync/pgv1"
)

// appendRawList appends the JSON array of items, each written as the store gave it: rows and
// bundles are stored pre-encoded, so the reads copy bytes and never re-encode (§4.3 requires
// the served rows to be the hashed ones).
func appendRawList(b []byte, items []json.RawMessage) []byte {
	b = append(b, '[')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	return append(b, ']')
}

// committedRows serves GET /sync/committed-bundles/{bundle_seq}/rows (docs/protocol-v1.md
// §3.7). Every malformed or out-of-range value is 400 committed_bundle_chunk_invalid; an absent
// after_row_ordinal is passed on as -1; max_rows defaults to 1000 and is capped at 5000.
func (v *v1API) committedRows(w http.ResponseWriter, r *http.Request) {
	const invalid = "committed_bundle_chunk_invalid"
	seq, err := strconv.ParseInt(chi.URLParam(r, "bundle_seq"), 10, 64)
	if err != nil || seq <= 0 {
		refuse(w, invalid, "bundle_seq must be a positive integer")
		return
	}
	q := queryInts{q: r.URL.Query()}
	after := q.get("after_row_ordinal", -1)
	maxRows := q.get("max_rows", pgv1.DefaultRowsPerCommittedBundleChunk)
	switch {
	case q.msg != "":
		refuse(w, invalid, q.msg)
		return
	case after < -1 || (after == -1 && r.URL.Query().Get("after_row_ordinal") != ""):
		refuse(w, invalid, "after_row_ordinal must be at least 0")
		return
	case maxRows <= 0:
		refuse(w, invalid, "max_rows must be at least 1")
		return
	}
	v.operate(w, r, "committed_bundle_rows", func(ctx context.Context, c pgv1.Caller) error {
		page, err := v.store.CommittedRows(ctx, c, seq, after, int(min(maxRows, pgv1.MaxRowsPerCommittedBundleChunk)))
		if err != nil {
			return err
		}
		v.s.writeEncoded(w, func(b []byte) []byte {
			b = appendBundleMeta(append(b, '{'), &page.Meta)
			b = appendMember(b, "rows")
			b = appendRawList(b, page.Rows)
			b = appendIntMember(b, "next_row_ordinal", page.NextRowOrdinal)
			b = appendBool(appendMember(b, "has_more"), page.HasMore)
			return append(b, '}')
		})
		return nil
	})
}

// pull serves GET /sync/pull (§3.8). The query's checks of step 1 are made here, all 400
// invalid_request; the store makes steps 2–6, the target rules included.
func (v *v1API) pull(w http.ResponseWriter, r *http.Request) {
	q := queryInts{q: r.URL.Query()}
	after := q.get("after_bundle_seq", 0)
	maxBundles := q.get("max_bundles", pgv1.DefaultBundlesPerPull)
	target := q.get("target_bundle_seq", 0)
	switch {
	case q.msg != "":
		refuse(w, codeInvalidRequest, q.msg)
		return
	case after < 0:
		refuse(w, codeInvalidRequest, "after_bundle_seq must be at least 0")
		return
	case maxBundles < 1 || maxBundles > pgv1.MaxBundlesPerPull:
		refuse(w, codeInvalidRequest, "max_bundles must be between 1 and "+strconv.Itoa(pgv1.MaxBundlesPerPull))
		return
	case target < 0:
		refuse(w, codeInvalidRequest, "target_bundle_seq must be at least 0")
		return
	}
	v.operate(w, r, "pull", func(ctx context.Context, c pgv1.Caller) error {
		page, err := v.store.Pull(ctx, c, pgv1.PullRequest{After: after, MaxBundles: int(maxBundles), Target: target})
		if err != nil {
			return err
		}
		v.s.writeEncoded(w, func(b []byte) []byte {
			b = appendIntMember(append(b, '{'), "stable_bundle_seq", page.StableBundleSeq)
			b = appendMember(b, "bundles")
			b = appendRawList(b, page.Bundles)
			b = appendBool(appendMember(b, "has_more"), page.HasMore)
			return append(b, '}')
		})
		return nil
	})
}
