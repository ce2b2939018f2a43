package pgv1

import (
	"encoding/json"
	"testing"
)

// End to end through the write path: bundles committed by CommitPush (the §7 seed, a post with
// a comment whose trigger changes the post, a delete that cascades) read back by pull page by
// page and by committed-rows page by page verify against their bundle hashes, and snapshots
// before and after hold exactly the live rows (docs/protocol-v1.md §3.7–§3.10, §7).
func TestReadPath_ThroughCommitPush(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, Config{})
	ctx := t.Context()
	phone := Caller{User: "alice", Source: "5b0e8f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"}
	laptop := Caller{User: "alice", Source: "9d8c7b6a-5f4e-4d3c-9b2a-1f0e9d8c7b6a"}

	// §7 steps 1–2: the phone seeds Ann.
	conn, err := s.Connect(ctx, phone, true)
	if err != nil || conn.Resolution != InitializeLocal {
		t.Fatalf("connect: %+v, %v", conn, err)
	}
	ann := row("users", "id", annID, "INSERT", 0, `{"active":"1","email":"ann@example.com","id":"`+annID+`","name":"Ann","visits":"3"}`)
	seed := mustPush(t, s, phone, 1, []PushRow{ann}, pushOpts{initID: conn.InitializationID})
	if seed.BundleHash != "2f7b2f65081f9904a2ef24a28138d4c58abca00cc41dfc5ebcbf90c1f1c57af7" {
		t.Fatalf("seed bundle hash %s, want §7's", seed.BundleHash)
	}

	// §7 step 3: the laptop's snapshot is Ann's row in 227 bytes.
	info, err := s.CreateSnapshot(ctx, laptop, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"schema":"business","table":"users","key":{"id":"` + annID + `"},"row_version":1,"payload":` +
		`{"active":true,"email":"ann@example.com","id":"` + annID + `","name":"Ann","visits":"3"}}`
	if rows := readAll(t, s, laptop, info); info.SnapshotBundleSeq != 1 || info.ByteCount != 227 || len(rows) != 1 || rows[0] != want {
		t.Fatalf("snapshot %+v rows %v, want §7 step 3", info, rows)
	}

	// A post with a comment (the comment's trigger retitles the post), then Ann's deletion,
	// which cascades to both.
	const post = "0b7e3f1a-2c4d-4e6f-8a1b-3c5d7e9f1a2b"
	mustPush(t, s, phone, 2, []PushRow{
		row("posts", "id", post, "INSERT", 0, `{"author_id":"`+annID+`","body":"b","id":"`+post+`","score":"1.5","title":"Hello"}`),
		row("comments", "id", "c-1", "INSERT", 0, `{"body":"nice","id":"c-1","post_id":"`+post+`"}`),
	}, pushOpts{})
	mustPush(t, s, laptop, 1, []PushRow{row("users", "id", annID, "DELETE", 1, "")}, pushOpts{})

	// Pull one bundle per page, to stable; every bundle verifies, and committed rows read one
	// row per page serve the same rows.
	var after, target int64
	for {
		page, err := s.Pull(ctx, laptop, PullRequest{After: after, Target: target, MaxBundles: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Bundles) != 1 {
			t.Fatalf("page after %d has %d bundles", after, len(page.Bundles))
		}
		var b pulledBundle
		if err := json.Unmarshal(page.Bundles[0], &b); err != nil {
			t.Fatal(err)
		}
		if got, _, _ := clientHash(t, b.Rows); got != b.BundleHash || b.BundleSeq != after+1 {
			t.Fatalf("pulled bundle %d: hash %s, stored %s", b.BundleSeq, got, b.BundleHash)
		}
		var paged []json.RawMessage
		for ord := int64(-1); ; {
			cr, err := s.CommittedRows(ctx, phone, b.BundleSeq, ord, 1)
			if err != nil {
				t.Fatal(err)
			}
			paged = append(paged, cr.Rows...)
			ord = cr.NextRowOrdinal
			if cr.Meta.BundleHash != b.BundleHash || cr.Meta.RequestHash != b.RequestHash {
				t.Fatalf("committed rows of %d: metadata %+v differs from pull", b.BundleSeq, cr.Meta)
			}
			if !cr.HasMore {
				break
			}
		}
		if got, _, _ := clientHash(t, paged); int64(len(paged)) != b.RowCount || got != b.BundleHash {
			t.Fatalf("committed rows of bundle %d: %d rows do not verify", b.BundleSeq, len(paged))
		}
		after, target = b.BundleSeq, page.StableBundleSeq
		if !page.HasMore {
			break
		}
	}
	if after != 3 {
		t.Fatalf("pulled to %d, want 3", after)
	}

	// Everything is deleted now: the snapshot is empty at bundle 3.
	info, err = s.CreateSnapshot(ctx, laptop, nil)
	if err != nil || info.SnapshotBundleSeq != 3 || info.RowCount != 0 || info.ByteCount != 0 {
		t.Fatalf("snapshot after the cascade: %+v, %v", info, err)
	}
	if rows := readAll(t, s, laptop, info); len(rows) != 0 {
		t.Fatalf("snapshot rows %v, want none", rows)
	}
}
