package pg

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestColumnText_ConvertsByColumnType covers every type the materializer converts and every
// value it refuses. want is the text PostgreSQL receives; "" with wantErr set means refused,
// and wantNull means SQL NULL.
func TestColumnText_ConvertsByColumnType(t *testing.T) {
	const pk = "9d2b7c1e-0a4f-4e3b-8c5d-1f2e3a4b5c6d"
	cases := []struct {
		name     string
		typ      string
		notNull  bool
		raw      string
		want     string
		wantNull bool
		wantErr  string // a fragment of the error, "" = no error
	}{
		// uuid: every text form of a pk, and base64 of 16 bytes from BLOB key columns.
		{name: "uuid canonical", typ: "uuid", raw: `"` + pk + `"`, want: pk},
		{name: "uuid upper case", typ: "uuid", raw: `"` + strings.ToUpper(pk) + `"`, want: pk},
		{name: "uuid 32 hex digits", typ: "uuid", raw: `"` + strings.ReplaceAll(pk, "-", "") + `"`, want: pk},
		{name: "uuid in braces", typ: "uuid", raw: `"{` + pk + `}"`, want: pk},
		{name: "uuid urn", typ: "uuid", raw: `"urn:uuid:` + pk + `"`, want: pk},
		{name: "uuid from base64 of 16 bytes", typ: "uuid", raw: `"nSt8HgpPTjuMXR8uOktcbQ=="`, want: pk},
		{name: "uuid empty string is no reference", typ: "uuid", raw: `""`, wantNull: true},
		{name: "uuid empty string in NOT NULL column", typ: "uuid", notNull: true, raw: `""`, wantErr: "NOT NULL"},
		{name: "uuid from base64 of 15 bytes", typ: "uuid", raw: `"nSt8HgpPTjuMXR8uOktc"`, wantErr: "not a UUID"},
		{name: "uuid garbage", typ: "uuid", raw: `"not-a-uuid"`, wantErr: "not a UUID"},
		{name: "uuid from a number", typ: "uuid", raw: `42`, wantErr: "not a string"},

		// bytea: standard padded base64.
		{name: "bytea", typ: "bytea", raw: `"AAEC/w=="`, want: `\x000102ff`},
		{name: "bytea empty", typ: "bytea", raw: `""`, want: `\x`},
		{name: "bytea unpadded base64", typ: "bytea", raw: `"AAEC/w"`, wantErr: "not standard base64"},
		{name: "bytea url-safe base64", typ: "bytea", raw: `"AAEC_w=="`, wantErr: "not standard base64"},
		{name: "bytea from a number", typ: "bytea", raw: `7`, wantErr: "not a string"},

		// timestamptz, timestamp and date: RFC 3339 text or Unix epoch seconds.
		{name: "timestamptz RFC 3339 UTC", typ: "timestamptz", raw: `"2024-03-01T12:30:45.123456Z"`, want: "2024-03-01T12:30:45.123456Z"},
		{name: "timestamptz RFC 3339 with offset", typ: "timestamptz", raw: `"2024-03-01T12:30:45+02:00"`, want: "2024-03-01T12:30:45+02:00"},
		{name: "timestamptz epoch seconds", typ: "timestamptz", raw: `1700000000`, want: "2023-11-14T22:13:20Z"},
		{name: "timestamptz epoch with fraction", typ: "timestamptz", raw: `1700000000.25`, want: "2023-11-14T22:13:20.25Z"},
		{name: "timestamptz negative epoch with fraction", typ: "timestamptz", raw: `-1.5`, want: "1969-12-31T23:59:58.5Z"},
		{name: "timestamptz epoch in exponent form", typ: "timestamptz", raw: `1.7e9`, want: "2023-11-14T22:13:20Z"},
		{name: "timestamptz date only", typ: "timestamptz", raw: `"2024-03-01"`, wantErr: "not RFC 3339"},
		{name: "timestamptz impossible day", typ: "timestamptz", raw: `"2024-02-30T00:00:00Z"`, wantErr: "not RFC 3339"},
		{name: "timestamptz words", typ: "timestamptz", raw: `"yesterday"`, wantErr: "not RFC 3339"},
		{name: "timestamptz epoch far out of range", typ: "timestamptz", raw: `1e14`, wantErr: "Unix seconds"},
		{name: "timestamptz from a boolean", typ: "timestamptz", raw: `true`, wantErr: "Unix seconds"},
		{name: "timestamp keeps the wall time", typ: "timestamp", raw: `"2024-03-01T12:00:00.5+02:00"`, want: "2024-03-01T12:00:00.5"},
		{name: "timestamp epoch is UTC", typ: "timestamp", raw: `0`, want: "1970-01-01T00:00:00"},
		{name: "date", typ: "date", raw: `"2024-02-29"`, want: "2024-02-29"},
		{name: "date from RFC 3339 keeps the written day", typ: "date", raw: `"2024-03-01T23:00:00-05:00"`, want: "2024-03-01"},
		{name: "date from epoch seconds", typ: "date", raw: `86400`, want: "1970-01-02"},
		{name: "date impossible month", typ: "date", raw: `"2024-13-01"`, wantErr: "not RFC 3339"},
		{name: "date not a leap year", typ: "date", raw: `"2023-02-29"`, wantErr: "not RFC 3339"},

		// Integers: in range for the column's width; booleans as SQLite stores them.
		{name: "int2 max", typ: "int2", raw: `32767`, want: "32767"},
		{name: "int2 overflow", typ: "int2", raw: `32768`, wantErr: "not an integer in range"},
		{name: "int4 min", typ: "int4", raw: `-2147483648`, want: "-2147483648"},
		{name: "int4 overflow", typ: "int4", raw: `2147483648`, wantErr: "not an integer in range"},
		{name: "int8 max", typ: "int8", raw: `9223372036854775807`, want: "9223372036854775807"},
		{name: "int8 overflow", typ: "int8", raw: `9223372036854775808`, wantErr: "not an integer in range"},
		{name: "int4 from true", typ: "int4", raw: `true`, want: "1"},
		{name: "int4 from false", typ: "int4", raw: `false`, want: "0"},
		{name: "int4 with a fraction", typ: "int4", raw: `1.5`, wantErr: "not an integer"},
		{name: "int4 in exponent form", typ: "int4", raw: `1e3`, wantErr: "not an integer"},
		{name: "int4 from a string", typ: "int4", raw: `"5"`, wantErr: "not an integer"},

		// Floating point and numeric: JSON numbers; numeric also exact decimals in strings.
		{name: "float8", typ: "float8", raw: `-2.5e-3`, want: "-2.5e-3"},
		{name: "float4", typ: "float4", raw: `3.25`, want: "3.25"},
		{name: "float8 from a string", typ: "float8", raw: `"1.5"`, wantErr: "not a number"},
		{name: "float8 from a boolean", typ: "float8", raw: `true`, wantErr: "not a number"},
		{name: "numeric from a number", typ: "numeric", raw: `12.345`, want: "12.345"},
		{name: "numeric as string keeps every digit", typ: "numeric", raw: `"12345678901234567890.123456789"`, want: "12345678901234567890.123456789"},
		{name: "numeric as string with exponent", typ: "numeric", raw: `"-1.5E+3"`, want: "-1.5E+3"},
		{name: "numeric as string leading point", typ: "numeric", raw: `".5"`, want: ".5"},
		{name: "numeric as string not a number", typ: "numeric", raw: `"12,5"`, wantErr: "not a number"},
		{name: "numeric as string NaN", typ: "numeric", raw: `"NaN"`, wantErr: "not a number"},
		{name: "numeric as string Infinity", typ: "numeric", raw: `"Infinity"`, wantErr: "not a number"},
		{name: "numeric as string hex float", typ: "numeric", raw: `"0x1p4"`, wantErr: "not a number"},
		{name: "numeric as string with underscores", typ: "numeric", raw: `"1_000"`, wantErr: "not a number"},
		{name: "numeric from an object", typ: "numeric", raw: `{"v":1}`, wantErr: "not a number"},

		// Booleans: JSON booleans or SQLite's 0 and 1.
		{name: "bool true", typ: "bool", raw: `true`, want: "true"},
		{name: "bool false", typ: "bool", raw: `false`, want: "false"},
		{name: "bool from 1", typ: "bool", raw: `1`, want: "true"},
		{name: "bool from 0", typ: "bool", raw: `0`, want: "false"},
		{name: "bool from 2", typ: "bool", raw: `2`, wantErr: "not a boolean"},
		{name: "bool from 1.0", typ: "bool", raw: `1.0`, wantErr: "not a boolean"},
		{name: "bool from a string", typ: "bool", raw: `"true"`, wantErr: "not a boolean"},

		// json and jsonb take any JSON value as it is.
		{name: "jsonb object", typ: "jsonb", raw: `{"a":[1,"x"],"b":null}`, want: `{"a":[1,"x"],"b":null}`},
		{name: "jsonb string", typ: "jsonb", raw: `"x"`, want: `"x"`},
		{name: "json number", typ: "json", raw: `3`, want: `3`},

		// Text and other types: strings unescaped, other values by their literal.
		{name: "text", typ: "text", raw: `"héllo"`, want: "héllo"},
		{name: "text with escapes", typ: "text", raw: `"a\"b\n\u00e9"`, want: "a\"b\né"},
		{name: "text from a number", typ: "text", raw: `42`, want: "42"},
		{name: "text from a boolean", typ: "text", raw: `true`, want: "true"},
		{name: "text from an object", typ: "text", raw: `{"a":1}`, want: `{"a":1}`},
		{name: "enum passes through", typ: "mood", raw: `"happy"`, want: "happy"},

		// NULL.
		{name: "null in nullable column", typ: "int4", raw: `null`, wantNull: true},
		{name: "null in NOT NULL column", typ: "text", notNull: true, raw: `null`, wantErr: "NOT NULL"},
		{name: "empty raw value is null", typ: "text", raw: ``, wantNull: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Column{Name: "col", Type: tc.typ, NotNull: tc.notNull}
			got, err := columnText(c, json.RawMessage(tc.raw))
			switch {
			case tc.wantErr != "":
				if err == nil {
					t.Fatalf("columnText(%s %s) = %s, want an error containing %q", tc.typ, tc.raw, show(got), tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), `"col"`) {
					t.Fatalf("columnText(%s %s) error %q, want it to name the column and contain %q", tc.typ, tc.raw, err, tc.wantErr)
				}
			case err != nil:
				t.Fatalf("columnText(%s %s): %v", tc.typ, tc.raw, err)
			case tc.wantNull:
				if got != nil {
					t.Fatalf("columnText(%s %s) = %s, want NULL", tc.typ, tc.raw, show(got))
				}
			case got == nil || *got != tc.want:
				t.Fatalf("columnText(%s %s) = %s, want %q", tc.typ, tc.raw, show(got), tc.want)
			}
		})
	}
}

// show prints a converted value for failure messages.
func show(v *string) string {
	if v == nil {
		return "NULL"
	}
	return `"` + *v + `"`
}
