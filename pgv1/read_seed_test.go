package pgv1

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pulsesync/pulsesync/sequencer"
)

// The read path's tests seed committed state directly, the way a commit leaves it: under the
// user's lock, the bundle_seq taken from the sequencer, bundles + bundle_rows + row_state written
// in the same transaction. That keeps them independent of the write path's own rules.

// seedRow is one row of a seeded bundle, in schema business.
type seedRow struct {
	table   string
	key     string // the key value; the key column is "id" in every test table
	op      string // INSERT, UPDATE or DELETE
	payload string // canonical JSON object; "" for DELETE
}

// userRow returns an INSERT of business.users with a payload of the §7 shape.
func userRow(id, name string) seedRow {
	return seedRow{table: "users", key: id, op: "INSERT",
		payload: fmt.Sprintf(`{"active":true,"email":%q,"id":%q,"name":%q,"visits":"1"}`, name+"@example.com", id, name)}
}

// keyJSON is a test row's key object.
func keyJSON(key string) string { return `{"id":` + strconv.Quote(key) + `}` }

// bundleRowWire is the stored wire text of a bundle row.
func bundleRowWire(r seedRow, seq int64) string {
	w := fmt.Sprintf(`{"schema":"business","table":%q,"key":%s,"op":%q,"row_version":%d`, r.table, keyJSON(r.key), r.op, seq)
	if r.op != "DELETE" {
		w += `,"payload":` + r.payload
	}
	return w + "}"
}

const (
	seedScopeSQL  = `INSERT INTO sync_v1.scopes (user_id, state) VALUES ($1, 'initialized') ON CONFLICT (user_id) DO NOTHING`
	seedBundleSQL = `INSERT INTO sync_v1.bundles (user_id, bundle_seq, source_id, source_bundle_id, row_count,
    bundle_hash, request_hash, byte_count) VALUES ($1, $2, $3, $2, $4, $5, $6, $7)`
	seedRowsSQL = `INSERT INTO sync_v1.bundle_rows (user_id, bundle_seq, row_ordinal, wire)
SELECT $1, $2, o - 1, w FROM unnest($3::text[]) WITH ORDINALITY AS u (w, o)`
	seedStateSQL = `INSERT INTO sync_v1.row_state (user_id, schema_name, table_name, key_value, key_json, row_version, deleted, payload)
SELECT $1, 'business', t, k, '{"id":' || to_json(k)::text || '}', $2, p IS NULL, p
FROM unnest($3::text[], $4::text[], $5::text[]) AS u (t, k, p)
ON CONFLICT (user_id, schema_name, table_name, key_value) DO UPDATE
SET row_version = excluded.row_version, deleted = excluded.deleted, payload = excluded.payload`
)

// seedBundle commits one bundle of rows for user from source and returns its bundle_seq. The
// scope becomes initialized. The hashes are stand-ins: the read path serves them, it does not
// compute them.
func seedBundle(t testing.TB, s *Store, user, source string, rows ...seedRow) int64 {
	t.Helper()
	seq, err := commitSeed(s, user, source, rows...)
	if err != nil {
		t.Fatalf("seed bundle: %v", err)
	}
	return seq
}

// commitSeed is seedBundle for goroutines other than the test's.
func commitSeed(s *Store, user, source string, rows ...seedRow) (int64, error) {
	var got int64
	err := s.inUserLock(context.Background(), user, func(ctx context.Context, tx pgx.Tx, seq *sequencer.Block) error {
		got = seq.Take(1)
		wires := make([]string, len(rows))
		var tables, keys []string
		var payloads []*string
		for i, r := range rows {
			wires[i] = bundleRowWire(r, got)
			tables, keys = append(tables, r.table), append(keys, r.key)
			if r.op == "DELETE" {
				payloads = append(payloads, nil)
			} else {
				payloads = append(payloads, &rows[i].payload)
			}
		}
		sum := sha256.Sum256([]byte(strings.Join(wires, ",")))
		b := &pgx.Batch{}
		b.Queue(seedScopeSQL, user)
		b.Queue(seedBundleSQL, user, got, source, len(rows), hex.EncodeToString(sum[:]), strings.Repeat("c", 64), len(strings.Join(wires, ",")))
		b.Queue(seedRowsSQL, user, got, wires)
		b.Queue(seedStateSQL, user, got, tables, keys, payloads)
		seq.QueueStore(b)
		return tx.SendBatch(ctx, b).Close()
	})
	return got, err
}

// seedUsers commits n bundles of rowsPer new business.users rows each and returns the last
// bundle_seq. Keys and names are fixed by position and of one width, so bundles of one call are
// equally large and runs repeatable.
func seedUsers(t testing.TB, s *Store, user string, n, rowsPer int) int64 {
	t.Helper()
	var last int64
	for b := range n {
		rows := make([]seedRow, rowsPer)
		for i := range rows {
			rows[i] = userRow(testUUID(b*rowsPer+i), fmt.Sprintf("user%06d", b*rowsPer+i))
		}
		last = seedBundle(t, s, user, "seed-source", rows...)
	}
	return last
}

// testUUID is a canonical uuid made from n.
func testUUID(n int) string {
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", n)
}

// mustExec runs one statement of a test's set-up.
func mustExec(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// wantError fails the test unless err is a *Error with code, and returns it.
func wantError(t testing.TB, err error, code string) *Error {
	t.Helper()
	e, ok := err.(*Error)
	if !ok || e.Code != code {
		t.Fatalf("got error %v, want %s", err, code)
	}
	return e
}
