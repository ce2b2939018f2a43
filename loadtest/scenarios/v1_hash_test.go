package scenarios

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

// The rows and hashes below are the worked example and test vectors of
// docs/protocol-v1.md §7 and §4.5.
const (
	annID     = "6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"
	annInsert = `[{"base_row_version":"0","key":{"id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"},"op":"INSERT","payload":{"active":"1","email":"ann@example.com","id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","name":"Ann","visits":"3"},"row_ordinal":"0","schema":"business","table":"users"}]`
)

func TestRequestHash_WorkedExampleVectors(t *testing.T) {
	user := func(op string, base int64, name string, visits int64) v1Row {
		return v1Row{Table: "users", Key: annID, Op: op, Base: base,
			Payload: userPayload(nil, annID, name, "ann@example.com", visits, true)}
	}
	cases := []struct {
		name string
		row  v1Row
		want string
	}{
		{"§7 step 2: the phone's seed INSERT", user("INSERT", 0, "Ann", 3), "361fd779dbf72311f02211bed60bca4c1fd2a72b9f8dd6a3a8d62d921ad0c69a"},
		{"§7 step 4: the laptop's UPDATE", user("UPDATE", 1, "Ann Lee", 4), "51591ac181cc6899f14aad0ddd73ebe9583041cc52a279500e266a4e82ae6fb4"},
		{"§7 step 10: a DELETE hashes a null payload", v1Row{Table: "users", Key: annID, Op: "DELETE", Base: 3}, "5e07a0e9691c998aaa41e1e7010f1feaa44fd84fa9a35dc8ec720b81a120f992"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := requestHash("business", []v1Row{tc.row}); got != tc.want {
				t.Errorf("hash = %s, want %s; input:\n%s", got, tc.want, appendRequestHashInput(nil, "business", []v1Row{tc.row}))
			}
		})
	}
	if got := string(appendRequestHashInput(nil, "business", []v1Row{cases[0].row})); got != annInsert || len(got) != 267 {
		t.Errorf("§7 step 2 input (%d bytes) =\n%s\nwant the 267 bytes\n%s", len(got), got, annInsert)
	}
}

func TestRequestHash_VectorAFromAnUnsortedPayload(t *testing.T) {
	// The payload as a client might hold it, members unsorted: the canonical
	// form sorts them, and numbers travel as strings.
	payload, err := appendCanonical(nil, json.RawMessage(`{"small_count":"-32768","score":"5e-324","ratio":"1.2345678901234567",
		"large_count":"9007199254740993","id":"n-1","enabled":"1","count":"2147483647","amount":"1234567890.123456789"}`))
	if err != nil {
		t.Fatal(err)
	}
	row := v1Row{Table: "numeric_values", Key: "n-1", Op: "INSERT", Payload: payload}
	input := appendRequestHashInput(nil, "business", []v1Row{row})
	if len(input) != 314 {
		t.Errorf("vector A input is %d bytes, want 314:\n%s", len(input), input)
	}
	if got, want := requestHash("business", []v1Row{row}), "ce9f4105cdda62a7705ef32476ebb3b3737fb44866a4bf4eedfeaaa571eb443a"; got != want {
		t.Errorf("vector A hash = %s, want %s", got, want)
	}
}

func TestBundleHasher_Vectors(t *testing.T) {
	cases := []struct {
		name string
		rows []string // wire rows as a server may send them: any member order, any valid escaping
		want string
	}{
		{"§7 bundle 1, read back as committed rows", []string{
			`{"schema":"business","table":"users","key":{"id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"},"op":"INSERT","row_version":1,
			  "payload":{"active":true,"email":"ann@example.com","id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","name":"Ann","visits":"3"}}`,
		}, "2f7b2f65081f9904a2ef24a28138d4c58abca00cc41dfc5ebcbf90c1f1c57af7"},
		{"§7 bundle 2, members in another order", []string{
			`{"payload":{"visits":"4","name":"Ann Lee","id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","email":"ann@example.com","active":true},
			  "row_version":2,"op":"UPDATE","key":{"id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"},"table":"users","schema":"business"}`,
		}, "090ec5fe1f8b552188a629f09afffc720ee145a5cf22aa6e875733f15d670388"},
		{"§7 bundle 3", []string{
			`{"schema":"business","table":"users","key":{"id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"},"op":"UPDATE","row_version":3,
			  "payload":{"active":true,"email":"ann@work.example","id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","name":"Ann Lee","visits":"4"}}`,
		}, "5cb4db83979ca754e8a3b1e46b7656eea77c18e6a885f0396764180411742034"},
		{"vector B: the server's typed payload", []string{
			`{"schema":"business","table":"numeric_values","key":{"id":"n-1"},"op":"INSERT","row_version":1,
			  "payload":{"amount":"1234567890.1234567890","count":"2147483647","enabled":true,"id":"n-1","large_count":"9007199254740993","ratio":"1.2345678806304932","score":"5e-324","small_count":"-32768"}}`,
		}, "92fe0879f22de1e60f1bec5655f94cc641389e2ba5624666402a2a5cdd7150e3"},
		{"vector C: a DELETE without a payload member", []string{
			`{"schema":"business","table":"users","key":{"id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"},"op":"DELETE","row_version":4}`,
		}, "353abf1d6fb0e04889327d75278438526f0fa1868c489fb6385b050f60251f8b"},
		{"vector D: escapes as Go's encoder writes them, two rows", []string{
			`{"schema":"business","table":"posts","key":{"id":"0b7e3f1a-2c4d-4e6f-8a1b-3c5d7e9f1a2b"},"op":"INSERT","row_version":4,
			  "payload":{"author_id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","body":"Tab\there \"quoted\" \u00e9 \u20ac","id":"0b7e3f1a-2c4d-4e6f-8a1b-3c5d7e9f1a2b","score":"-0.5","title":"Hello"}}`,
			`{"schema":"business","table":"users","key":{"id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"},"op":"DELETE","row_version":4,"payload":null}`,
		}, "6e786150ebdd49ae747ae8a4f2abd71d696440ede84ad3d4c91691c832b9a83c"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h bundleHasher
			for _, raw := range tc.rows {
				var r wireRow
				if err := json.Unmarshal([]byte(raw), &r); err != nil {
					t.Fatal(err)
				}
				if err := h.add(r); err != nil {
					t.Fatal(err)
				}
			}
			if got := h.sum(); got != tc.want {
				t.Errorf("bundle_hash = %s, want %s; input:\n%s]", got, tc.want, h.buf)
			}
		})
	}
}

func TestBundleHasher_RefusesNumbersInPayloads(t *testing.T) {
	var h bundleHasher
	err := h.add(wireRow{Schema: "app", Table: "users", Key: json.RawMessage(`{"id":"x"}`), Op: "INSERT", RowVersion: 1,
		Payload: json.RawMessage(`{"id":"x","visits":3}`)})
	if !errors.Is(err, errNumber) {
		t.Errorf("error = %v, want errNumber: July payloads carry numbers as strings", err)
	}
}

func TestAppendJCSString_EscapesOnlyWhatRFC8785Escapes(t *testing.T) {
	cases := map[string]string{
		"plain":         `"plain"`,
		"q\"b\\":        `"q\"b\\"`,
		"\b\t\n\f\r":    `"\b\t\n\f\r"`,
		"\x00\x1f\x7f":  `"\u0000\u001f` + "\x7f" + `"`,
		"<>&/ é\u2028😀": `"<>&/ é` + "\u2028" + `😀"`,
	}
	for in, want := range cases {
		if got := string(appendJCSString(nil, in)); got != want {
			t.Errorf("appendJCSString(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestCompareUTF16_SortsSurrogatesBelowHighBMP(t *testing.T) {
	names := []string{"\uffff", "b", "😀", "a", "ab", "\ue000"}
	slices.SortFunc(names, compareUTF16)
	want := []string{"a", "ab", "b", "😀", "\ue000", "\uffff"}
	if !slices.Equal(names, want) {
		t.Errorf("sorted = %q, want %q (UTF-16 order, not UTF-8 byte order)", names, want)
	}
}

func TestAppendCanonical(t *testing.T) {
	cases := []struct{ in, want, wantErr string }{
		{in: ` { "b" : [ true , null, {"z":"1","a":[]} ] , "a" : {} , "\u00e9":"x"} `, want: `{"a":{},"b":[true,null,{"a":[],"z":"1"}],"é":"x"}`},
		{in: `"\u003c\/\u2028\ud83d\ude00\t"`, want: `"</` + "\u2028" + `😀\t"`},
		{in: `{"\ufb01":"1","😀":"2"}`, want: `{"😀":"2","ﬁ":"1"}`},
		{in: `{"a":"x","a":"y"}`, wantErr: "duplicate member"},
		{in: `{"a":1.5}`, wantErr: "JSON number"},
		{in: `{"a":"x"} {}`, wantErr: "data after the value"},
		{in: `{"a":"x",}`, wantErr: "member name expected"},
		{in: `["a" "b"]`, wantErr: `']' expected`},
		{in: `{"a" "b"}`, wantErr: `':' expected`},
		{in: `"open`, wantErr: "unterminated"},
		{in: `nul`, wantErr: "invalid JSON"},
	}
	for _, tc := range cases {
		got, err := appendCanonical(nil, []byte(tc.in))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("appendCanonical(%s) error = %v, want one containing %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("appendCanonical(%s) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}
