package pg

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// namePattern is the protocol's rule for schema and table names (docs/protocol-v0.md §2).
var namePattern = regexp.MustCompile(`^[a-z0-9_]+$`)

// validName reports whether s is a legal schema or table name.
func validName(s string) bool { return namePattern.MatchString(s) }

// TableName is a schema-qualified table name, lower case.
type TableName struct {
	Schema string
	Table  string
}

// String returns the name as schema.table.
func (n TableName) String() string { return n.Schema + "." + n.Table }

// ParseTableName reads "schema.table", or "table" in schema public, as a registered table is
// configured. Both parts are trimmed, lower-cased and must match ^[a-z0-9_]+$.
func ParseTableName(s string) (TableName, error) {
	schema, table, ok := strings.Cut(strings.ToLower(strings.TrimSpace(s)), ".")
	if !ok {
		schema, table = "public", schema
	}
	n := TableName{Schema: strings.TrimSpace(schema), Table: strings.TrimSpace(table)}
	if !validName(n.Schema) || !validName(n.Table) {
		return TableName{}, fmt.Errorf("table name %q: want schema.table with names matching ^[a-z0-9_]+$", s)
	}
	return n, nil
}

// Column is one column of a registered table, as the catalogue describes it.
type Column struct {
	Name       string
	Type       string // the base type's name in pg_type, e.g. uuid, text, int8, timestamptz, _text
	SQLType    string // the column's type as SQL spells it, for casts: text, numeric(10,2), business.mood
	NotNull    bool
	HasDefault bool // a default or an identity: the column may be left out of an INSERT
}

// ForeignKey is a single-column foreign key from a registered table to the primary key of a
// registered table (possibly itself). Other foreign keys are left to the database.
type ForeignKey struct {
	Column string
	Parent *Table
}

// Table is a registered business table: a UUID primary key, its columns and its foreign keys
// to other registered tables.
type Table struct {
	Name        TableName
	PK          string // the primary key column, of type uuid
	Columns     []Column
	ForeignKeys []ForeignKey

	rank     int               // position in parent-first order
	ident    string            // quoted "schema"."table", safe to splice into SQL
	column   map[string]Column // Columns by name
	position map[string]int    // index in Columns by name
}

// Ident is the table's quoted, schema-qualified identifier, safe to splice into SQL.
func (t *Table) Ident() string { return t.ident }

// Column returns the column called name.
func (t *Table) Column(name string) (Column, bool) {
	c, ok := t.column[name]
	return c, ok
}

// Registry is the set of registered tables, discovered once at start-up.
type Registry struct {
	tables     map[TableName]*Table
	ordered    []*Table // parents before children
	deferrable bool     // some constraint on or referencing a registered table is deferrable
}

// ErrTableNotUsable reports a configured table that cannot be synced: it is missing, or its
// primary key is not a single uuid column.
var ErrTableNotUsable = errors.New("table cannot be synced")

const columnsSQL = `
SELECT a.attname, t.typname, format_type(a.atttypid, a.atttypmod), a.attnotnull, (a.atthasdef OR a.attidentity <> '')
FROM pg_attribute a
JOIN pg_type t0 ON t0.oid = a.atttypid
JOIN pg_type t ON t.oid = CASE WHEN t0.typtype = 'd' THEN t0.typbasetype ELSE t0.oid END
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
ORDER BY a.attnum`

const primaryKeySQL = `
SELECT a.attname, t.typname
FROM pg_index i
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
JOIN pg_type t ON t.oid = a.atttypid
WHERE i.indrelid = $1 AND i.indisprimary`

const foreignKeysSQL = `
SELECT c.conrelid, a.attname, c.confrelid
FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
WHERE c.contype = 'f' AND cardinality(c.conkey) = 1 AND c.conrelid = ANY ($1) AND c.confrelid = ANY ($1)
  AND c.confkey[1] = (SELECT i.indkey[0] FROM pg_index i WHERE i.indrelid = c.confrelid AND i.indisprimary)
ORDER BY c.conname`

const deferrableSQL = `SELECT EXISTS (SELECT 1 FROM pg_constraint
WHERE (conrelid = ANY ($1) OR confrelid = ANY ($1)) AND condeferrable)`

// Discover reads the given tables from the catalogue. Each must exist and have a single-column
// uuid primary key. Columns and foreign keys are taken as they are; nothing is altered.
func Discover(ctx context.Context, q Querier, names []TableName) (*Registry, error) {
	r := &Registry{tables: make(map[TableName]*Table, len(names))}
	byOID := map[uint32]*Table{}
	var oids []uint32
	for _, n := range names {
		if _, dup := r.tables[n]; dup {
			continue
		}
		t, oid, err := discoverTable(ctx, q, n)
		if err != nil {
			return nil, err
		}
		r.tables[n] = t
		byOID[oid] = t
		oids = append(oids, oid)
	}
	rows, err := q.Query(ctx, foreignKeysSQL, oids)
	if err != nil {
		return nil, fmt.Errorf("read foreign keys: %w", err)
	}
	var child, parent uint32
	var column string
	_, err = pgx.ForEachRow(rows, []any{&child, &column, &parent}, func() error {
		t := byOID[child]
		t.ForeignKeys = append(t.ForeignKeys, ForeignKey{Column: column, Parent: byOID[parent]})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read foreign keys: %w", err)
	}
	if err := q.QueryRow(ctx, deferrableSQL, oids).Scan(&r.deferrable); err != nil {
		return nil, fmt.Errorf("read constraint deferrability: %w", err)
	}
	r.ordered = parentsFirst(r.tables)
	for i, t := range r.ordered {
		t.rank = i
	}
	return r, nil
}

// discoverTable reads one table's columns and checks its primary key.
func discoverTable(ctx context.Context, q Querier, n TableName) (*Table, uint32, error) {
	ident := pgx.Identifier{n.Schema, n.Table}.Sanitize()
	var oid uint32
	err := q.QueryRow(ctx, `SELECT to_regclass($1)::oid`, ident).Scan(&oid)
	if err != nil || oid == 0 {
		return nil, 0, fmt.Errorf("%w: %s does not exist", ErrTableNotUsable, n)
	}
	rows, err := q.Query(ctx, primaryKeySQL, oid)
	if err != nil {
		return nil, 0, fmt.Errorf("read primary key of %s: %w", n, err)
	}
	type keyColumn struct{ Name, Type string }
	keys, err := pgx.CollectRows(rows, pgx.RowToStructByPos[keyColumn])
	if err != nil {
		return nil, 0, fmt.Errorf("read primary key of %s: %w", n, err)
	}
	if len(keys) != 1 || keys[0].Type != "uuid" {
		return nil, 0, fmt.Errorf("%w: %s needs a primary key of one uuid column", ErrTableNotUsable, n)
	}
	rows, err = q.Query(ctx, columnsSQL, oid)
	if err != nil {
		return nil, 0, fmt.Errorf("read columns of %s: %w", n, err)
	}
	columns, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Column])
	if err != nil {
		return nil, 0, fmt.Errorf("read columns of %s: %w", n, err)
	}
	t := &Table{Name: n, PK: keys[0].Name, Columns: columns, ident: ident,
		column: make(map[string]Column, len(columns)), position: make(map[string]int, len(columns))}
	for i, c := range columns {
		t.column[c.Name], t.position[c.Name] = c, i
	}
	return t, oid, nil
}

// parentsFirst orders tables so that a table comes after every registered table it references,
// by name where the foreign keys leave a choice. Self-references are ignored; tables on a
// reference cycle keep name order after all others.
func parentsFirst(tables map[TableName]*Table) []*Table {
	pending := make([]*Table, 0, len(tables))
	for _, t := range tables {
		pending = append(pending, t)
	}
	sort.Slice(pending, func(i, j int) bool { return pending[i].Name.String() < pending[j].Name.String() })
	placed := map[*Table]bool{}
	var out []*Table
	for len(pending) > 0 {
		var next []*Table
		for _, t := range pending {
			ready := true
			for _, fk := range t.ForeignKeys {
				if fk.Parent != t && !placed[fk.Parent] {
					ready = false
				}
			}
			if ready {
				out = append(out, t)
			} else {
				next = append(next, t)
			}
		}
		if len(next) == len(pending) { // a cycle: nothing more can be ordered by its references
			out = append(out, next...)
			break
		}
		for _, t := range out {
			placed[t] = true
		}
		pending = next
	}
	return out
}

// Lookup returns the registered table schema.table.
func (r *Registry) Lookup(schema, table string) (*Table, bool) {
	t, ok := r.tables[TableName{Schema: schema, Table: table}]
	return t, ok
}

// Tables returns the registered tables, parents before children.
func (r *Registry) Tables() []*Table { return r.ordered }
