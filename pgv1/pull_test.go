package pgv1

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
)

// pulledBundle is a pull page's bundle element as a client decodes it.
type pulledBundle struct {
	BundleSeq      int64             `json:"bundle_seq"`
	SourceID       string            `json:"source_id"`
	SourceBundleID int64             `json:"source_bundle_id"`
	RowCount       int64             `json:"row_count"`
	BundleHash     string            `json:"bundle_hash"`
	RequestHash    string            `json:"canonical_request_hash"`
	Rows           []json.RawMessage `json:"rows"`
}

// seqsOf decodes a page's bundles and returns their seqs, failing on any malformed element.
func seqsOf(t testing.TB, page PullPage) []int64 {
	t.Helper()
	seqs, err := decodeSeqs(page)
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}

// decodeSeqs decodes a page's bundles strictly and returns their seqs.
func decodeSeqs(page PullPage) ([]int64, error) {
	var seqs []int64
	for _, raw := range page.Bundles {
		var b pulledBundle
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&b); err != nil {
			return nil, fmt.Errorf("bundle %s: %w", raw, err)
		}
		if int64(len(b.Rows)) != b.RowCount {
			return nil, fmt.Errorf("bundle %d has %d rows, row_count %d", b.BundleSeq, len(b.Rows), b.RowCount)
		}
		seqs = append(seqs, b.BundleSeq)
	}
	return seqs, nil
}

// Every refusal of docs/protocol-v1.md §3.8 checks 1–4, in the reference's order, and the empty
// page of step 5.
func TestPull_Checks(t *testing.T) {
	t.Parallel()
	s, pool := newTestStore(t, Config{})
	ctx := context.Background()
	seedUsers(t, s, "alice", 6, 1) // H = 6
	mustExec(t, pool, `UPDATE sync_v1.scopes SET retained_floor = 2 WHERE user_id = 'alice'`)
	mustExec(t, pool, `INSERT INTO sync_v1.scopes (user_id, state, lease_source_id, lease_expires_at, initialization_id)
		VALUES ('leased', 'initializing', 'p', now() + interval '1 hour', gen_random_uuid()),
		       ('lapsed', 'initializing', 'p', now() - interval '1 second', gen_random_uuid()),
		       ('fresh', 'uninitialized', NULL, NULL, NULL)`)

	cases := []struct {
		name          string
		user          string
		after, target int64
		maxBundles    int
		code          string
		stable        int64
		seqs          []int64
	}{
		{"§3.8 step 1: after below 0", "alice", -1, 0, 10, "invalid_request", 0, nil},
		{"§3.8 step 1: max_bundles 0", "alice", 2, 0, 0, "invalid_request", 0, nil},
		{"§3.8 step 1: max_bundles above 5000", "alice", 2, 0, 5001, "invalid_request", 0, nil},
		{"§3.8 step 1: target below 0", "alice", 2, -1, 10, "invalid_request", 0, nil},
		{"§3.8 step 2: no state", "nobody", 0, 0, 10, "scope_uninitialized", 0, nil},
		{"§3.8 step 2: uninitialized", "fresh", 0, 0, 10, "scope_uninitialized", 0, nil},
		{"§3.8 step 2: live lease", "leased", 0, 0, 10, "scope_initializing", 0, nil},
		{"§3.8 step 2: lapsed lease counts as uninitialized", "lapsed", 0, 0, 10, "scope_uninitialized", 0, nil},
		{"§3.8 step 3: 0 below a positive floor", "alice", 0, 0, 10, "history_pruned", 0, nil},
		{"§3.8 step 3: below the floor", "alice", 1, 0, 10, "history_pruned", 0, nil},
		{"§3.8 step 3: pruned before checkpoint_ahead's target check", "alice", 1, 9, 10, "history_pruned", 0, nil},
		{"§3.8 step 3: after = F is valid", "alice", 2, 0, 10, "", 6, []int64{3, 4, 5, 6}},
		{"§3.8 step 3: ahead of history", "alice", 7, 0, 10, "checkpoint_ahead", 0, nil},
		{"§3.8 step 4: target below F", "alice", 2, 1, 10, "history_pruned", 0, nil},
		{"§3.8 step 4: target above H", "alice", 2, 7, 10, "checkpoint_ahead", 0, nil},
		{"§3.8 step 4: target below after", "alice", 4, 3, 10, "invalid_request", 0, nil},
		{"§3.8 step 5: target caps stable", "alice", 2, 4, 10, "", 4, []int64{3, 4}},
		{"§3.8 step 5: after = stable is an empty page", "alice", 4, 4, 10, "", 4, nil},
		{"§3.8 step 5: after = H is an empty page", "alice", 6, 0, 10, "", 6, nil},
		{"§3.8 step 6: max_bundles", "alice", 2, 0, 3, "", 6, []int64{3, 4, 5}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			page, err := s.Pull(ctx, Caller{User: tc.user, Source: "phone"},
				PullRequest{After: tc.after, Target: tc.target, MaxBundles: tc.maxBundles})
			if tc.code != "" {
				wantError(t, err, tc.code)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := seqsOf(t, page)
			wantMore := len(tc.seqs) > 0 && tc.seqs[len(tc.seqs)-1] < tc.stable
			if page.StableBundleSeq != tc.stable || fmt.Sprint(got) != fmt.Sprint(tc.seqs) || page.HasMore != wantMore {
				t.Fatalf("got stable %d, bundles %v, has_more %v; want %d, %v, %v",
					page.StableBundleSeq, got, page.HasMore, tc.stable, tc.seqs, wantMore)
			}
		})
	}
}

// A pull page carries each bundle as the complete wire object of docs/protocol-v1.md §3.8,
// rows in bundle order exactly as stored.
func TestPull_BundleWireObject(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, Config{})
	rows := []seedRow{
		userRow(testUUID(2), `Quote "and" back\slash <&> é`),
		{table: "users", key: testUUID(1), op: "DELETE"},
	}
	seedBundle(t, s, "alice", `we"ird\source`, rows...)
	page, err := s.Pull(context.Background(), Caller{User: "alice"}, PullRequest{MaxBundles: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Bundles) != 1 {
		t.Fatalf("got %d bundles", len(page.Bundles))
	}
	var b pulledBundle
	if err := json.Unmarshal(page.Bundles[0], &b); err != nil {
		t.Fatalf("bundle %s: %v", page.Bundles[0], err)
	}
	if b.BundleSeq != 1 || b.SourceID != `we"ird\source` || b.SourceBundleID != 1 || b.RowCount != 2 ||
		len(b.BundleHash) != 64 || len(b.RequestHash) != 64 {
		t.Fatalf("bundle metadata %+v", b)
	}
	for i, r := range b.Rows {
		if want := bundleRowWire(rows[i], 1); string(r) != want {
			t.Errorf("row %d = %s, want %s", i, r, want)
		}
	}
}

// The byte budget (docs/protocol-v1.md §6.1 H8): bundles stop being added once the page's bytes
// exceed Config.MaxPullBytes, at least one is always delivered, and has_more leads the client
// on to stable.
func TestPull_ByteBudget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newTestStore(t, Config{})
	seedUsers(t, s, "alice", 5, 3)
	var size int64
	if err := pool.QueryRow(ctx, `SELECT byte_count FROM sync_v1.bundles WHERE user_id = 'alice' AND bundle_seq = 1`).Scan(&size); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		budget int64
		pages  string
	}{
		{"budget below one bundle: one per page", size - 1, "[1] [2] [3] [4] [5]"},
		{"budget of exactly two bundles: the third starts past it", 2 * size, "[1 2 3] [4 5]"},
		{"budget just below two: the second starts within it", 2*size - 1, "[1 2] [3 4] [5]"},
		{"large budget: max_bundles decides", 1 << 30, "[1 2 3 4 5]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := NewStore(s.pool, s.reg, Config{MaxPullBytes: tc.budget})
			var pages []string
			after, target := int64(0), int64(0)
			for range 10 {
				page, err := st.Pull(ctx, Caller{User: "alice"}, PullRequest{After: after, Target: target, MaxBundles: 1000})
				if err != nil {
					t.Fatal(err)
				}
				seqs := seqsOf(t, page)
				pages = append(pages, fmt.Sprint(seqs))
				after, target = seqs[len(seqs)-1], page.StableBundleSeq
				if !page.HasMore {
					break
				}
			}
			if got := fmt.Sprint(pages); got != "["+tc.pages+"]" {
				t.Fatalf("pages %s, want [%s]", got, tc.pages)
			}
		})
	}
}

// Pulls running while commits happen never skip a bundle: every page's stable_bundle_seq has
// all bundles up to it visible in the same read, so a client following has_more and then
// pulling again sees each bundle exactly once, in order (docs/protocol-v1.md §1.3).
func TestPull_ConcurrentCommitsNeverSkip(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, Config{MaxPullBytes: 1500})
	ctx := context.Background()
	const writers, perWriter, readers = 4, 25, 3
	seedUsers(t, s, "alice", 1, 1)

	var wg sync.WaitGroup
	done := make(chan struct{})
	writeErrs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				n := 1000 + w*perWriter + i
				if _, err := commitSeed(s, "alice", fmt.Sprintf("writer-%d", w), userRow(testUUID(n), "w")); err != nil {
					writeErrs <- err
					return
				}
			}
		})
	}
	go func() { wg.Wait(); close(done) }()

	const total = 1 + writers*perWriter
	errs := make(chan error, readers)
	for range readers {
		go func() {
			errs <- func() error {
				var checkpoint int64
				for writing := true; writing || checkpoint < total; {
					select {
					case <-done:
						writing = false
					default:
					}
					page, err := s.Pull(ctx, Caller{User: "alice"}, PullRequest{After: checkpoint, MaxBundles: 7})
					if err != nil {
						return err
					}
					for stable := page.StableBundleSeq; ; {
						seqs, err := decodeSeqs(page)
						if err != nil {
							return err
						}
						for _, seq := range seqs {
							if seq != checkpoint+1 {
								return fmt.Errorf("after checkpoint %d came bundle %d", checkpoint, seq)
							}
							checkpoint = seq
						}
						if !page.HasMore {
							break
						}
						page, err = s.Pull(ctx, Caller{User: "alice"}, PullRequest{After: checkpoint, Target: stable, MaxBundles: 7})
						if err != nil {
							return err
						}
						if page.StableBundleSeq != stable {
							return fmt.Errorf("stable moved from %d to %d within one pull", stable, page.StableBundleSeq)
						}
					}
					if checkpoint != page.StableBundleSeq {
						return fmt.Errorf("pull ended at %d below stable %d", checkpoint, page.StableBundleSeq)
					}
				}
				return nil
			}()
		}()
	}
	for range readers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(writeErrs)
	for err := range writeErrs {
		t.Fatal(err)
	}
}

// BenchmarkPull reads a user's history of 100-row bundles from checkpoint 0 to stable, page by
// page with the client's default max_bundles, as a client catching up does.
func BenchmarkPull(b *testing.B) {
	s, _ := newTestStore(b, Config{})
	const bundles, rowsPer = 200, 100
	seedUsers(b, s, "alice", bundles, rowsPer)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		var after, target int64
		for {
			page, err := s.Pull(ctx, Caller{User: "alice"}, PullRequest{After: after, Target: target, MaxBundles: DefaultBundlesPerPull})
			if err != nil {
				b.Fatal(err)
			}
			after += int64(len(page.Bundles))
			target = page.StableBundleSeq
			if !page.HasMore {
				break
			}
		}
		if after != bundles {
			b.Fatalf("pulled %d bundles, want %d", after, bundles)
		}
	}
	b.ReportMetric(float64(b.N*bundles*rowsPer)/b.Elapsed().Seconds(), "rows/s")
}
