package pg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// projection is one applied change prepared for its business table.
type projection struct {
	key     rowKey
	version int64
	op      string
	payload []byte
	values  []*string // upserts: text values of the group's columns, nil = NULL
}

// projectionGroup is a set of projections that one statement writes: same table, same kind,
// and for upserts the same payload columns.
type projectionGroup struct {
	table   *Table
	delete  bool
	columns []string // upserts: columns the payloads set, table order, primary key excluded
	rows    []*projection
}

// failedProjection is a projection that did not reach its business table.
type failedProjection struct {
	*projection
	reason string
}

// materialize projects the applied changes into the business tables (PROTOCOL.md §3.11), in
// processing order, inside the upload transaction. A projection that fails is recorded in the
// failure log and never undoes its change, which stays applied; a projection that succeeds
// clears an earlier failure record of its row (looked for only when hasFailures). An error
// means the database failed, not a projection.
func (s *Store) materialize(ctx context.Context, tx pgx.Tx, user string, applied []*appliedChange, hasFailures bool) error {
	failed, succeeded, err := s.projectChanges(ctx, tx, user, applied)
	if err != nil {
		return err
	}
	if !hasFailures {
		succeeded = nil
	}
	return recordFailures(ctx, tx, user, failed, succeeded)
}

// projectChanges writes the business rows of applied and reports which projections failed and
// which succeeded. The projections of one user never overwrite or delete a business row that
// another user owns (§10.3 #9): such an upsert fails, such a delete leaves the row alone.
func (s *Store) projectChanges(ctx context.Context, tx pgx.Tx, user string, applied []*appliedChange) (failed []failedProjection, succeeded []rowKey, err error) {
	groups, failed := planProjections(applied)
	written, rejected, err := s.project(ctx, tx, user, groups)
	if err != nil {
		return nil, nil, err
	}
	failed = append(failed, rejected...)
	isFailed := make(map[rowKey]bool, len(failed))
	for _, f := range failed {
		isFailed[f.key] = true
	}
	for _, g := range groups {
		for _, p := range g.rows {
			switch {
			case isFailed[p.key]:
			case !g.delete && !written[p.key]:
				failed = append(failed, failedProjection{p, "the business row belongs to another user"})
			default:
				succeeded = append(succeeded, p.key)
			}
		}
	}
	return failed, succeeded, nil
}

// planProjections converts the payload values of applied changes to their columns' types and
// groups the changes into statements. Values that do not convert fail here, before any SQL.
//
// Only consecutive changes of one shape share a statement, so the statements keep processing
// order: gathering every row of a shape into its first statement could write a child of a
// self-referencing table before a parent that comes earlier in the request.
func planProjections(applied []*appliedChange) ([]*projectionGroup, []failedProjection) {
	var groups []*projectionGroup
	var failed []failedProjection
	for _, a := range applied {
		p := &projection{key: a.key(), version: a.version, op: a.op, payload: a.payload}
		var columns []string
		if a.upsert() {
			var err error
			if columns, p.values, err = upsertValues(a.table, a.payload); err != nil {
				failed = append(failed, failedProjection{p, err.Error()})
				continue
			}
		}
		var g *projectionGroup
		if n := len(groups); n > 0 {
			g = groups[n-1]
		}
		if g == nil || g.table != a.table || g.delete == a.upsert() || !slices.Equal(g.columns, columns) {
			g = &projectionGroup{table: a.table, delete: !a.upsert(), columns: columns}
			groups = append(groups, g)
		}
		g.rows = append(g.rows, p)
	}
	return groups, failed
}

// upsertValues picks the payload keys that name columns of t (its primary key excluded: the
// row key is authoritative) and converts their values. Keys without a column are ignored; a
// NOT NULL column without a default that the payload leaves out is an error.
func upsertValues(t *Table, payload []byte) (columns []string, values []*string, err error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(payload, &fields); err != nil {
		return nil, nil, fmt.Errorf("payload is not a JSON object")
	}
	for _, c := range t.Columns {
		if c.Name == t.PK {
			continue
		}
		raw, ok := fields[c.Name]
		if !ok {
			if c.NotNull && !c.HasDefault {
				return nil, nil, fmt.Errorf("column %q is NOT NULL but missing from the payload", c.Name)
			}
			continue
		}
		v, err := columnText(c, raw)
		if err != nil {
			return nil, nil, err
		}
		columns = append(columns, c.Name)
		values = append(values, v)
	}
	return columns, values, nil
}

// project writes the groups in one round trip inside a savepoint. If a statement fails because
// of the data (a constraint, a cast), it rolls back and writes row by row, each in its own
// savepoint, to find and reject exactly the rows that fail.
func (s *Store) project(ctx context.Context, tx pgx.Tx, user string, groups []*projectionGroup) (written map[rowKey]bool, rejected []failedProjection, err error) {
	if len(groups) == 0 {
		return nil, nil, nil
	}
	written = map[rowKey]bool{}
	batch := &pgx.Batch{}
	batch.Queue(`SAVEPOINT materialize`)
	for _, g := range groups {
		s.queueProjection(batch, user, g, g.rows, written)
	}
	batch.Queue(`RELEASE SAVEPOINT materialize`)
	err = tx.SendBatch(ctx, batch).Close()
	if err == nil || !projectionError(err) {
		return written, nil, err
	}
	if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT materialize; RELEASE SAVEPOINT materialize`); err != nil {
		return nil, nil, fmt.Errorf("roll back projections: %w", err)
	}
	clear(written)
	for _, g := range groups {
		for _, p := range g.rows {
			reason, err := s.projectOne(ctx, tx, user, g, p, written)
			if err != nil {
				return nil, nil, err
			}
			if reason != "" {
				rejected = append(rejected, failedProjection{p, reason})
			}
		}
	}
	return written, rejected, nil
}

// projectOne writes one projection in its own savepoint and returns why it failed, if it did.
func (s *Store) projectOne(ctx context.Context, tx pgx.Tx, user string, g *projectionGroup, p *projection, written map[rowKey]bool) (reason string, err error) {
	mine := map[rowKey]bool{}
	batch := &pgx.Batch{}
	batch.Queue(`SAVEPOINT projection`)
	s.queueProjection(batch, user, g, []*projection{p}, mine)
	batch.Queue(`RELEASE SAVEPOINT projection`)
	err = tx.SendBatch(ctx, batch).Close()
	if err == nil {
		for k := range mine {
			written[k] = true
		}
		return "", nil
	}
	if !projectionError(err) {
		return "", err
	}
	// Released too: a savepoint survives ROLLBACK TO, and the next row's would nest inside it.
	if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT projection; RELEASE SAVEPOINT projection`); err != nil {
		return "", fmt.Errorf("roll back projection: %w", err)
	}
	var pgErr *pgconn.PgError
	errors.As(err, &pgErr)
	return pgErr.Message, nil
}

// projectionError reports whether err is the data's fault (a constraint, a cast, a trigger),
// which fails one projection, rather than the database's, which fails the upload.
func projectionError(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || transient(err) {
		return false
	}
	switch pgErr.Code[:2] {
	case "08", "53", "57", "58", "XX": // connection, resources, operator intervention, system, internal
		return false
	}
	return true
}

// queueProjection queues the statement writing rows of g and adds the keys it wrote to written.
func (s *Store) queueProjection(batch *pgx.Batch, user string, g *projectionGroup, rows []*projection, written map[rowKey]bool) {
	pks := make([]UUID, len(rows))
	for i, p := range rows {
		pks[i] = p.pk()
	}
	name := g.table.Name
	if g.delete {
		batch.Queue(s.projectionSQL(g), user, name.Schema, name.Table, pks)
		return
	}
	args := []any{user, name.Schema, name.Table, pks}
	for c := range g.columns {
		values := make([]*string, len(rows))
		for i, p := range rows {
			values[i] = p.values[c]
		}
		args = append(args, values)
	}
	batch.Queue(s.projectionSQL(g), args...).Query(func(rows pgx.Rows) error {
		var pk UUID
		_, err := pgx.ForEachRow(rows, []any{&pk}, func() error {
			written[rowKey{table: g.table, pk: pk}] = true
			return nil
		})
		return err
	})
}

func (p *projection) pk() UUID { return p.key.pk }

// projectionSQL returns the statement for g's shape, built once and cached. Parameters: $1 user,
// $2 schema, $3 table, $4 primary keys, then one text array per column.
//
// An upsert first claims each row for the user in sync.business_owners; rows another user
// already owns are not written (and not returned), which the caller records as failures. A
// delete removes only rows the user owns, and releases them.
func (s *Store) projectionSQL(g *projectionGroup) string {
	shape := fmt.Sprintf("%s|%t|%s", g.table.Name, g.delete, strings.Join(g.columns, ","))
	if cached, ok := s.projectionSQLs.Load(shape); ok {
		return cached.(string)
	}
	t := g.table
	pk := pgx.Identifier{t.PK}.Sanitize()
	var sql string
	if g.delete {
		sql = `WITH released AS (
    DELETE FROM sync.business_owners
    WHERE schema_name = $2 AND table_name = $3 AND user_id = $1 AND pk = ANY ($4::uuid[])
    RETURNING pk)
DELETE FROM ` + t.Ident() + ` t USING released r WHERE t.` + pk + ` = r.pk`
	} else {
		unnestArgs, inputCols, selectCols, updates := []string{"$4::uuid[]"}, []string{"pk"}, []string{"i.pk"}, []string{}
		for i, name := range g.columns {
			col, _ := t.Column(name)
			ident := pgx.Identifier{name}.Sanitize()
			unnestArgs = append(unnestArgs, fmt.Sprintf("$%d::text[]", i+5))
			inputCols = append(inputCols, fmt.Sprintf("c%d", i))
			selectCols = append(selectCols, fmt.Sprintf("i.c%d::%s", i, castTarget(col)))
			updates = append(updates, ident+" = excluded."+ident)
		}
		if len(updates) == 0 { // nothing to change, but the row must come back as written
			updates = append(updates, pk+" = excluded."+pk)
		}
		targetCols := []string{pk}
		for _, name := range g.columns {
			targetCols = append(targetCols, pgx.Identifier{name}.Sanitize())
		}
		sql = `WITH input AS (
    SELECT * FROM unnest(` + strings.Join(unnestArgs, ", ") + `) AS u (` + strings.Join(inputCols, ", ") + `)),
claimed AS (
    INSERT INTO sync.business_owners (schema_name, table_name, pk, user_id)
    SELECT $2, $3, pk, $1 FROM input ORDER BY pk
    ON CONFLICT DO NOTHING
    RETURNING pk),
mine AS (
    SELECT pk FROM claimed
    UNION ALL
    SELECT o.pk FROM sync.business_owners o JOIN input USING (pk)
    WHERE o.schema_name = $2 AND o.table_name = $3 AND o.user_id = $1)
INSERT INTO ` + t.Ident() + ` AS t (` + strings.Join(targetCols, ", ") + `)
SELECT ` + strings.Join(selectCols, ", ") + ` FROM input i JOIN mine USING (pk) ORDER BY i.pk
ON CONFLICT (` + pk + `) DO UPDATE SET ` + strings.Join(updates, ", ") + `
RETURNING t.` + pk
	}
	s.projectionSQLs.Store(shape, sql)
	return sql
}

// castTarget is the type a column's text is cast to before the INSERT assigns it. An explicit
// cast to a length-limited character or bit type (varchar(n), char(n), bit(n), a domain over
// one, arrays of them) cuts an over-long value silently, so those are cast to their unlimited
// form instead: the INSERT's assignment then checks the length and a domain's constraints, and
// an over-long value fails the projection rather than being stored truncated.
func castTarget(c Column) string {
	switch c.Type {
	case "varchar", "bpchar":
		return "text"
	case "_varchar", "_bpchar":
		return "text[]"
	case "bit", "varbit":
		return "varbit"
	case "_bit", "_varbit":
		return "varbit[]"
	}
	return c.SQLType
}

const recordFailuresSQL = `INSERT INTO sync.materialize_failures AS f
    (user_id, schema_name, table_name, pk, attempted_version, op, payload, error)
SELECT $1, u.schema_name, u.table_name, u.pk, u.version, u.op, u.payload, u.error
FROM unnest($2::text[], $3::text[], $4::uuid[], $5::int8[], $6::text[], $7::text[], $8::text[])
    AS u (schema_name, table_name, pk, version, op, payload, error)
ON CONFLICT (user_id, schema_name, table_name, pk) DO UPDATE
SET attempted_version = excluded.attempted_version, op = excluded.op, payload = excluded.payload, error = excluded.error`

const clearFailuresSQL = `DELETE FROM sync.materialize_failures
WHERE user_id = $1 AND (schema_name, table_name, pk) IN (SELECT * FROM unnest($2::text[], $3::text[], $4::uuid[]))`

// recordFailures writes the failed projections to the failure log, keeping a row's first_seen
// and retry count, and removes the records of rows that have now projected.
func recordFailures(ctx context.Context, tx pgx.Tx, user string, failed []failedProjection, succeeded []rowKey) error {
	batch := &pgx.Batch{}
	if len(succeeded) > 0 {
		schemas, tables, pks := keyArrays(succeeded)
		batch.Queue(clearFailuresSQL, user, schemas, tables, pks)
	}
	if len(failed) > 0 {
		keys := make([]rowKey, len(failed))
		versions, ops, payloads, reasons := make([]int64, len(failed)), make([]string, len(failed)), make([]*string, len(failed)), make([]string, len(failed))
		for i, f := range failed {
			keys[i], versions[i], ops[i], reasons[i] = f.key, f.version, f.op, f.reason
			if f.payload != nil {
				p := string(f.payload)
				payloads[i] = &p
			}
		}
		schemas, tables, pks := keyArrays(keys)
		batch.Queue(recordFailuresSQL, user, schemas, tables, pks, versions, ops, payloads, reasons)
	}
	if batch.Len() == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("record projection failures: %w", err)
	}
	return nil
}

// keyArrays splits row keys into the parallel arrays that unnest takes.
func keyArrays(keys []rowKey) (schemas, tables []string, pks []UUID) {
	schemas, tables, pks = make([]string, len(keys)), make([]string, len(keys)), make([]UUID, len(keys))
	for i, k := range keys {
		schemas[i], tables[i], pks[i] = k.table.Name.Schema, k.table.Name.Table, k.pk
	}
	return schemas, tables, pks
}
