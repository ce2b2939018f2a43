package e2e

import (
	"net/http"
	"slices"
	"testing"

	"github.com/pulsesync/pulsesync/internal/pushtest"
	"github.com/pulsesync/pulsesync/internal/servertest"
	"github.com/pulsesync/pulsesync/internal/v1test"
)

// v0Change is the part of a v0 download entry this file checks.
type v0Change struct {
	ServerID int64  `json:"server_id"`
	Schema   string `json:"schema"`
	PK       string `json:"pk"`
}

// download reads user's whole v0 change stream through laptop's token, including the
// laptop's own changes.
func download(t *testing.T, srv *servertest.Server, user string) []v0Change {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/sync/download?after=0&limit=1000&include_self=true", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+srv.Token(user, "laptop"))
	resp, err := srv.Client.Do(req)
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		Changes []v0Change `json:"changes"`
		HasMore bool       `json:"has_more"`
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("download: status %d", resp.StatusCode)
	}
	if err := decodeJSON(resp, &out); err != nil || out.HasMore {
		t.Fatalf("download: %v, has_more %t", err, out.HasMore)
	}
	return out.Changes
}

// TestV1Coexist_V0AndV1ClientsOfOneUserDoNotSeeEachOther: a v0 client and a v1 client of the
// same user name on one node keep two separate accounts (docs/protocol-v1.md §8.2): separate
// sequences, separate data, separate wake-ups. The v0 WebSocket is told nothing by v1 commits
// and /sync/watch nothing by v0 uploads. Each check is made so that a leak would show in the
// first frame or event read: the other protocol's sequence is ahead at that moment, so a
// wrong wake-up would carry a seq the right one cannot.
func TestV1Coexist_V0AndV1ClientsOfOneUserDoNotSeeEachOther(t *testing.T) {
	srv := servertest.New(t, servertest.Options{V1: true})
	phone := newV1Source(t, srv, "carol", "phone")
	var v1IDs []string
	pushV1 := func() int64 {
		t.Helper()
		b, err := phone.pushRows(t.Context(), 1)
		if err != nil {
			t.Fatal(err)
		}
		read, err := phone.CommittedRows(t.Context(), b.BundleSeq)
		if err != nil {
			t.Fatal(err)
		}
		v1IDs = append(v1IDs, read.Rows[0].ID())
		return b.BundleSeq
	}
	for range 3 {
		pushV1()
	}

	// The v0 device connects while v1 is at bundle 3: its sequence is still 0.
	ws := pushtest.Dial(t, srv.URL, "after=0", srv.Token("carol", "laptop"))
	if f := ws.Read(); f.Type != "ready" || f.Seq != 0 {
		t.Fatalf("v0 ready frame %+v, want seq 0 whatever v1 holds", f)
	}
	if seq := pushV1(); seq != 4 {
		t.Fatalf("v1 bundle_seq %d, want 4", seq)
	}
	if seq := upload(t, srv, "carol", "desk", 1, 1); seq != 1 {
		t.Fatalf("v0 highest_server_seq %d after v1 bundles, want 1", seq)
	}
	if f := ws.Read(); f.Type != "changes" || f.Seq != 1 {
		t.Fatalf("first v0 frame after a v1 commit and a v0 upload: %+v, want changes seq 1", f)
	}

	// The v1 watch connects at bundle 4; v0 then moves to 21, v1 to 5.
	w := v1test.New(srv, "carol", "tablet").Watch(t, 4)
	if seq := upload(t, srv, "carol", "desk", 2, 20); seq != 21 {
		t.Fatalf("v0 highest_server_seq %d, want 21", seq)
	}
	if seq := pushV1(); seq != 5 {
		t.Fatalf("v1 bundle_seq %d after v0 uploads, want 5", seq)
	}
	if e := w.Read(); e.BundleSeq != 5 {
		t.Fatalf("first watch event after a v0 upload and a v1 commit: %+v, want bundle_seq 5", e)
	}
	if f := ws.Read(); f.Type != "changes" || f.Seq != 21 {
		t.Fatalf("v0 frame after its upload: %+v, want changes seq 21", f)
	}

	// Data: v0's download holds exactly the v0 rows, v1's pull exactly the v1 rows.
	changes := download(t, srv, "carol")
	if len(changes) != 21 {
		t.Fatalf("v0 download: %d changes, want the 21 uploaded", len(changes))
	}
	for _, c := range changes {
		if c.Schema != "business" || slices.Contains(v1IDs, c.PK) {
			t.Fatalf("v0 download holds %+v, which is not a v0 row", c)
		}
	}
	var pulled []string
	checkpoint, err := v1test.New(srv, "carol", "tablet").PullToStable(t.Context(), 0, 100, func(b v1test.Bundle) error {
		for _, r := range b.Rows {
			pulled = append(pulled, r.ID())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checkpoint != 5 || !slices.Equal(pulled, v1IDs) {
		t.Fatalf("v1 pull to %d: rows %v, want bundles 1…5 with exactly the v1 rows %v", checkpoint, pulled, v1IDs)
	}
}
