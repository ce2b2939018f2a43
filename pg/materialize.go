package pg

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// projection is one applied change prepared for its business table.
type projection struct {
	key      rowKey
	version  int64
	op       string
	payload  []byte
	serverID int64     // the stream entry of the change, from which a refusal is recorded
	values   []*string // upserts: text values of the group's columns, nil = NULL
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

// refusedReason is the failure recorded for an upsert of a business row another user owns.
const refusedReason = "the business row belongs to another user"

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
		p := &projection{key: a.key(), version: a.version, op: a.op, payload: a.payload, serverID: a.serverID}
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
	raw := make([][]byte, len(t.Columns)) // by column position; the last of duplicated keys wins
	err = eachField(payload, func(key string, value []byte) {
		if i, ok := t.position[key]; ok {
			raw[i] = value
		}
	})
	if err != nil {
		return nil, nil, fmt.Errorf("payload is not a JSON object")
	}
	for i, c := range t.Columns {
		if c.Name == t.PK {
			continue
		}
		if raw[i] == nil {
			if c.NotNull && !c.HasDefault {
				return nil, nil, fmt.Errorf("column %q is NOT NULL but missing from the payload", c.Name)
			}
			continue
		}
		v, err := columnText(c, raw[i])
		if err != nil {
			return nil, nil, err
		}
		columns = append(columns, c.Name)
		values = append(values, v)
	}
	return columns, values, nil
}

// queueProjections queues the projection statements of groups, inside a savepoint when
// isolate, and returns the index range [first, end) of the statements whose failure is the
// data's fault.
//
// Each statement also keeps the failure log: it records the upserts it refuses because another
// user owns the business row (§10.3 #9), and, when clearFailures, removes earlier failure
// records of the rows it writes. So the upload needs no round trip of its own for them.
func (s *Store) queueProjections(p *pipeline, user string, groups []*projectionGroup, clearFailures bool, refused map[rowKey]bool, isolate bool) (first, end int) {
	if len(groups) == 0 {
		return p.len(), p.len()
	}
	if isolate {
		p.exec(`SAVEPOINT materialize`)
	}
	first = p.len()
	for _, g := range groups {
		s.queueProjection(p, user, g, g.rows, clearFailures, refused)
	}
	end = p.len()
	if isolate {
		p.exec(`RELEASE SAVEPOINT materialize`)
	}
	return first, end
}

// recoverProjections is called after a projection statement of queueProjections failed because
// of the data, with the transaction still open: it rolls the projections back and writes them
// row by row, each in its own savepoint, to find and reject exactly the rows that fail.
func (s *Store) recoverProjections(ctx context.Context, c conn, user string, groups []*projectionGroup, clearFailures bool, refused map[rowKey]bool) ([]failedProjection, error) {
	if _, err := c.Exec(ctx, `ROLLBACK TO SAVEPOINT materialize; RELEASE SAVEPOINT materialize`); err != nil {
		return nil, fmt.Errorf("roll back projections: %w", err)
	}
	clear(refused)
	var rejected []failedProjection
	for _, g := range groups {
		for _, p := range g.rows {
			reason, err := s.projectOne(ctx, c, user, g, p, clearFailures, refused)
			if err != nil {
				return nil, err
			}
			if reason != "" {
				rejected = append(rejected, failedProjection{p, reason})
			}
		}
	}
	return rejected, nil
}

// projectOne writes one projection in its own savepoint and returns why it failed, if it did
// because of the data. A refusal is recorded by the statement itself and reported in refused.
func (s *Store) projectOne(ctx context.Context, c conn, user string, g *projectionGroup, p *projection, clearFailures bool, refused map[rowKey]bool) (reason string, err error) {
	var pl pipeline
	pl.exec(`SAVEPOINT projection`)
	s.queueProjection(&pl, user, g, []*projection{p}, clearFailures, refused)
	pl.exec(`RELEASE SAVEPOINT projection`)
	failed, err := pl.send(ctx, c)
	if err == nil {
		return "", nil
	}
	if failed != 1 || !projectionError(err) {
		return "", err
	}
	// Released too: a savepoint survives ROLLBACK TO, and the next row's would nest inside it.
	if _, err := c.Exec(ctx, `ROLLBACK TO SAVEPOINT projection; RELEASE SAVEPOINT projection`); err != nil {
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

// queueProjection queues the statement writing rows of g. The upserts it refuses are added to
// refused (nil: not wanted).
func (s *Store) queueProjection(p *pipeline, user string, g *projectionGroup, rows []*projection, clearFailures bool, refused map[rowKey]bool) {
	pks, serverIDs := make([]UUID, len(rows)), make([]int64, len(rows))
	for i, r := range rows {
		pks[i], serverIDs[i] = r.key.pk, r.serverID
	}
	name := g.table.Name
	sql := s.projectionSQL(g, clearFailures)
	if g.delete {
		p.exec(sql, user, name.Schema, name.Table, pks)
		return
	}
	args := []any{user, name.Schema, name.Table, pks, serverIDs}
	for c := range g.columns {
		values := make([]*string, len(rows))
		for i, r := range rows {
			values[i] = r.values[c]
		}
		args = append(args, values)
	}
	p.query(func(rows pgx.Rows) error {
		var pk UUID
		_, err := pgx.ForEachRow(rows, []any{&pk}, func() error {
			if refused != nil {
				refused[rowKey{table: g.table, pk: pk}] = true
			}
			return nil
		})
		return err
	}, sql, args...)
}

// projectionSQL returns the statement for g's shape, built once and cached. Parameters: $1 user,
// $2 schema, $3 table, $4 primary keys; for upserts then $5 the changes' server ids and one text
// array per column.
//
// An upsert first claims each row for the user in sync.business_owners; rows another user
// already owns are not written but recorded in the failure log (from their stream entries) and
// returned. A delete removes only rows the user owns, and releases them. With clearFailures,
// both also remove earlier failure records of the rows they handled.
func (s *Store) projectionSQL(g *projectionGroup, clearFailures bool) string {
	shape := fmt.Sprintf("%s|%t|%t|%s", g.table.Name, g.delete, clearFailures, strings.Join(g.columns, ","))
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
    RETURNING pk)`
		if clearFailures {
			sql += `,
cleared AS (
    DELETE FROM sync.materialize_failures
    WHERE user_id = $1 AND schema_name = $2 AND table_name = $3 AND pk = ANY ($4::uuid[]))`
		}
		sql += `
DELETE FROM ` + t.Ident() + ` t USING released r WHERE t.` + pk + ` = r.pk`
	} else {
		unnestArgs, inputCols, selectCols, updates := []string{"$4::uuid[]", "$5::int8[]"}, []string{"pk", "server_id"}, []string{"i.pk"}, []string{}
		for i, name := range g.columns {
			col, _ := t.Column(name)
			ident := pgx.Identifier{name}.Sanitize()
			unnestArgs = append(unnestArgs, fmt.Sprintf("$%d::text[]", i+6))
			inputCols = append(inputCols, fmt.Sprintf("c%d", i))
			selectCols = append(selectCols, fmt.Sprintf("i.c%d::%s", i, castTarget(col)))
			updates = append(updates, ident+" = excluded."+ident)
		}
		if len(updates) == 0 { // nothing to change, but the row must still count as written
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
    WHERE o.schema_name = $2 AND o.table_name = $3 AND o.user_id = $1),
written AS (
    INSERT INTO ` + t.Ident() + ` AS t (` + strings.Join(targetCols, ", ") + `)
    SELECT ` + strings.Join(selectCols, ", ") + ` FROM input i JOIN mine USING (pk) ORDER BY i.pk
    ON CONFLICT (` + pk + `) DO UPDATE SET ` + strings.Join(updates, ", ") + `
    RETURNING t.` + pk + ` AS pk),
refused AS (
    INSERT INTO sync.materialize_failures AS f
        (user_id, schema_name, table_name, pk, attempted_version, op, payload, error)
    SELECT $1, $2, $3, i.pk, c.server_version, c.op, c.payload, '` + refusedReason + `'
    FROM input i JOIN sync.changes c ON c.user_id = $1 AND c.server_id = i.server_id
    WHERE NOT EXISTS (SELECT 1 FROM mine m WHERE m.pk = i.pk)
    ON CONFLICT (user_id, schema_name, table_name, pk) DO UPDATE
    SET attempted_version = excluded.attempted_version, op = excluded.op, payload = excluded.payload, error = excluded.error
    RETURNING pk)`
		if clearFailures {
			sql += `,
cleared AS (
    DELETE FROM sync.materialize_failures f USING written w
    WHERE f.user_id = $1 AND f.schema_name = $2 AND f.table_name = $3 AND f.pk = w.pk)`
		}
		sql += `
SELECT pk FROM refused`
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

// queueRecordFailures queues the recording of failed projections in the failure log, keeping a
// row's first_seen and retry count.
func queueRecordFailures(p *pipeline, user string, failed []failedProjection) {
	if len(failed) == 0 {
		return
	}
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
	p.exec(recordFailuresSQL, user, schemas, tables, pks, versions, ops, payloads, reasons)
}

// keyArrays splits row keys into the parallel arrays that unnest takes.
func keyArrays(keys []rowKey) (schemas, tables []string, pks []UUID) {
	schemas, tables, pks = make([]string, len(keys)), make([]string, len(keys)), make([]UUID, len(keys))
	for i, k := range keys {
		schemas[i], tables[i], pks[i] = k.table.Name.Schema, k.table.Name.Table, k.pk
	}
	return schemas, tables, pks
}
