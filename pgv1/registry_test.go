package pgv1

import (
	"slices"
	"strings"
	"testing"
)

// Discover refuses tables v1 cannot sync, each with an error naming the table and the reason.
func TestDiscover_Refusals(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 2)
	if _, err := pool.Exec(t.Context(), `
CREATE TABLE business.docs (_sync_scope_id text NOT NULL, id uuid, data jsonb, PRIMARY KEY (_sync_scope_id, id));
CREATE TABLE business.unscoped (id uuid PRIMARY KEY, note text);
CREATE TABLE business.intkey (_sync_scope_id text NOT NULL, id int8, PRIMARY KEY (_sync_scope_id, id));
CREATE TABLE business.genkey (_sync_scope_id text NOT NULL, a text, id text GENERATED ALWAYS AS (a || 'x') STORED, PRIMARY KEY (_sync_scope_id, id));
CREATE TABLE business.widekey (_sync_scope_id text NOT NULL, a text, b text, PRIMARY KEY (_sync_scope_id, a, b));
CREATE TABLE business."Mixed" (_sync_scope_id text NOT NULL, id text, PRIMARY KEY (_sync_scope_id, id));
CREATE TABLE business.arrays (_sync_scope_id text NOT NULL, id text, tags text[], PRIMARY KEY (_sync_scope_id, id));`); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		spec TableSpec
		want string
	}{
		{TableSpec{Schema: "business", Table: "docs"}, "business.docs column data has type jsonb, which v1 clients cannot decode"},
		{TableSpec{Schema: "business", Table: "arrays"}, "business.arrays column tags has type text[]"},
		{TableSpec{Schema: "business", Table: "unscoped"}, "needs a column _sync_scope_id"},
		{TableSpec{Schema: "business", Table: "intkey"}, "v1 keys are uuid or text"},
		{TableSpec{Schema: "business", Table: "genkey"}, "is generated"},
		{TableSpec{Schema: "business", Table: "widekey"}, "name its key column"},
		{TableSpec{Schema: "business", Table: "widekey", KeyColumn: "nope"}, `no key column "nope"`},
		{TableSpec{Schema: "business", Table: "missing"}, "business.missing does not exist"},
		{TableSpec{Schema: "business", Table: "Mixed"}, "does not exist"}, // names are lowercased
	} {
		_, err := Discover(t.Context(), pool, []TableSpec{tc.spec})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Discover(%+v) = %v, want an error containing %q", tc.spec, err, tc.want)
		}
	}
	if _, err := Discover(t.Context(), pool, []TableSpec{{Schema: "business", Table: "users"}, {Schema: " Business ", Table: "USERS"}}); err == nil || !strings.Contains(err.Error(), "registered twice") {
		t.Errorf("a table registered twice: %v", err)
	}
}

// Discover reads key columns from primary keys, lists specs sorted for capabilities, keeps
// the registration order for snapshots, and is idempotent (triggers are replaced, not added).
func TestDiscover_SpecsAndOrder(t *testing.T) {
	t.Parallel()
	s, pool := newTestStore(t, Config{})
	if _, err := Discover(t.Context(), pool, append([]TableSpec(nil), testTables...)); err != nil {
		t.Fatalf("second Discover: %v", err)
	}
	want := []TableSpec{
		{"business", "comments", "id"}, {"business", "numeric_values", "id"}, {"business", "posts", "id"},
		{"business", "typed_rows", "id"}, {"business", "users", "id"},
	}
	if got := s.Specs(); !slices.Equal(got, want) {
		t.Errorf("Specs() = %v, want %v", got, want)
	}
	_, tables := s.reg.order()
	if !slices.Equal(tables, []string{"users", "posts", "comments", "typed_rows", "numeric_values"}) {
		t.Errorf("order() tables = %v", tables)
	}
	var triggers int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pulsesync_v1_capture_%'`).Scan(&triggers); err != nil {
		t.Fatal(err)
	}
	if triggers != 3*len(testTables) {
		t.Errorf("%d capture triggers after two Discovers, want %d", triggers, 3*len(testTables))
	}
}

// Every supported column type travels as §1.6 says, vectors A and B of docs/protocol-v1.md §4.5
// included; a generated column is ignored when pushed and served when read (§6.1 M1).
func TestCommit_TypedValues(t *testing.T) {
	t.Parallel()
	s, pool, c := newAliceStore(t, Config{})
	vectorA := `{"amount":"1234567890.123456789","count":"2147483647","enabled":"1","id":"n-1","large_count":"9007199254740993","ratio":"1.2345678901234567","score":"5e-324","small_count":"-32768"}`
	m := mustPush(t, s, c, 1, []PushRow{row("numeric_values", "id", "n-1", "INSERT", 0, vectorA)}, pushOpts{})
	if m.RequestHash != "ce9f4105cdda62a7705ef32476ebb3b3737fb44866a4bf4eedfeaaa571eb443a" || m.BundleHash != "92fe0879f22de1e60f1bec5655f94cc641389e2ba5624666402a2a5cdd7150e3" {
		t.Fatalf("vector A/B: request hash %s, bundle hash %s", m.RequestHash, m.BundleHash)
	}

	typed := `{"id":"t-1","i2":"-32768","i4":"2147483647","i8":"-4611686018427387904","n":"1.25e3","f4":"1.5","f8":"1e+21",` +
		`"b":"0","bin":"AAEC/w==","u":"` + uuidA + `","t":"x\u0001<&>","vc":"short","ch":"ab","d":"2026-07-23","tm":"09:45:00.5",` +
		`"ts":"2026-07-23T09:45:00","tstz":"2026-07-23T11:45:00+02:00","doubled":"999"}`
	m = mustPush(t, s, c, 2, []PushRow{row("typed_rows", "id", "t-1", "INSERT", 0, typed)}, pushOpts{})
	rows := verifiedBundle(t, pool, "alice", m.BundleSeq)
	want := `{"b":false,"bin":"AAEC/w==","ch":"ab ","d":"2026-07-23","doubled":"-9223372036854775808","f4":"1.5","f8":"1e+21",` +
		`"i2":"-32768","i4":"2147483647","i8":"-4611686018427387904","id":"t-1","n":"1250.000000000","t":"x\u0001<&>",` +
		`"tm":"09:45:00.5","ts":"2026-07-23T09:45:00","tstz":"2026-07-23T09:45:00+00:00","u":"` + uuidA + `","vc":"short"}`
	if len(rows) != 1 || string(rows[0].Payload) != want {
		t.Fatalf("typed row payload\n got %s\nwant %s", rows[0].Payload, want)
	}
}
