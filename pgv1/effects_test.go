package pgv1

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pulsesync/pulsesync/internal/jcs"
	"github.com/pulsesync/pulsesync/pgv1/wire"
)

// wireRow is a stored bundle row decoded.
type wireRow struct {
	Schema     string          `json:"schema"`
	Table      string          `json:"table"`
	Key        json.RawMessage `json:"key"`
	Op         string          `json:"op"`
	RowVersion int64           `json:"row_version"`
	Payload    json.RawMessage `json:"payload"`
}

// hashRow is r as the hashes of docs/protocol-v1.md §4 take it: key and payload canonical
// (RFC 8785), the row's version as given.
func (r wireRow) hashRow(t testing.TB) wire.HashRow {
	t.Helper()
	key, err := jcs.Canonicalize(r.Key)
	if err != nil {
		t.Fatalf("canonical key %s: %v", r.Key, err)
	}
	h := wire.HashRow{Schema: r.Schema, Table: r.Table, Key: key, Op: r.Op, Version: r.RowVersion}
	if r.Payload != nil {
		if h.Payload, err = jcs.Canonicalize(r.Payload); err != nil {
			t.Fatalf("canonical payload %s: %v", r.Payload, err)
		}
	}
	return h
}

// clientHash recomputes a bundle's hash and byte count from its rows as a reader served them,
// as a client does (docs/protocol-v1.md §4.3): the reads must serve exactly the payloads the
// commit hashed. It returns the rows decoded.
func clientHash(t testing.TB, raws []json.RawMessage) (hash string, size int64, rows []wireRow) {
	t.Helper()
	rows = make([]wireRow, len(raws))
	hr := make([]wire.HashRow, len(raws))
	for i, raw := range raws {
		if err := json.Unmarshal(raw, &rows[i]); err != nil {
			t.Fatalf("row %s: %v", raw, err)
		}
		hr[i] = rows[i].hashRow(t)
	}
	hash, size = wire.BundleHash(hr)
	return hash, size, rows
}

// verifiedBundle reads bundle seq of user, recomputes its hash from the stored rows as a client
// does from the rows it reads (docs/protocol-v1.md §4.3), fails the test when it differs from
// the stored hash or byte count, and returns the rows.
func verifiedBundle(t *testing.T, pool *pgxpool.Pool, user string, seq int64) []wireRow {
	t.Helper()
	var hash string
	var size, count int64
	if err := pool.QueryRow(t.Context(), `SELECT bundle_hash, byte_count, row_count FROM sync_v1.bundles WHERE user_id = $1 AND bundle_seq = $2`,
		user, seq).Scan(&hash, &size, &count); err != nil {
		t.Fatalf("read bundle %d: %v", seq, err)
	}
	wires := bundleWires(t, pool, user, seq)
	raws := make([]json.RawMessage, len(wires))
	for i, w := range wires {
		raws[i] = json.RawMessage(w)
	}
	gotHash, gotSize, rows := clientHash(t, raws)
	for _, r := range rows {
		if r.RowVersion != seq {
			t.Errorf("bundle %d row %s/%s has row_version %d", seq, r.Table, r.Key, r.RowVersion)
		}
	}
	if gotHash != hash || gotSize != size || int64(len(rows)) != count {
		t.Fatalf("bundle %d: recomputed hash %s (%d bytes, %d rows), stored %s (%d bytes, %d rows)", seq, gotHash, gotSize, len(rows), hash, size, count)
	}
	return rows
}

// The rows of a bundle are the real effects of the commit (docs/protocol-v1.md §1.3): a
// column default and a row another trigger modified appear in the after-images, a cascade
// delete adds rows nobody pushed, and the hash covers exactly the stored rows.
func TestCommit_BundleHoldsRealEffects(t *testing.T) {
	t.Parallel()
	s, pool := newTestStore(t, Config{})
	ctx := t.Context()
	c := Caller{User: "alice", Source: "device-a"}
	if _, err := s.Connect(ctx, c, false); err != nil {
		t.Fatal(err)
	}
	const user = "11111111-1111-4111-8111-111111111111"
	const post = "22222222-2222-4222-8222-222222222222"
	m := mustPush(t, s, c, 1, []PushRow{
		row("users", "id", user, "INSERT", 0, `{"id":"`+user+`","name":"Ann","email":null,"visits":"1","active":false}`),
		row("posts", "id", post, "INSERT", 0, `{"id":"`+post+`","author_id":"`+user+`","title":"Hello","body":"b","score":"1.50"}`),
		row("comments", "id", "c-1", "INSERT", 0, `{"id":"c-1","post_id":"`+post+`","body":"nice"}`),
	}, pushOpts{})
	got := verifiedBundle(t, pool, "alice", m.BundleSeq)
	want := []wireRow{
		{Schema: "business", Table: "users", Key: json.RawMessage(`{"id":"` + user + `"}`), Op: "INSERT", RowVersion: 1,
			Payload: json.RawMessage(`{"active":false,"email":null,"id":"` + user + `","name":"Ann","visits":"1"}`)},
		{Schema: "business", Table: "posts", Key: json.RawMessage(`{"id":"` + post + `"}`), Op: "INSERT", RowVersion: 1,
			Payload: json.RawMessage(`{"author_id":"` + user + `","body":"b","id":"` + post + `","score":"1.50","title":"Hello (commented)"}`)},
		{Schema: "business", Table: "comments", Key: json.RawMessage(`{"id":"c-1"}`), Op: "INSERT", RowVersion: 1,
			Payload: json.RawMessage(`{"body":"nice","id":"c-1","post_id":"` + post + `","stars":"3"}`)},
	}
	if !equalRows(got, want) {
		t.Fatalf("bundle 1 rows:\n got %s\nwant %s", mustJSON(got), mustJSON(want))
	}

	// Deleting the user cascades to the post and its comment: three DELETEs for one pushed row.
	m = mustPush(t, s, c, 2, []PushRow{row("users", "id", user, "DELETE", 1, "")}, pushOpts{})
	if m.RowCount != 3 {
		t.Fatalf("cascade bundle has %d rows, want 3", m.RowCount)
	}
	var keys []string
	for _, r := range verifiedBundle(t, pool, "alice", m.BundleSeq) {
		if r.Op != "DELETE" || r.Payload != nil {
			t.Errorf("cascade bundle row %s/%s: op %s payload %s, want DELETE without payload", r.Table, r.Key, r.Op, r.Payload)
		}
		keys = append(keys, r.Table+string(r.Key))
	}
	slices.Sort(keys)
	wantKeys := []string{`comments{"id":"c-1"}`, `posts{"id":"` + post + `"}`, `users{"id":"` + user + `"}`}
	if !slices.Equal(keys, wantKeys) {
		t.Fatalf("cascade bundle rows %v, want %v", keys, wantKeys)
	}
	// Every row that was touched is a tombstone at version 2.
	var tombstones int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM sync_v1.row_state WHERE user_id = 'alice' AND deleted AND row_version = 2 AND payload IS NULL`).Scan(&tombstones); err != nil {
		t.Fatal(err)
	}
	if tombstones != 3 {
		t.Errorf("%d tombstones at version 2, want 3", tombstones)
	}
}

// equalRows compares rows member by member, payloads and keys byte for byte.
func equalRows(a, b []wireRow) bool {
	return slices.EqualFunc(a, b, func(x, y wireRow) bool {
		return x.Schema == y.Schema && x.Table == y.Table && string(x.Key) == string(y.Key) && x.Op == y.Op &&
			x.RowVersion == y.RowVersion && string(x.Payload) == string(y.Payload)
	})
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
