package importv0

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// source is the go-oversync database the import reads, with its table names quoted once.
type source struct {
	pool     *pgxpool.Pool
	label    string // host:port/database schema, never credentials
	log      string // server_change_log
	meta     string // sync_row_meta
	state    string // sync_state
	failures string // materialize_failures; "" when the source has none
}

// requiredTables are the reference's tables an import cannot do without.
var requiredTables = []string{"server_change_log", "sync_row_meta", "sync_state"}

const tableExistsSQL = `SELECT to_regclass($1) IS NOT NULL`

// openSource checks that schema in pool holds the reference's tables and names them.
func openSource(ctx context.Context, pool *pgxpool.Pool, schema string) (*source, error) {
	cc := pool.Config().ConnConfig
	s := &source{pool: pool, label: fmt.Sprintf("%s:%d/%s schema %s", cc.Host, cc.Port, cc.Database, schema)}
	names := map[string]*string{"server_change_log": &s.log, "sync_row_meta": &s.meta, "sync_state": &s.state, "materialize_failures": &s.failures}
	for table, name := range names {
		ident := pgx.Identifier{schema, table}.Sanitize()
		var exists bool
		if err := pool.QueryRow(ctx, tableExistsSQL, ident).Scan(&exists); err != nil {
			return nil, fmt.Errorf("look for source table %s: %w", table, err)
		}
		if exists {
			*name = ident
		}
	}
	for _, table := range requiredTables {
		if *names[table] == "" {
			return nil, fmt.Errorf("source %s has no table %s.%s: is it a go-oversync v0 database?", s.label, schema, table)
		}
	}
	return s, nil
}

// Counts describes a source: what an import copies. Entries and Floor decide whether a
// finished import is still current.
type Counts struct {
	Entries  int64 // change-log entries (each one an idempotency key)
	Deletes  int64 // of which DELETE entries
	Users    int64 // users with entries
	Floor    int64 // highest server_id: every user's sequence continues above it
	Rows     int64 // row versions
	Deleted  int64 // of which tombstones
	Failures int64 // materialization failures of rows' current versions
}

// countsSQL reads a source's counts in one statement; %s are the log, meta and failure tables.
const countsSQL = `SELECT l.entries, l.deletes, l.users, l.floor, m.rows, m.deleted, %s
FROM (SELECT count(*) AS entries, count(*) FILTER (WHERE op = 'DELETE') AS deletes,
             count(DISTINCT user_id) AS users, coalesce(max(server_id), 0) AS floor FROM %s) l,
     (SELECT count(*) AS rows, count(*) FILTER (WHERE deleted) AS deleted FROM %s) m`

// currentFailuresSQL counts (%s = failures, meta) the failures of rows' current versions.
const currentFailuresSQL = `(SELECT count(*) FROM %s f JOIN %s m
    ON m.user_id = f.user_id AND m.schema_name = f.schema_name AND m.table_name = f.table_name
   AND m.pk_uuid = f.pk_uuid AND m.server_version = f.attempted_version)`

// counts reads the source's counts.
func (s *source) counts(ctx context.Context) (Counts, error) {
	failures := "0::int8"
	if s.failures != "" {
		failures = fmt.Sprintf(currentFailuresSQL, s.failures, s.meta)
	}
	var c Counts
	err := s.pool.QueryRow(ctx, fmt.Sprintf(countsSQL, failures, s.log, s.meta)).
		Scan(&c.Entries, &c.Deletes, &c.Users, &c.Floor, &c.Rows, &c.Deleted, &c.Failures)
	if err != nil {
		return Counts{}, fmt.Errorf("count source %s: %w", s.label, err)
	}
	return c, nil
}

// compactPayload returns a stored after-image as the compact JSON text pulsesync keeps
// (docs/protocol-v0.md: payloads are stored as the client sent them, compacted), using buf as
// scratch. nil stays nil: a DELETE has no payload.
func compactPayload(raw []byte, buf *bytes.Buffer) (*string, error) {
	if raw == nil {
		return nil, nil
	}
	buf.Reset()
	if err := json.Compact(buf, raw); err != nil {
		return nil, err
	}
	text := buf.String()
	return &text, nil
}
