package pgv1

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulsesync/pulsesync/internal/pushtest"
	"github.com/pulsesync/pulsesync/sequencer"
)

// annID is row R of the worked example (docs/protocol-v1.md §7).
const annID = "6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"

// readAll reads every chunk of a snapshot with the client's default budgets and returns the
// rows' texts, checking the page arithmetic of docs/protocol-v1.md §3.10 on the way.
func readAll(t testing.TB, s *Store, c Caller, info SnapshotInfo) []string {
	t.Helper()
	var rows []string
	var after, bytes int64
	for {
		chunk, err := s.SnapshotChunk(context.Background(), c, info.SnapshotID, after, DefaultRowsPerSnapshotChunk, DefaultBytesPerSnapshotChunk)
		if err != nil {
			t.Fatalf("chunk after %d: %v", after, err)
		}
		var sum int64
		for _, r := range chunk.Rows {
			rows = append(rows, string(r))
			sum += int64(len(r))
		}
		bytes += sum
		if chunk.SnapshotID != info.SnapshotID || chunk.SnapshotBundleSeq != info.SnapshotBundleSeq ||
			chunk.ByteCount != sum || chunk.NextRowOrdinal != after+int64(len(chunk.Rows)) ||
			(chunk.HasMore && len(chunk.Rows) == 0) {
			t.Fatalf("chunk after %d breaks §3.10's arithmetic: %+v", after, chunk)
		}
		after = chunk.NextRowOrdinal
		if !chunk.HasMore {
			break
		}
	}
	if int64(len(rows)) != info.RowCount || bytes != info.ByteCount {
		t.Fatalf("read %d rows, %d bytes; the session announced %d, %d", len(rows), bytes, info.RowCount, info.ByteCount)
	}
	return rows
}

// The worked example's step 3 (docs/protocol-v1.md §7): the laptop's snapshot of Ann's row is
// one row of exactly 227 bytes, at bundle_seq 1.
func TestCreateSnapshot_WorkedExample(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, Config{})
	payload := `{"active":true,"email":"ann@example.com","id":"` + annID + `","name":"Ann","visits":"3"}`
	seedBundle(t, s, "alice", "5b0e8f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
		seedRow{table: "users", key: annID, op: "INSERT", payload: payload})
	laptop := Caller{User: "alice", Source: "9d8c7b6a-5f4e-4d3c-9b2a-1f0e9d8c7b6a"}

	before := time.Now()
	info, err := s.CreateSnapshot(context.Background(), laptop, nil)
	if err != nil {
		t.Fatal(err)
	}
	if info.SnapshotBundleSeq != 1 || info.RowCount != 1 || info.ByteCount != 227 || len(info.SnapshotID) != 36 {
		t.Fatalf("session %+v, want bundle_seq 1, 1 row, 227 bytes", info)
	}
	if ttl := info.ExpiresAt.Sub(before); ttl < 14*time.Minute || ttl > 16*time.Minute || info.ExpiresAt.Location() != time.UTC {
		t.Errorf("expires_at %v is not 15 minutes from now in UTC", info.ExpiresAt)
	}
	chunk, err := s.SnapshotChunk(context.Background(), laptop, info.SnapshotID, 0, 1000, 4194304)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"schema":"business","table":"users","key":{"id":"` + annID + `"},"row_version":1,"payload":` + payload + `}`
	if len(chunk.Rows) != 1 || string(chunk.Rows[0]) != want || chunk.NextRowOrdinal != 1 || chunk.HasMore || chunk.ByteCount != 227 {
		t.Fatalf("chunk %+v (row %s), want the one row of §7 step 3", chunk, chunk.Rows)
	}
}

// A snapshot holds every live row at H and nothing else: tables in registry order, keys in byte
// order within a table, tombstones left out, each row at its current version.
func TestCreateSnapshot_RowsAndOrder(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, Config{})
	ctx := context.Background()
	comment := func(key string) seedRow {
		return seedRow{table: "comments", key: key, op: "INSERT", payload: `{"body":"b","id":` + fmt.Sprintf("%q", key) + `,"post_id":null,"stars":"3"}`}
	}
	// comments precede users in this bundle; the registry lists users first.
	seedBundle(t, s, "alice", "p", comment("é"), comment("a"), comment("Z"), comment("B"),
		userRow(testUUID(2), "two"), userRow(testUUID(1), "one"), userRow(testUUID(3), "three"))
	seedBundle(t, s, "alice", "p", seedRow{table: "users", key: testUUID(3), op: "DELETE"},
		seedRow{table: "users", key: testUUID(1), op: "UPDATE", payload: `{"active":false,"email":null,"id":"` + testUUID(1) + `","name":"uno","visits":"2"}`})
	seedBundle(t, s, "bob", "p", userRow(testUUID(9), "bob's"))

	info, err := s.CreateSnapshot(ctx, Caller{User: "alice", Source: "laptop"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if info.SnapshotBundleSeq != 2 {
		t.Errorf("snapshot_bundle_seq %d, want 2", info.SnapshotBundleSeq)
	}
	var got []string
	for _, r := range readAll(t, s, Caller{User: "alice"}, info) {
		i := strings.Index(r, `"key":`)
		j := strings.Index(r, `,"payload"`)
		got = append(got, r[i+6:j])
	}
	want := []string{
		keyJSON(testUUID(1)) + `,"row_version":2`,
		keyJSON(testUUID(2)) + `,"row_version":1`,
		`{"id":"B"},"row_version":1`, `{"id":"Z"},"row_version":1`, `{"id":"a"},"row_version":1`, `{"id":"é"},"row_version":1`,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rows\n%v\nwant\n%v", got, want)
	}
}

// The scope checks of docs/protocol-v1.md §3.9 step 3.
func TestCreateSnapshot_ScopeRefusals(t *testing.T) {
	t.Parallel()
	s, pool := newTestStore(t, Config{})
	mustExec(t, pool, `INSERT INTO sync_v1.scopes (user_id, state, lease_source_id, lease_expires_at, initialization_id)
		VALUES ('leased', 'initializing', 'p', now() + interval '1 hour', gen_random_uuid()),
		       ('lapsed', 'initializing', 'p', now() - interval '1 second', gen_random_uuid())`)
	for _, tc := range []struct{ user, code string }{
		{"nobody", "scope_uninitialized"},
		{"leased", "scope_initializing"},
		{"lapsed", "scope_uninitialized"},
	} {
		_, err := s.CreateSnapshot(context.Background(), Caller{User: tc.user, Source: "p"}, nil)
		wantError(t, err, tc.code)
	}
}

// Session limits (docs/protocol-v1.md §3.9 step 6): each dimension refuses with its totals, the
// row size first, and a refused build leaves nothing behind.
func TestCreateSnapshot_Limits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newTestStore(t, Config{})
	seedUsers(t, s, "alice", 1, 3)
	probe, err := s.CreateSnapshot(ctx, Caller{User: "alice"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	row := probe.ByteCount / 3 // equal rows
	mustExec(t, pool, `TRUNCATE sync_v1.snapshots, sync_v1.snapshot_rows`)

	cases := []struct {
		name string
		cfg  Config
		want LimitExceeded
	}{
		{"row_byte_count", Config{MaxBytesPerSnapshotRow: row - 1, MaxRowsPerSnapshot: 1}, LimitExceeded{"row_byte_count", row, row - 1}},
		{"row_count", Config{MaxRowsPerSnapshot: 2, MaxBytesPerSnapshot: 1}, LimitExceeded{"row_count", 3, 2}},
		{"byte_count", Config{MaxBytesPerSnapshot: 3*row - 1}, LimitExceeded{"byte_count", 3 * row, 3*row - 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := NewStore(s.pool, s.reg, tc.cfg)
			_, err := st.CreateSnapshot(ctx, Caller{User: "alice"}, nil)
			e := wantError(t, err, "snapshot_session_limit_exceeded")
			if e.Limit == nil || *e.Limit != tc.want {
				t.Fatalf("limit %+v, want %+v", e.Limit, tc.want)
			}
		})
	}
	var sessions, rows int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM sync_v1.snapshots), (SELECT count(*) FROM sync_v1.snapshot_rows)`).Scan(&sessions, &rows); err != nil {
		t.Fatal(err)
	}
	if sessions != 0 || rows != 0 {
		t.Fatalf("refused builds left %d sessions and %d rows", sessions, rows)
	}
	// At the limits exactly, the build passes.
	st := NewStore(s.pool, s.reg, Config{MaxBytesPerSnapshotRow: row, MaxRowsPerSnapshot: 3, MaxBytesPerSnapshot: 3 * row})
	if _, err := st.CreateSnapshot(ctx, Caller{User: "alice"}, nil); err != nil {
		t.Fatalf("at the limits: %v", err)
	}
}

// Creating more sessions than Config.MaxSnapshotsPerUser retires the user's oldest live one
// (docs/protocol-v1.md §6.1 H8); other users' sessions are untouched.
func TestCreateSnapshot_PerUserCap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newTestStore(t, Config{MaxSnapshotsPerUser: 2})
	seedUsers(t, s, "alice", 1, 1)
	seedUsers(t, s, "bob", 1, 1)
	alice, bob := Caller{User: "alice"}, Caller{User: "bob"}
	b1, err := s.CreateSnapshot(ctx, bob, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 3 {
		info, err := s.CreateSnapshot(ctx, alice, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, info.SnapshotID)
	}
	_, err = s.SnapshotChunk(ctx, alice, ids[0], 0, 10, 1<<20)
	wantError(t, err, "snapshot_session_expired")
	for _, id := range append(ids[1:], b1.SnapshotID) {
		c := alice
		if id == b1.SnapshotID {
			c = bob
		}
		if _, err := s.SnapshotChunk(ctx, c, id, 0, 10, 1<<20); err != nil {
			t.Errorf("session %s: %v", id, err)
		}
	}
}

// Admission (docs/protocol-v1.md §3.9 step 2): with one build allowed and one in progress (held
// in the user's lock queue), another build is refused with 429 at once, for any user; once the
// first ends, builds are admitted again.
func TestCreateSnapshot_BuildCapacity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newTestStore(t, Config{MaxConcurrentSnapshotBuilds: 1, LockWait: time.Minute})
	seedUsers(t, s, "alice", 1, 1)
	seedUsers(t, s, "bob", 1, 1)

	holding, hold := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- s.inUserLock(ctx, "alice", func(context.Context, pgx.Tx, *sequencer.Block) error {
			close(holding)
			<-hold
			return nil
		})
	}()
	<-holding
	first := make(chan error, 1)
	go func() {
		_, err := s.CreateSnapshot(ctx, Caller{User: "alice"}, nil)
		first <- err
	}()
	pushtest.WaitFor(t, func() bool { return s.snapshots.builds.inUse.Load() == 1 })

	_, err := s.CreateSnapshot(ctx, Caller{User: "bob"}, nil)
	if e := wantError(t, err, "snapshot_build_capacity"); e.RetryAfter < 1 || e.RetryAfter > maxRetryAfter {
		t.Errorf("Retry-After %d, want 1…%d", e.RetryAfter, maxRetryAfter)
	}
	close(hold)
	if err := errors.Join(<-held, <-first); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSnapshot(ctx, Caller{User: "bob"}, nil); err != nil {
		t.Fatalf("after the build ended: %v", err)
	}
}

// Retry-After grows with the crowd of refused callers in one second (docs/protocol-v1.md §6.2
// #7), capped at maxRetryAfter, and the slots are given back.
func TestAdmission_RetryAfterSpreadsRefusals(t *testing.T) {
	var a admission
	var releases []func()
	for range 2 {
		release, _ := a.enter(2)
		if release == nil {
			t.Fatal("refused below the limit")
		}
		releases = append(releases, release)
	}
	var got []int
	for range 12 {
		release, retry := a.enter(2)
		if release != nil {
			t.Fatal("admitted over the limit")
		}
		got = append(got, retry)
	}
	// A refusal falling into the next second starts the count again; allow for it.
	want := []int{1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 5, 5}
	for i := range got {
		if got[i] > want[i] || got[i] < 1 {
			t.Fatalf("Retry-After %v, want %v", got, want)
		}
	}
	for _, r := range releases {
		r()
	}
	if release, _ := a.enter(2); release == nil {
		t.Fatal("refused after the slots were given back")
	}
}

// BenchmarkSnapshot builds a snapshot of 20,000 live rows, reads all its chunks with the
// client's default budgets and deletes it, as a client hydrating does.
func BenchmarkSnapshot(b *testing.B) {
	s, _ := newTestStore(b, Config{})
	const bundles, rowsPer = 20, 1000
	seedUsers(b, s, "alice", bundles, rowsPer)
	ctx := context.Background()
	alice := Caller{User: "alice"}
	b.ResetTimer()
	for b.Loop() {
		info, err := s.CreateSnapshot(ctx, alice, nil)
		if err != nil {
			b.Fatal(err)
		}
		if rows := readAll(b, s, alice, info); len(rows) != bundles*rowsPer {
			b.Fatalf("read %d rows", len(rows))
		}
		if err := s.DeleteSnapshot(ctx, alice, info.SnapshotID); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*bundles*rowsPer)/b.Elapsed().Seconds(), "rows/s")
}
