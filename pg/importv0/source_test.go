package importv0_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pulsesync/pulsesync/internal/oversynctest"
	"github.com/pulsesync/pulsesync/internal/pgtest"
	"github.com/pulsesync/pulsesync/pg"
	"github.com/pulsesync/pulsesync/pg/importv0"
)

// entry is one change the reference recorded.
type entry = oversynctest.Entry

// reference is a go-oversync-shaped source database.
type reference struct {
	url  string
	pool *pgxpool.Pool
}

// newReference creates a source database with the reference's tables, payloads of type
// payloadType.
func newReference(t *testing.T, payloadType string) *reference {
	t.Helper()
	url := pgtest.NewDB(t)
	pool := connect(t, url)
	if err := oversynctest.CreateSchema(t.Context(), pool, payloadType); err != nil {
		t.Fatal(err)
	}
	return &reference{url: url, pool: pool}
}

// record stores entries as the reference would have, in the order given.
func (r *reference) record(t *testing.T, entries ...entry) {
	t.Helper()
	if err := oversynctest.Record(t.Context(), r.pool, entries...); err != nil {
		t.Fatal(err)
	}
}

// fail records a failed projection of a row's version.
func (r *reference) fail(t *testing.T, user, table, pk string, version int64, op, payload string) {
	t.Helper()
	if err := oversynctest.Fail(t.Context(), r.pool, user, table, pk, version, op, payload); err != nil {
		t.Fatal(err)
	}
}

// connect opens a pool to url that closes with the test.
func connect(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pg.Connect(t.Context(), pg.PoolConfig{URL: url})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// snapshotSQL reads everything an import writes, as text, in a stable order. Payloads compare
// as jsonb: sources with jsonb columns hand out their keys in jsonb's order.
var snapshotSQL = []string{
	`SELECT row(user_id, server_id, schema_name, table_name, op, pk, payload::jsonb, server_version, source_id, source_change_id, ts)::text
	 FROM sync.changes ORDER BY user_id, server_id`,
	`SELECT r::text FROM sync.rows r ORDER BY user_id, schema_name, table_name, pk`,
	`SELECT o::text FROM sync.business_owners o ORDER BY schema_name, table_name, pk`,
	`SELECT row(user_id, schema_name, table_name, pk, attempted_version, op, payload::jsonb, error, first_seen, retry_count)::text
	 FROM sync.materialize_failures ORDER BY user_id, schema_name, table_name, pk`,
	`SELECT q::text FROM sync.user_seq q ORDER BY user_id`,
	`SELECT 'staged rows: ' || count(*) FROM sync.import_v0_rows`,
}

// snapshot returns the target's sync state, one line per record, each table's lines prefixed
// with the table's position in snapshotSQL.
func snapshot(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	var lines []string
	for i, sql := range snapshotSQL {
		rows, err := pool.Query(t.Context(), sql)
		if err != nil {
			t.Fatalf("snapshot: %v", err)
		}
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("snapshot: %v", err)
		}
		for _, text := range texts {
			lines = append(lines, fmt.Sprintf("%d %s", i, text))
		}
	}
	return lines
}

// mustRun imports src into dst and fails the test on error.
func mustRun(t *testing.T, ctx context.Context, src, dst *pgxpool.Pool, cfg importv0.Config) importv0.Result {
	t.Helper()
	res, err := importv0.Run(ctx, src, dst, cfg)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return res
}
