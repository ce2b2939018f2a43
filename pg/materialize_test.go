package pg

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// rowChange builds a change of table ("schema.table") with a payload given as JSON text; ""
// means no payload (deletes).
func rowChange(scid int64, table, op, pk string, base int64, payload string) ChangeInput {
	schema, name, _ := strings.Cut(table, ".")
	c := ChangeInput{SourceChangeID: scid, Schema: schema, Table: name, Op: op, PK: pk, BaseVersion: base}
	if payload != "" {
		c.Payload = []byte(payload)
	}
	return c
}

// numberedPK returns a distinct row key for each n.
func numberedPK(n int) string { return fmt.Sprintf("%08x-0000-4000-8000-000000000000", n) }

// businessRow runs a query for one row of text and reports whether a row came back.
func businessRow(t testing.TB, q Querier, sql string, args ...any) (string, bool) {
	t.Helper()
	var text string
	err := q.QueryRow(context.Background(), sql, args...).Scan(&text)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false
	}
	if err != nil {
		t.Fatalf("read business row: %v", err)
	}
	return text, true
}

// userRow returns "name,email" of a business.users row, and whether it exists.
func userRow(t testing.TB, q Querier, pk string) (string, bool) {
	t.Helper()
	return businessRow(t, q, `SELECT concat_ws(',', name, email) FROM business.users WHERE id = $1`, pk)
}

// failureOf returns user's failure record of row pk, if there is one.
func failureOf(t testing.TB, s *Store, user, pk string) (Failure, bool) {
	t.Helper()
	failures, err := s.ListFailures(context.Background(), user, FailureFilter{Limit: 1000})
	if err != nil {
		t.Fatalf("list failures: %v", err)
	}
	for _, f := range failures {
		if f.PK.String() == pk {
			return f, true
		}
	}
	return Failure{}, false
}

// wantApplied fails the test unless every outcome is applied with the given new versions.
func wantApplied(t testing.TB, res UploadResult, versions ...int64) {
	t.Helper()
	if len(res.Outcomes) != len(versions) {
		t.Fatalf("%d outcomes, want %d", len(res.Outcomes), len(versions))
	}
	for i, out := range res.Outcomes {
		if out.Status != StatusApplied || out.NewVersion != versions[i] {
			t.Fatalf("outcome %d: %+v (invalid %+v), want applied at version %d", i, out, out.Invalid, versions[i])
		}
	}
}

// wantFailure fails the test unless user has exactly the described failure record of row pk.
func wantFailure(t testing.TB, s *Store, user, table, pk, op string, version int64, payload, errFragment string) {
	t.Helper()
	f, ok := failureOf(t, s, user, pk)
	if !ok {
		t.Fatalf("no failure record of %s pk=%s for %s", table, pk, user)
	}
	if f.User != user || f.Schema+"."+f.Table != table || f.Op != op || f.AttemptedVersion != version ||
		string(f.Payload) != payload || (payload == "" && f.Payload != nil) || !strings.Contains(f.Error, errFragment) {
		t.Fatalf("failure record %s,\nwant user %s, %s, op %s, version %d, payload %q, error containing %q",
			describeFailure(f), user, table, op, version, payload, errFragment)
	}
}

// wantNoFailure fails the test if user has a failure record of row pk.
func wantNoFailure(t testing.TB, s *Store, user, pk string) {
	t.Helper()
	if f, ok := failureOf(t, s, user, pk); ok {
		t.Fatalf("unexpected failure record of %s for %s: %s", pk, user, describeFailure(f))
	}
}

func TestMaterialize_BusinessRowsFollowAppliedChanges(t *testing.T) {
	s, pool := newStoreWithTables(t, "")
	userPK, postPK := numberedPK(1), numberedPK(2)
	post := `{"id":"` + postPK + `","title":"Hello","content":"first","author_id":"` + userPK + `"}`

	wantApplied(t, upload(t, s, "alice", "phone", userChange(1, userPK, 0, "Ann"),
		rowChange(2, "business.posts", "INSERT", postPK, 0, post)), 1, 1)
	if got, _ := userRow(t, pool, userPK); got != "Ann,Ann@example.com" {
		t.Fatalf("user after insert: %q, want Ann,Ann@example.com", got)
	}
	postSQL := `SELECT concat_ws(',', title, content, author_id) FROM business.posts WHERE id = $1`
	if got, _ := businessRow(t, pool, postSQL, postPK); got != "Hello,first,"+userPK {
		t.Fatalf("post after insert: %q, want Hello,first,%s", got, userPK)
	}

	// Columns are set by name: a payload without email leaves the email as it was.
	wantApplied(t, upload(t, s, "alice", "phone",
		rowChange(3, "business.users", "UPDATE", userPK, 1, `{"id":"`+userPK+`","name":"Ann Lee"}`)), 2)
	if got, _ := userRow(t, pool, userPK); got != "Ann Lee,Ann@example.com" {
		t.Fatalf("user after update: %q, want Ann Lee,Ann@example.com", got)
	}

	wantApplied(t, upload(t, s, "alice", "phone", rowChange(4, "business.users", "DELETE", userPK, 2, ""),
		rowChange(5, "business.posts", "DELETE", postPK, 1, "")), 3, 2)
	if got, ok := userRow(t, pool, userPK); ok {
		t.Fatalf("user after delete: %q, want no row", got)
	}
	if got, ok := businessRow(t, pool, postSQL, postPK); ok {
		t.Fatalf("post after delete: %q, want no row", got)
	}
	for _, pk := range []string{userPK, postPK} {
		wantNoFailure(t, s, "alice", pk)
	}
}

func TestMaterialize_IgnoresPayloadKeysWithoutColumn(t *testing.T) {
	s, pool := newStoreWithTables(t, "")
	pk := numberedPK(1)
	payload := `{"id":"` + pk + `","name":"Ann","nickname":"A","Email":"upper@example.com","server_version":7,"deleted":true}`
	wantApplied(t, upload(t, s, "alice", "phone", rowChange(1, "business.users", "INSERT", pk, 0, payload)), 1)
	if got, _ := userRow(t, pool, pk); got != "Ann" {
		t.Fatalf("business row %q, want Ann with no email (unknown keys ignored)", got)
	}
	wantNoFailure(t, s, "alice", pk)
}

// kindsDDL is a registered table with a column of every type the materializer converts.
const kindsDDL = `
CREATE TYPE business.mood AS ENUM ('happy', 'sad');
CREATE DOMAIN business.code AS varchar(5) CHECK (VALUE <> 'bad');
CREATE TABLE business.kinds (
    id       uuid PRIMARY KEY,
    small    int2,
    count    int4,
    big      int8,
    flag     bool,
    amount   numeric(12,2),
    ratio    float8,
    at       timestamptz,
    day      date,
    blob     bytea,
    doc      jsonb,
    ref      uuid,
    label    text NOT NULL,
    origin   text NOT NULL DEFAULT 'sync',
    note     varchar(20) CHECK (note <> 'forbidden'),
    initials char(3),
    code     business.code,
    mask     bit(3),
    tags     varchar(3)[],
    pairs    char(2)[],
    masks    bit(2)[],
    mood     business.mood
);`

// kindsColumns reads business.kinds back as text, independent of the session's time zone.
var kindsColumns = []struct{ name, expr string }{
	{"small", "small::text"}, {"count", "count::text"}, {"big", "big::text"}, {"flag", "flag::text"},
	{"amount", "amount::text"}, {"ratio", "ratio::text"}, {"at", "(at AT TIME ZONE 'UTC')::text"},
	{"day", "day::text"}, {"blob", "encode(blob, 'hex')"}, {"doc", "doc::text"}, {"ref", "ref::text"},
	{"label", "label"}, {"origin", "origin"}, {"note", "note"}, {"initials", "initials::text"},
	{"code", "code::text"}, {"mask", "mask::text"}, {"tags", "tags::text"}, {"pairs", "pairs::text"},
	{"masks", "masks::text"}, {"mood", "mood::text"},
}

// kindsRow returns the business.kinds row pk by column name, NULL as "NULL", or nil if absent.
func kindsRow(t testing.TB, q Querier, pk string) map[string]string {
	t.Helper()
	exprs := make([]string, len(kindsColumns))
	for i, c := range kindsColumns {
		exprs[i] = "coalesce(" + c.expr + ", 'NULL')"
	}
	var values []string
	err := q.QueryRow(context.Background(), `SELECT ARRAY[`+strings.Join(exprs, ", ")+`] FROM business.kinds WHERE id = $1`, pk).Scan(&values)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		t.Fatalf("read business.kinds: %v", err)
	}
	row := make(map[string]string, len(values))
	for i, c := range kindsColumns {
		row[c.name] = values[i]
	}
	return row
}

func TestMaterialize_ConvertsEveryColumnType(t *testing.T) {
	s, pool := newStoreWithTables(t, kindsDDL, "business.kinds")
	const ref = "9d2b7c1e-0a4f-4e3b-8c5d-1f2e3a4b5c6d"
	cases := []struct {
		name    string
		payload string // the columns after "id"
		want    map[string]string
	}{{
		name: "JSON values",
		payload: `"small":-7,"count":2147483647,"big":9007199254740993,"flag":true,"amount":12345.678,"ratio":0.125,` +
			`"at":"2024-03-01T12:30:45.123456+02:00","day":"2024-02-29","blob":"AAEC/w==","doc":{"b":null,"a":[1,"x"]},` +
			`"ref":"` + strings.ToUpper(ref) + `","label":"héllo \"q\"","note":"twenty characters!!!","initials":"abc",` +
			`"code":"ab12","mask":"101","tags":"{ab,cd}","pairs":"{ab,c}","masks":"{01,10}","mood":"happy"`,
		want: map[string]string{"small": "-7", "count": "2147483647", "big": "9007199254740993", "flag": "true",
			"amount": "12345.68", "ratio": "0.125", "at": "2024-03-01 10:30:45.123456", "day": "2024-02-29",
			"blob": "000102ff", "doc": `{"a": [1, "x"], "b": null}`, "ref": ref, "label": `héllo "q"`,
			"origin": "sync", "note": "twenty characters!!!", "initials": "abc", "code": "ab12", "mask": "101",
			"tags": "{ab,cd}", "pairs": `{ab,"c "}`, "masks": "{01,10}", "mood": "happy"},
	}, {
		name: "SQLite conventions",
		payload: `"small":true,"count":0,"big":false,"flag":1,"amount":"0.10","ratio":-1e-3,"at":1700000000.5,` +
			`"day":86400,"blob":"","doc":"[1,2]","ref":"nSt8HgpPTjuMXR8uOktcbQ==","label":"x","origin":"phone","note":42`,
		want: map[string]string{"small": "1", "count": "0", "big": "0", "flag": "true", "amount": "0.10",
			"ratio": "-0.001", "at": "2023-11-14 22:13:20.5", "day": "1970-01-02", "blob": "", "doc": `"[1,2]"`,
			"ref": ref, "label": "x", "origin": "phone", "note": "42", "initials": "NULL", "code": "NULL",
			"mask": "NULL", "tags": "NULL", "pairs": "NULL", "masks": "NULL", "mood": "NULL"},
	}, {
		name: "nulls in nullable columns",
		payload: `"small":null,"count":null,"big":null,"flag":null,"amount":null,"ratio":null,"at":null,"day":null,` +
			`"blob":null,"doc":null,"ref":"","label":"only","note":null,"initials":null,"code":null,"mask":null,` +
			`"tags":null,"pairs":null,"masks":null,"mood":null`,
		want: map[string]string{"small": "NULL", "count": "NULL", "big": "NULL", "flag": "NULL", "amount": "NULL",
			"ratio": "NULL", "at": "NULL", "day": "NULL", "blob": "NULL", "doc": "NULL", "ref": "NULL",
			"label": "only", "origin": "sync", "note": "NULL", "initials": "NULL", "code": "NULL", "mask": "NULL",
			"tags": "NULL", "pairs": "NULL", "masks": "NULL", "mood": "NULL"},
	}}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pk := numberedPK(i + 1)
			payload := `{"id":"` + pk + `",` + tc.payload + `}`
			wantApplied(t, upload(t, s, "alice", "phone", rowChange(int64(i+1), "business.kinds", "INSERT", pk, 0, payload)), 1)
			wantNoFailure(t, s, "alice", pk)
			if got := kindsRow(t, pool, pk); !maps.Equal(got, tc.want) {
				t.Fatalf("business row\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

// TestMaterialize_BadValueIsRecordedAndChangeStaysApplied: a value that does not convert, or
// that the table refuses, leaves the business row as it was and is recorded, while the change
// is applied and streamed; the row's next good change projects and clears the record.
func TestMaterialize_BadValueIsRecordedAndChangeStaysApplied(t *testing.T) {
	s, pool := newStoreWithTables(t, kindsDDL, "business.kinds")
	cases := []struct {
		name    string
		columns string // the bad update's columns after "id"
		errText string
	}{
		{"wrong JSON kind", `"label":"v2","count":"seven"`, `column "count" (int4): not an integer`},
		{"integer out of range", `"label":"v2","count":2147483648`, "not an integer in range"},
		{"bad base64", `"label":"v2","blob":"@@@="`, `column "blob" (bytea): not standard base64`},
		{"bad date", `"label":"v2","day":"2024-02-30"`, `column "day" (date): not RFC 3339`},
		{"bad uuid", `"label":"v2","ref":"0123"`, `column "ref" (uuid): not a UUID`},
		{"NOT NULL column null", `"label":null,"count":2`, `column "label" is NOT NULL`},
		{"NOT NULL column left out", `"count":2`, `column "label" is NOT NULL but missing`},
		{"check constraint", `"label":"v2","note":"forbidden"`, "violates check constraint"},
		{"value the column type refuses", `"label":"v2","amount":1e20`, "numeric field overflow"},
		{"unknown enum label", `"label":"v2","mood":"grumpy"`, "invalid input value for enum business.mood"},
		// Length limits fail the projection; they never cut the value.
		{"over-long varchar", `"label":"v2","note":"twenty-one characters"`, "value too long for type character varying(20)"},
		{"over-long char", `"label":"v2","initials":"abcd"`, "value too long for type character(3)"},
		{"over-long value of a domain", `"label":"v2","code":"abcdef"`, "value too long for type character varying(5)"},
		{"domain check", `"label":"v2","code":"bad"`, `value for domain business.code violates check constraint "code_check"`},
		{"bit string of the wrong length", `"label":"v2","mask":"1011"`, "bit string length 4 does not match type bit(3)"},
		{"over-long array element", `"label":"v2","tags":"{abcd}"`, "value too long for type character varying(3)"},
		{"over-long char array element", `"label":"v2","pairs":"{abc}"`, "value too long for type character(2)"},
		{"bit array element of the wrong length", `"label":"v2","masks":"{011}"`, "bit string length 3 does not match type bit(2)"},
	}
	scid := int64(0)
	next := func() int64 { scid++; return scid }
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pk := numberedPK(i + 1)
			wantApplied(t, upload(t, s, "alice", "phone",
				rowChange(next(), "business.kinds", "INSERT", pk, 0, `{"id":"`+pk+`","label":"v1","count":1}`)), 1)
			before := kindsRow(t, pool, pk)

			bad := `{"id":"` + pk + `",` + tc.columns + `}`
			res := upload(t, s, "alice", "phone", rowChange(next(), "business.kinds", "UPDATE", pk, 1, bad))
			wantApplied(t, res, 2)
			if got := kindsRow(t, pool, pk); !maps.Equal(got, before) {
				t.Fatalf("business row after the bad change\n got %v\nwant %v (untouched)", got, before)
			}
			wantFailure(t, s, "alice", "business.kinds", pk, "UPDATE", 2, bad, tc.errText)
			page, err := s.Download(context.Background(), "alice", "laptop", DownloadQuery{After: res.Highest - 1, Limit: 10})
			if err != nil {
				t.Fatalf("download: %v", err)
			}
			if len(page.Changes) != 1 || page.Changes[0].PK.String() != pk || page.Changes[0].Version != 2 || string(page.Changes[0].Payload) != bad {
				t.Fatalf("stream after the bad change: %+v, want the change at version 2 with its payload", page.Changes)
			}

			good := `{"id":"` + pk + `","label":"v3","count":3}`
			wantApplied(t, upload(t, s, "alice", "phone", rowChange(next(), "business.kinds", "UPDATE", pk, 2, good)), 3)
			wantNoFailure(t, s, "alice", pk)
			if got := kindsRow(t, pool, pk); got["label"] != "v3" || got["count"] != "3" {
				t.Fatalf("business row after the good change: %v, want label v3, count 3", got)
			}
		})
	}
}

// TestMaterialize_FailingRowDoesNotBlockRestOfBatch: when one row of a batch violates a
// constraint, every other row of the request still reaches its business table.
func TestMaterialize_FailingRowDoesNotBlockRestOfBatch(t *testing.T) {
	s, pool := newStoreWithTables(t, `ALTER TABLE business.users ADD CONSTRAINT users_email_key UNIQUE (email),
    ADD CONSTRAINT users_name_allowed CHECK (name <> 'forbidden')`)
	const taken = "00000000-0000-4000-8000-0000000000ff"
	wantApplied(t, upload(t, s, "alice", "phone", userChange(1000, taken, 0, "taken")), 1)

	cases := []struct {
		name    string
		bad     func(pk, goodPK string) string // the failing user's payload
		errText string
	}{{
		name:    "check constraint",
		bad:     func(pk, _ string) string { return `{"id":"` + pk + `","name":"forbidden"}` },
		errText: `violates check constraint "users_name_allowed"`,
	}, {
		name:    "unique constraint against an existing row",
		bad:     func(pk, _ string) string { return `{"id":"` + pk + `","name":"x","email":"taken@example.com"}` },
		errText: `violates unique constraint "users_email_key"`,
	}, {
		name: "unique constraint against an earlier row of the batch",
		bad: func(pk, goodPK string) string {
			return `{"id":"` + pk + `","name":"y","email":"` + goodPK + `@example.com"}`
		},
		errText: `violates unique constraint "users_email_key"`,
	}}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			first, bad, last, post := numberedPK(4*i+1), numberedPK(4*i+2), numberedPK(4*i+3), numberedPK(4*i+4)
			scid := int64(10 * i)
			res := upload(t, s, "alice", "phone",
				userChange(scid+1, first, 0, first),
				rowChange(scid+2, "business.users", "INSERT", bad, 0, tc.bad(bad, first)),
				userChange(scid+3, last, 0, last),
				rowChange(scid+4, "business.posts", "INSERT", post, 0, `{"id":"`+post+`","title":"t","author_id":"`+last+`"}`))
			wantApplied(t, res, 1, 1, 1, 1)
			for _, pk := range []string{first, last} {
				if got, ok := userRow(t, pool, pk); !ok || got != pk+","+pk+"@example.com" {
					t.Errorf("user %s: %q (exists %v), want it written", pk, got, ok)
				}
				wantNoFailure(t, s, "alice", pk)
			}
			if _, ok := businessRow(t, pool, `SELECT title FROM business.posts WHERE id = $1`, post); !ok {
				t.Errorf("post %s was not written", post)
			}
			if got, ok := userRow(t, pool, bad); ok {
				t.Errorf("failing user was written: %q", got)
			}
			wantFailure(t, s, "alice", "business.users", bad, "INSERT", 1, tc.bad(bad, first), tc.errText)
		})
	}
}

// TestMaterialize_UsersSharingAUUIDCannotTouchEachOthersBusinessRow: the first user to project a
// UUID owns its business row; another user's changes of that UUID are applied in sync, but
// their upserts are recorded as failures and their deletes leave the row alone (§10.3 #9).
func TestMaterialize_UsersSharingAUUIDCannotTouchEachOthersBusinessRow(t *testing.T) {
	s, pool := newStoreWithTables(t, "")
	pk := numberedPK(1)
	wantApplied(t, upload(t, s, "alice", "phone", userChange(1, pk, 0, "Ann")), 1)

	wantApplied(t, upload(t, s, "bob", "tablet", userChange(1, pk, 0, "Bob")), 1)
	if got, _ := userRow(t, pool, pk); got != "Ann,Ann@example.com" {
		t.Fatalf("after bob's insert the business row is %q, want alice's", got)
	}
	wantFailure(t, s, "bob", "business.users", pk, "INSERT", 1,
		`{"email":"Bob@example.com","id":"`+pk+`","name":"Bob"}`, "belongs to another user")

	wantApplied(t, upload(t, s, "bob", "tablet", userChange(2, pk, 1, "Bobby")), 2)
	if got, _ := userRow(t, pool, pk); got != "Ann,Ann@example.com" {
		t.Fatalf("after bob's update the business row is %q, want alice's", got)
	}
	wantFailure(t, s, "bob", "business.users", pk, "INSERT", 2,
		`{"email":"Bobby@example.com","id":"`+pk+`","name":"Bobby"}`, "belongs to another user")

	wantApplied(t, upload(t, s, "bob", "tablet", rowChange(3, "business.users", "DELETE", pk, 2, "")), 3)
	if got, ok := userRow(t, pool, pk); !ok || got != "Ann,Ann@example.com" {
		t.Fatalf("after bob's delete the business row is %q (exists %v), want alice's", got, ok)
	}

	// Alice still owns the row: her changes project as usual.
	wantApplied(t, upload(t, s, "alice", "phone", userChange(2, pk, 1, "Ann Lee")), 2)
	if got, _ := userRow(t, pool, pk); got != "Ann Lee,Ann Lee@example.com" {
		t.Fatalf("after alice's update the business row is %q, want Ann Lee", got)
	}
	wantNoFailure(t, s, "alice", pk)
	wantApplied(t, upload(t, s, "alice", "phone", rowChange(3, "business.users", "DELETE", pk, 2, "")), 3)
	if got, ok := userRow(t, pool, pk); ok {
		t.Fatalf("after alice's delete the business row is %q, want none", got)
	}
}

// parentChildCases are the ways a business row can reference a registered parent: a plain
// foreign key, one that is DEFERRABLE INITIALLY DEFERRED (checked at commit unless the Store
// sets it immediate), and a deferred one from a table that is not registered at all.
var parentChildCases = []struct {
	name string
	ddl  string
	// insertChild and deleteChild write the child of user $1 directly; "" = a post synced by alice.
	insertChild, deleteChild string
}{
	{name: "plain foreign key"},
	{name: "deferred foreign key",
		ddl: `ALTER TABLE business.posts ALTER CONSTRAINT posts_author_id_fkey DEFERRABLE INITIALLY DEFERRED`},
	{name: "deferred foreign key from an unregistered table",
		ddl: `CREATE TABLE business.comments (id uuid PRIMARY KEY,
    user_id uuid REFERENCES business.users DEFERRABLE INITIALLY DEFERRED)`,
		insertChild: `INSERT INTO business.comments VALUES (gen_random_uuid(), $1)`,
		deleteChild: `DELETE FROM business.comments WHERE user_id = $1`},
}

// addChild gives alice's business row of user userPK a referencing child: by sql when it is
// set, otherwise as post childPK synced with scid.
func addChild(t testing.TB, s *Store, pool *pgxpool.Pool, sql string, scid int64, userPK, childPK string) {
	t.Helper()
	post := `{"id":"` + childPK + `","title":"t","author_id":"` + userPK + `"}`
	writeChild(t, s, pool, sql, rowChange(scid, "business.posts", "INSERT", childPK, 0, post), userPK)
}

// removeChild removes the child addChild made: by sql when it is set, otherwise by syncing the
// post's delete with scid.
func removeChild(t testing.TB, s *Store, pool *pgxpool.Pool, sql string, scid int64, userPK, childPK string) {
	t.Helper()
	writeChild(t, s, pool, sql, rowChange(scid, "business.posts", "DELETE", childPK, 1, ""), userPK)
}

func writeChild(t testing.TB, s *Store, pool *pgxpool.Pool, sql string, synced ChangeInput, userPK string) {
	t.Helper()
	if sql != "" {
		if _, err := pool.Exec(context.Background(), sql, userPK); err != nil {
			t.Fatalf("write child: %v", err)
		}
		return
	}
	wantApplied(t, upload(t, s, "alice", "phone", synced), synced.BaseVersion+1)
}

// TestMaterialize_DeletingReferencedParentIsARecordedFailure: a delete whose projection a
// business child blocks is applied and recorded, and the upload commits normally with its
// other changes (§10.3 #5), whether the foreign key is checked at once or deferred.
func TestMaterialize_DeletingReferencedParentIsARecordedFailure(t *testing.T) {
	for _, tc := range parentChildCases {
		t.Run(tc.name, func(t *testing.T) {
			s, pool := newStoreWithTables(t, tc.ddl)
			parent, child, other := numberedPK(1), numberedPK(2), numberedPK(3)
			wantApplied(t, upload(t, s, "alice", "phone", userChange(1, parent, 0, "Ann")), 1)
			addChild(t, s, pool, tc.insertChild, 2, parent, child)

			res, err := s.Upload(context.Background(), "alice", "phone", []ChangeInput{
				rowChange(3, "business.users", "DELETE", parent, 1, ""),
				userChange(4, other, 0, "Cy"),
			})
			if err != nil {
				t.Fatalf("upload: %v, want it to commit with the failure recorded", err)
			}
			wantApplied(t, res, 2, 1)
			if got, ok := userRow(t, pool, parent); !ok || got != "Ann,Ann@example.com" {
				t.Fatalf("parent business row %q (exists %v), want it kept for its child", got, ok)
			}
			if _, ok := userRow(t, pool, other); !ok {
				t.Fatalf("the other user of the request was not written")
			}
			wantFailure(t, s, "alice", "business.users", parent, "DELETE", 2, "", "foreign key constraint")
			wantNoFailure(t, s, "alice", other)
		})
	}
}

// TestMaterialize_FallbackLeavesNoSavepointOpen: after rows fail in the row-by-row fallback,
// no savepoint of the materializer remains, so later rows and statements do not run nested
// ever deeper inside rolled-back savepoints.
func TestMaterialize_FallbackLeavesNoSavepointOpen(t *testing.T) {
	s, pool := newStoreWithTables(t, `ALTER TABLE business.users ADD CONSTRAINT users_name_allowed CHECK (name <> 'forbidden')`)
	users, _ := s.Registry().Lookup("business", "users")
	var applied []*appliedChange
	for i, name := range []string{"forbidden", "Ann", "forbidden"} {
		pk, _ := ParseUUID(numberedPK(i + 1))
		applied = append(applied, &appliedChange{version: 1,
			change: &change{table: users, op: opInsert, pk: pk, payload: []byte(`{"name":"` + name + `"}`)}})
	}
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	groups, unconverted := planProjections(applied)
	var p pipeline
	first, end := s.queueProjections(&p, "alice", groups, false, nil, true)
	if failed, err := p.send(ctx, tx); len(unconverted) != 0 || failed < first || failed >= end || !projectionError(err) {
		t.Fatalf("bulk projection: statement %d failed with %v, want a projection statement in [%d, %d) to fail", failed, err, first, end)
	}
	rejected, err := s.recoverProjections(ctx, tx, "alice", groups, false, nil)
	if err != nil || len(rejected) != 2 {
		t.Fatalf("recoverProjections: %d rejected, %v; want 2", len(rejected), err)
	}
	for _, name := range []string{"projection", "materialize"} {
		// Probe inside a savepoint of its own, so that the transaction stays usable.
		_, err := tx.Exec(ctx, `SAVEPOINT probe; RELEASE SAVEPOINT `+name)
		if pgCode(err) != "3B001" { // invalid_savepoint_specification: no such savepoint
			t.Fatalf("releasing savepoint %s after the fallback: %v, want it not to exist", name, err)
		}
		if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT probe; RELEASE SAVEPOINT probe`); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMaterialize_ChildOfUnprojectedParentIsARecordedFailure: when a parent's projection fails,
// its child's projection breaks the foreign key; that too is a recorded failure and the upload
// commits, also when the foreign key is deferred (§10.3 #5).
func TestMaterialize_ChildOfUnprojectedParentIsARecordedFailure(t *testing.T) {
	for _, tc := range parentChildCases {
		if tc.insertChild != "" {
			continue // the child has to be synced in the same request
		}
		t.Run(tc.name, func(t *testing.T) {
			s, pool := newStoreWithTables(t, tc.ddl+`;
ALTER TABLE business.users ADD CONSTRAINT users_name_allowed CHECK (name <> 'forbidden')`)
			parent, child := numberedPK(1), numberedPK(2)
			post := `{"id":"` + child + `","title":"t","author_id":"` + parent + `"}`
			res, err := s.Upload(context.Background(), "alice", "phone", []ChangeInput{
				userChange(1, parent, 0, "forbidden"),
				rowChange(2, "business.posts", "INSERT", child, 0, post),
			})
			if err != nil {
				t.Fatalf("upload: %v, want it to commit with the failures recorded", err)
			}
			wantApplied(t, res, 1, 1)
			wantFailure(t, s, "alice", "business.users", parent, "INSERT", 1,
				`{"email":"forbidden@example.com","id":"`+parent+`","name":"forbidden"}`, "check constraint")
			wantFailure(t, s, "alice", "business.posts", child, "INSERT", 1, post, "foreign key constraint")
			if got, ok := businessRow(t, pool, `SELECT title FROM business.posts WHERE id = $1`, child); ok {
				t.Fatalf("child business row %q written without its parent", got)
			}
		})
	}
}

// TestMaterialize_KeepsRequestOrderWithinASelfReferencingTable: a child whose parent comes
// earlier in the same request and the same table projects, even when their payloads set
// different columns and an earlier row shares the child's columns.
func TestMaterialize_KeepsRequestOrderWithinASelfReferencingTable(t *testing.T) {
	s, pool := newStoreWithTables(t, `CREATE TABLE business.folders (id uuid PRIMARY KEY, name text,
    parent_id uuid REFERENCES business.folders)`, "business.folders")
	other, parent, child := numberedPK(1), numberedPK(2), numberedPK(3)
	res := upload(t, s, "alice", "phone",
		rowChange(1, "business.folders", "INSERT", other, 0, `{"id":"`+other+`","name":"other","parent_id":null}`),
		rowChange(2, "business.folders", "INSERT", parent, 0, `{"id":"`+parent+`","name":"parent"}`),
		rowChange(3, "business.folders", "INSERT", child, 0, `{"id":"`+child+`","name":"child","parent_id":"`+parent+`"}`))
	wantApplied(t, res, 1, 1, 1)
	for _, pk := range []string{other, parent, child} {
		wantNoFailure(t, s, "alice", pk)
	}
	if got, _ := businessRow(t, pool, `SELECT parent_id::text FROM business.folders WHERE id = $1`, child); got != parent {
		t.Fatalf("child's parent_id %q, want %s", got, parent)
	}
}
