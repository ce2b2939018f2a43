package wire

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pulsesync/pulsesync/internal/jcs"
	"github.com/pulsesync/pulsesync/internal/pgtest"
)

// connect opens a connection to a fresh database with the session settings the v1 store uses
// (TimeZone UTC).
func connect(t *testing.T) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(pgtest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["timezone"] = "UTC"
	conn, err := pgx.ConnectConfig(t.Context(), cfg)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// roundTrip is one value sent by a client into a column of sqlType, and the wire token the
// server serves for it afterwards.
type roundTrip struct {
	sqlType string
	raw     string
	wire    string
}

// TestRoundTrip_ThroughPostgreSQL writes every accepted value of docs/protocol-v1.md §4.6 (and one
// of each other kind) through RequestValue and jsonb_populate_record into a real table, reads it
// back through RenderSQL and AppendWireValue, and checks the served token.
func TestRoundTrip_ThroughPostgreSQL(t *testing.T) {
	cases := []roundTrip{
		{"int2", `"-32768"`, `"-32768"`},
		{"int2", `"32767"`, `"32767"`},
		{"int4", `"-2147483648"`, `"-2147483648"`},
		{"int4", `"2147483647"`, `"2147483647"`},
		{"int8", `"-9223372036854775808"`, `"-9223372036854775808"`},
		{"int8", `"9223372036854775807"`, `"9223372036854775807"`},
		{"int8", `"9007199254740993"`, `"9007199254740993"`},
		{"bigserial", `"7"`, `"7"`},
		{"numeric(30,9)", `"1234567890.123456789"`, `"1234567890.123456789"`},
		{"numeric(10,2)", `"1.25e3"`, `"1250.00"`},
		{"decimal(8,4)", `"12.3"`, `"12.3000"`},
		{"numeric", `"-0.5"`, `"-0.5"`},
		{"numeric", `"1E-5"`, `"0.00001"`},
		{"numeric", `"1e+1000"`, `"1` + strings.Repeat("0", 1000) + `"`},
		{"numeric", `"-1e-1000"`, `"-0.` + strings.Repeat("0", 999) + `1"`},
		{"float8", `"5e-324"`, `"5e-324"`},
		{"float8", `"1.7976931348623157e+308"`, `"1.7976931348623157e+308"`},
		{"float8", `"-1.7976931348623157e+308"`, `"-1.7976931348623157e+308"`},
		{"float8", `"100000000000000000000"`, `"100000000000000000000"`},
		{"float8", `"1e+21"`, `"1e+21"`},
		{"float8", `"0.000001"`, `"0.000001"`},
		{"float8", `"1e-7"`, `"1e-7"`},
		{"float8", `"0"`, `"0"`},
		{"double precision", `"-0.1"`, `"-0.1"`},
		{"float4", `"1.2345678901234567"`, `"1.2345678806304932"`},
		{"real", `"1"`, `"1"`},
		{"float4", `"1e-45"`, `"1.401298464324817e-45"`},
		{"float4", `"3.4028234663852886e+38"`, `"3.4028234663852886e+38"`},
		{"bool", `"0"`, `false`},
		{"bool", `"1"`, `true`},
		{"bool", `true`, `true`},
		{"bool", `false`, `false`},
		{"bytea", `"AAEC/w=="`, `"AAEC/w=="`},
		{"bytea", `""`, `""`},
		{"bytea", `"` + strings.Repeat("QUJD", 50) + `"`, `"` + strings.Repeat("QUJD", 50) + `"`},
		{"uuid", `"6F0D3C4E-8F0B-4C1E-9A57-2F1E3B7C9D01"`, `"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"`},
		{"uuid", `"{6f0d3c4e8f0b4c1e9a572f1e3b7c9d01}"`, `"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"`},
		{"uuid", `"6f0d-3c4e-8f0b-4c1e-9a57-2f1e-3b7c-9d01"`, `"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"`},
		{"text", `"Tab\there \"quoted\" \u00e9 € 😀 </>"`, `"Tab\there \"quoted\" é € 😀 </>"`},
		{"text", `"\u0001\u001f\\"`, `"\u0001\u001f\\"`},
		{"varchar(10)", `"ann"`, `"ann"`},
		{"char(4)", `"ab"`, `"ab  "`},
		{"date", `"2026-07-23"`, `"2026-07-23"`},
		{"time", `"09:45"`, `"09:45:00"`},
		{"timetz", `"09:45:00.5+02"`, `"09:45:00.5+02"`},
		{"timestamp", `"2026-07-23 09:45:00.51234"`, `"2026-07-23T09:45:00.51234"`},
		{"timestamptz", `"2026-07-23T09:45:00.51234Z"`, `"2026-07-23T09:45:00.51234+00:00"`},
		{"timestamptz", `"2026-07-23T11:45:00+02:00"`, `"2026-07-23T09:45:00+00:00"`},
	}
	// Every kind once more as null.
	for _, name := range []string{"int2", "int4", "int8", "numeric", "float4", "float8", "bool", "bytea", "uuid",
		"text", "bpchar", "date", "time", "timetz", "timestamp", "timestamptz"} {
		cases = append(cases, roundTrip{name, `null`, `null`})
	}

	conn := connect(t)
	ctx := t.Context()
	cols := make([]string, len(cases))
	for i, c := range cases {
		cols[i] = "c" + strconv.Itoa(i) + " " + c.sqlType
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE rt ("+strings.Join(cols, ", ")+")"); err != nil {
		t.Fatal(err)
	}
	kinds := columnKinds(t, conn, "rt")

	// One jsonb object holds the whole row, as the store hands a row to PostgreSQL.
	row := make(map[string]json.RawMessage, len(cases))
	for i, c := range cases {
		name := "c" + strconv.Itoa(i)
		v, err := RequestValue(kinds[name], []byte(c.raw))
		if err != nil {
			t.Fatalf("%s %s: RequestValue(%s): %v", name, c.sqlType, c.raw, err)
		}
		row[name] = v.(json.RawMessage)
	}
	obj, err := json.Marshal(row)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO rt SELECT * FROM jsonb_populate_record(null::rt, $1::jsonb)", obj); err != nil {
		t.Fatalf("insert: %v", err)
	}

	exprs := make([]string, len(cases))
	for i := range cases {
		name := "c" + strconv.Itoa(i)
		exprs[i] = RenderSQL(kinds[name], pgx.Identifier{name}.Sanitize())
	}
	texts := make([]*string, len(cases))
	dest := make([]any, len(cases))
	for i := range texts {
		dest[i] = &texts[i]
	}
	if err := conn.QueryRow(ctx, "SELECT "+strings.Join(exprs, ", ")+" FROM rt").Scan(dest...); err != nil {
		t.Fatalf("read back: %v", err)
	}
	for i, c := range cases {
		name := "c" + strconv.Itoa(i)
		text := ""
		if texts[i] != nil {
			text = *texts[i]
		}
		got := AppendWireValue(nil, kinds[name], text, texts[i] == nil)
		if string(got) != c.wire {
			t.Errorf("%s %s: sent %s, served %s, want %s", name, c.sqlType, c.raw, got, c.wire)
		}
		if canon, err := jcs.Canonicalize(got); err != nil || string(canon) != string(got) {
			t.Errorf("%s %s: served token %s is not canonical JSON (%s, %v)", name, c.sqlType, got, canon, err)
		}
	}
}

// columnKinds maps each column of table to its Kind, as the store discovers them.
func columnKinds(t *testing.T, conn *pgx.Conn, table string) map[string]Kind {
	t.Helper()
	const q = `SELECT a.attname, ty.typname FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid
		WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped`
	rows, err := conn.Query(t.Context(), q, table)
	if err != nil {
		t.Fatal(err)
	}
	kinds := make(map[string]Kind)
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			t.Fatal(err)
		}
		k, ok := KindOf(typ)
		if !ok {
			t.Fatalf("column %s: type %s unsupported", name, typ)
		}
		kinds[name] = k
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return kinds
}

// TestRangeRefusals_AgreeWithPostgreSQL: the values RequestValue refuses as out_of_range are
// refused by PostgreSQL's own input functions too, so the check only moves the refusal earlier.
func TestRangeRefusals_AgreeWithPostgreSQL(t *testing.T) {
	cases := []struct{ sqlType, raw string }{
		{"int2", `"32768"`},
		{"int2", `"-32769"`},
		{"int4", `"2147483648"`},
		{"int8", `"9223372036854775808"`},
		{"float4", `"1e+39"`},
		{"float4", `"-3.5e+38"`},
		{"float4", `"1e-46"`},
	}
	conn := connect(t)
	for _, c := range cases {
		k, _ := KindOf(c.sqlType)
		_, err := RequestValue(k, []byte(c.raw))
		var ve *ValueError
		if !errors.As(err, &ve) || ve.Category != CategoryOutOfRange {
			t.Errorf("RequestValue(%s, %s) = %v; want out_of_range", c.sqlType, c.raw, err)
		}
		text, _ := stringText([]byte(c.raw))
		var out string
		err = conn.QueryRow(t.Context(), "SELECT $1::text::"+c.sqlType+"::text", string(text)).Scan(&out)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || !strings.HasPrefix(pgErr.Code, "22") {
			t.Errorf("PostgreSQL reads %s %s as %q, %v; want a data exception", c.sqlType, c.raw, out, err)
		}
	}
}

// TestVectorB_FromVectorA_ThroughPostgreSQL replays the story of docs/protocol-v1.md §4.5: the
// payload of vector A, pushed into business.numeric_values, is served as the payload of vector B,
// and the two hashes are the vectors' hashes.
func TestVectorB_FromVectorA_ThroughPostgreSQL(t *testing.T) {
	conn := connect(t)
	ctx := t.Context()
	const ddl = `CREATE SCHEMA business;
		CREATE TABLE business.numeric_values (id text PRIMARY KEY, amount numeric(30,10), count int4,
			enabled bool, large_count int8, ratio float4, score float8, small_count int2)`
	if _, err := conn.Exec(ctx, ddl); err != nil {
		t.Fatal(err)
	}
	kinds := columnKinds(t, conn, "business.numeric_values")

	sent := []byte(`{"small_count":"-32768","score":"5e-324","ratio":"1.2345678901234567","large_count":"9007199254740993",
		"id":"n-1","enabled":"1","count":"2147483647","amount":"1234567890.123456789"}`)
	payload, err := jcs.Canonicalize(sent)
	if err != nil {
		t.Fatal(err)
	}
	key := CanonicalKey("id", "n-1")
	request := RequestHash([]HashRow{{Schema: "business", Table: "numeric_values", Key: key, Op: "INSERT", Version: 0, Payload: payload}})
	if request != "ce9f4105cdda62a7705ef32476ebb3b3737fb44866a4bf4eedfeaaa571eb443a" {
		t.Fatalf("request hash = %s, want vector A's", request)
	}

	var values map[string]json.RawMessage
	if err := json.Unmarshal(payload, &values); err != nil {
		t.Fatal(err)
	}
	for name, raw := range values {
		v, err := RequestValue(kinds[name], raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		values[name] = v.(json.RawMessage)
	}
	obj, _ := json.Marshal(values)
	if _, err := conn.Exec(ctx, `INSERT INTO business.numeric_values
		SELECT * FROM jsonb_populate_record(null::business.numeric_values, $1::jsonb)`, obj); err != nil {
		t.Fatalf("insert: %v", err)
	}

	names := make([]string, 0, len(kinds))
	for name := range kinds {
		names = append(names, name)
	}
	slices.Sort(names) // ASCII names: byte order is the canonical member order
	exprs := make([]string, len(names))
	for i, name := range names {
		exprs[i] = RenderSQL(kinds[name], pgx.Identifier{name}.Sanitize())
	}
	texts := make([]*string, len(names))
	dest := make([]any, len(names))
	for i := range texts {
		dest[i] = &texts[i]
	}
	if err := conn.QueryRow(ctx, "SELECT "+strings.Join(exprs, ", ")+" FROM business.numeric_values").Scan(dest...); err != nil {
		t.Fatal(err)
	}
	wire := []byte{'{'}
	for i, name := range names {
		if i > 0 {
			wire = append(wire, ',')
		}
		wire = jcs.AppendString(wire, name)
		wire = append(wire, ':')
		wire = AppendWireValue(wire, kinds[name], *texts[i], false)
	}
	wire = append(wire, '}')

	hash, size := BundleHash([]HashRow{{Schema: "business", Table: "numeric_values", Key: key, Op: "INSERT", Version: 1, Payload: wire}})
	if hash != "92fe0879f22de1e60f1bec5655f94cc641389e2ba5624666402a2a5cdd7150e3" || size != 311 {
		t.Fatalf("bundle hash = %s over %d bytes of payload %s; want vector B's (311 bytes)", hash, size, wire)
	}
}
