package pgv1

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pulsesync/pulsesync/internal/jcs"
	"github.com/pulsesync/pulsesync/pgv1/wire"
)

// scopeColumn is the hidden owner column every registered table carries: the user id. It never
// appears on the wire (docs/protocol-v1.md §1.6).
const scopeColumn = "_sync_scope_id"

// validIdentifier reports whether s fits the grammar of registered schema, table and column
// names, [a-z_][a-z0-9_]*: lowercase, so the wire names equal PostgreSQL's, and ASCII, so their
// byte order is JCS's UTF-16 order. A byte loop, since every pushed row's names are checked.
func validIdentifier[T string | []byte](s T) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || (c >= 'a' && c <= 'z') || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return false
	}
	return true
}

// TableSpec names a registered v1 table and its sync key column ("" = the primary key's one
// column besides _sync_scope_id).
type TableSpec struct {
	Schema, Table, KeyColumn string
}

// Registry is the set of registered v1 tables with the type of every column, discovered from
// the catalogue. It is immutable once built.
type Registry struct {
	tables []*table // spec order: the order snapshots list tables in
	byName map[string]*table
}

// table is one registered table.
type table struct {
	schema, name string
	qname        string   // schema.table
	ident        string   // quoted "schema"."table"
	key          *column  // the sync key column
	columns      []column // visible columns, sorted by name (JCS member order)
	byName       map[string]*column
	renderSQL    string // reads the after-images of the rows a commit captured (renderQuery)
}

// column is one visible column of a registered table.
type column struct {
	name      string
	ident     string    // quoted
	kind      wire.Kind // how its values travel
	sqlType   string    // format_type: the type values are cast to before applying
	generated bool      // readable, never written (docs/protocol-v1.md §6.1 M1)
	jsonName  []byte    // "name": as a canonical member prefix
}

// qualified is the table's "schema.table" name.
func (t *table) qualified() string { return t.qname }

// lookup returns the registered table schema.name, or nil.
func (r *Registry) lookup(schema, name string) *table { return r.byName[schema+"."+name] }

// order returns the registered tables' schemas and names in registration order, the order
// snapshots list them in.
func (r *Registry) order() (schemas, tables []string) {
	for _, t := range r.tables {
		schemas = append(schemas, t.schema)
		tables = append(tables, t.name)
	}
	return schemas, tables
}

// Specs returns the registered tables with their key columns, sorted by schema.table, as
// capabilities advertise them (docs/protocol-v1.md §3.1).
func (r *Registry) Specs() []TableSpec {
	specs := make([]TableSpec, 0, len(r.tables))
	for _, t := range r.tables {
		specs = append(specs, TableSpec{Schema: t.schema, Table: t.name, KeyColumn: t.key.name})
	}
	slices.SortFunc(specs, func(a, b TableSpec) int {
		return cmp.Or(cmp.Compare(a.Schema, b.Schema), cmp.Compare(a.Table, b.Table))
	})
	return specs
}

// catalogSQL reads every column of the named tables with its base type (domains resolved for
// the wire kind, kept for casts), whether it is generated, and whether the table's primary key
// holds it, together with the primary key's width. A table that does not exist yields one row
// with a NULL column name.
const catalogSQL = `
SELECT s.ord::int, c.oid IS NOT NULL, a.attname, coalesce(bt.typname, t.typname),
       format_type(a.atttypid, a.atttypmod), a.attgenerated <> '', a.attnotnull,
       coalesce(a.attnum = ANY (pk.conkey), false), coalesce(cardinality(pk.conkey), 0)
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS s (schema_name, table_name, ord)
LEFT JOIN pg_namespace n ON n.nspname = s.schema_name
LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.table_name AND c.relkind IN ('r', 'p')
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
LEFT JOIN pg_constraint pk ON pk.conrelid = c.oid AND pk.contype = 'p'
ORDER BY s.ord, a.attnum`

// Discover reads the registered tables' columns from the catalogue, checks that v1 can sync
// them, and installs their capture triggers (capture.go). Names are trimmed and lowercased.
// A table is refused, with an error naming it, when it does not exist, lacks _sync_scope_id,
// has a column whose type v1 clients cannot decode, has a name outside [a-z_][a-z0-9_]*, or
// has no usable key: the given key column, or else the primary key's one column besides
// _sync_scope_id, which must be uuid or text and not generated.
func Discover(ctx context.Context, pool *pgxpool.Pool, specs []TableSpec) (*Registry, error) {
	if len(specs) == 0 {
		return nil, fmt.Errorf("discover v1 tables: no table registered")
	}
	specs = slices.Clone(specs) // normalised below; the caller's slice stays as given
	schemas := make([]string, len(specs))
	names := make([]string, len(specs))
	for i, sp := range specs {
		schemas[i] = strings.ToLower(strings.TrimSpace(sp.Schema))
		names[i] = strings.ToLower(strings.TrimSpace(sp.Table))
		specs[i].KeyColumn = strings.ToLower(strings.TrimSpace(sp.KeyColumn))
	}
	rows, err := pool.Query(ctx, catalogSQL, schemas, names)
	if err != nil {
		return nil, fmt.Errorf("read v1 tables from the catalogue: %w", err)
	}
	type attr struct {
		exists             bool
		name, typ, sqlType *string
		generated, notNull bool
		inPK               bool
		pkWidth            int32
	}
	attrs := make([][]attr, len(specs))
	for rows.Next() {
		var ord int32
		var a attr
		var generated, notNull *bool
		if err := rows.Scan(&ord, &a.exists, &a.name, &a.typ, &a.sqlType, &generated, &notNull, &a.inPK, &a.pkWidth); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read v1 tables from the catalogue: %w", err)
		}
		a.generated = generated != nil && *generated
		a.notNull = notNull != nil && *notNull
		attrs[ord-1] = append(attrs[ord-1], a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read v1 tables from the catalogue: %w", err)
	}

	reg := &Registry{byName: map[string]*table{}}
	for i := range specs {
		t := &table{schema: schemas[i], name: names[i], qname: schemas[i] + "." + names[i], byName: map[string]*column{}}
		q := t.qualified()
		if !validIdentifier(t.schema) || !validIdentifier(t.name) {
			return nil, fmt.Errorf("v1 table %q: names must match [a-z_][a-z0-9_]*", q)
		}
		if reg.byName[q] != nil {
			return nil, fmt.Errorf("v1 table %s is registered twice", q)
		}
		if len(attrs[i]) == 0 || !attrs[i][0].exists {
			return nil, fmt.Errorf("v1 table %s does not exist", q)
		}
		t.ident = pgx.Identifier{t.schema, t.name}.Sanitize()
		var scoped bool
		var pkCols []string
		for _, a := range attrs[i] {
			name := *a.name
			if a.inPK {
				pkCols = append(pkCols, name)
			}
			if name == scopeColumn {
				scoped = a.notNull
				continue
			}
			if !validIdentifier(name) {
				return nil, fmt.Errorf("%s column %q: names must match [a-z_][a-z0-9_]*", q, name)
			}
			kind, ok := wire.KindOf(*a.typ)
			if !ok {
				return nil, fmt.Errorf("%s column %s has type %s, which v1 clients cannot decode", q, name, *a.sqlType)
			}
			t.columns = append(t.columns, column{
				name: name, ident: pgx.Identifier{name}.Sanitize(), kind: kind, sqlType: *a.sqlType,
				generated: a.generated, jsonName: append(jcs.AppendString(nil, name), ':'),
			})
		}
		if !scoped {
			return nil, fmt.Errorf("%s needs a column %s text NOT NULL holding the owning user", q, scopeColumn)
		}
		slices.SortFunc(t.columns, func(a, b column) int { return strings.Compare(a.name, b.name) })
		for j := range t.columns {
			t.byName[t.columns[j].name] = &t.columns[j]
		}
		keyName := specs[i].KeyColumn
		if keyName == "" {
			if len(pkCols) != 2 || !slices.Contains(pkCols, scopeColumn) {
				return nil, fmt.Errorf("%s: name its key column, or give it a primary key (%s, <key column>)", q, scopeColumn)
			}
			keyName = pkCols[0]
			if keyName == scopeColumn {
				keyName = pkCols[1]
			}
		}
		t.key = t.byName[keyName]
		switch {
		case t.key == nil:
			return nil, fmt.Errorf("%s has no key column %q", q, keyName)
		case t.key.kind != wire.KindUUID && t.key.kind != wire.KindText:
			return nil, fmt.Errorf("%s key column %s has type %s; v1 keys are uuid or text", q, keyName, t.key.sqlType)
		case t.key.generated:
			return nil, fmt.Errorf("%s key column %s is generated; v1 keys come from the client", q, keyName)
		}
		t.renderSQL = t.renderQuery()
		reg.tables = append(reg.tables, t)
		reg.byName[q] = t
	}
	if err := installCapture(ctx, pool, reg); err != nil {
		return nil, err
	}
	return reg, nil
}

// writable returns the columns an INSERT or UPDATE may set: all but the generated ones.
func (t *table) writable() []column {
	out := make([]column, 0, len(t.columns))
	for _, c := range t.columns {
		if !c.generated {
			out = append(out, c)
		}
	}
	return out
}

// recordDef is the column definition list of a jsonb_to_record(set) call over cols: each
// column with its real type, so PostgreSQL casts the values exactly as a write would.
func (t *table) recordDef(cols []column) string {
	var b strings.Builder
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.ident + " " + c.sqlType)
	}
	return b.String()
}

// renderQuery returns the statement that reads, for the wire, the current after-image of every
// row of the table that the transaction's captured effects name and that still exists ($1 the
// user, $2 the table's qualified name): the key's text, then every visible column in payload
// order through wire.RenderSQL. Each captured key is looked up on its own through the primary
// key (scope, key), so the cost follows the bundle's size whatever the user's row count and the
// table's statistics: a semi-join may be planned as a scan of all the user's rows (it was, at
// 1.4 ms per 100 rows of the user on a table not yet analysed).
func (t *table) renderQuery() string {
	var b strings.Builder
	b.WriteString("SELECT r.* FROM (SELECT DISTINCT c.key_value::" + t.key.sqlType + " AS key FROM pg_temp." +
		captureTable + " c WHERE c.tbl = $2) AS k, LATERAL (SELECT " + t.key.ident + "::text")
	for _, c := range t.columns {
		b.WriteString(", " + wire.RenderSQL(c.kind, c.ident))
	}
	fmt.Fprintf(&b, " FROM %s WHERE %s = $1 AND %s = k.key LIMIT 1) AS r", t.ident, scopeColumn, t.key.ident)
	return b.String()
}

// applySQL returns the statement that applies the staged rows of one session between two
// ordinals ($1 the user, $2 the push_id, $3 and $4 the first and last ordinal) that share op
// and the apply columns (comma-separated; empty for DELETE). Values are cast by
// jsonb_to_record to the columns' real types; every write is restricted to the user's scope.
func (t *table) applySQL(op, columns string) string {
	const staged = "sync_v1.push_rows pr"
	const inRange = "pr.push_id = $2 AND pr.row_ordinal BETWEEN $3 AND $4"
	if op == "DELETE" {
		return fmt.Sprintf("DELETE FROM %s AS t USING %s WHERE %s AND t.%s = $1 AND t.%s = pr.key_value::%s",
			t.ident, staged, inRange, scopeColumn, t.key.ident, t.key.sqlType)
	}
	var cols []column
	for _, name := range strings.Split(columns, ",") {
		cols = append(cols, *t.byName[name])
	}
	def := t.recordDef(cols)
	if op == "INSERT" {
		var names, values []string
		for _, c := range cols {
			names = append(names, c.ident)
			values = append(values, "x."+c.ident)
		}
		return fmt.Sprintf("INSERT INTO %s (%s, %s) SELECT $1, %s FROM %s, jsonb_to_record(pr.apply_payload) AS x (%s) WHERE %s ORDER BY pr.row_ordinal",
			t.ident, scopeColumn, strings.Join(names, ", "), strings.Join(values, ", "), staged, def, inRange)
	}
	var sets []string
	for _, c := range cols {
		if c.name != t.key.name {
			sets = append(sets, c.ident+" = x."+c.ident)
		}
	}
	if len(sets) == 0 { // a payload of the key alone still touches the row
		sets = append(sets, t.key.ident+" = x."+t.key.ident)
	}
	return fmt.Sprintf("UPDATE %s AS t SET %s FROM %s, jsonb_to_record(pr.apply_payload) AS x (%s) WHERE %s AND t.%s = $1 AND t.%s = x.%s",
		t.ident, strings.Join(sets, ", "), staged, def, inRange, scopeColumn, t.key.ident, t.key.ident)
}
