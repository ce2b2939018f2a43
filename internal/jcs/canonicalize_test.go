package jcs

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// vectors are the canonical forms of docs/protocol-v1.md §4.5, each fed in a non-canonical
// spelling: members reordered, whitespace, escapes (\u00e9, \u20AC, \/, \u0031) where the
// canonical form has literal characters.
var vectors = []struct {
	name, input, canonical, sha256 string
}{
	{
		name: "A request hash input",
		input: "[ {\"table\" : \"numeric_values\",\n\t\"schema\":\"business\", \"row_ordinal\":\"0\",\r\n" +
			` "payload": {"small_count":"-32768","score":"5e-324","ratio":"1.2345678901234567",` +
			` "large_count":"9007199254740993","id":"n-1","enabled":"\u0031","count":"2147483647",` +
			` "amount":"1234567890.123456789"}, "op":"INSERT", "key":{"id":"n-\u0031"}, "base_row_version":"0"} ]`,
		canonical: `[{"base_row_version":"0","key":{"id":"n-1"},"op":"INSERT","payload":{"amount":"1234567890.123456789","count":"2147483647","enabled":"1","id":"n-1","large_count":"9007199254740993","ratio":"1.2345678901234567","score":"5e-324","small_count":"-32768"},"row_ordinal":"0","schema":"business","table":"numeric_values"}]`,
		sha256:    "ce9f4105cdda62a7705ef32476ebb3b3737fb44866a4bf4eedfeaaa571eb443a",
	},
	{
		name: "B bundle hash input",
		input: `[{"row_version":"1","row_ordinal":"0","op":"INSERT","table":"numeric_values","schema":"business",` +
			`"payload":{"enabled":true,"amount":"1234567890.1234567890","count":"2147483647","id":"n-1",` +
			`"small_count":"-32768","large_count":"9007199254740993","score":"5e-324","ratio":"1.2345678806304932"},` +
			"\n\"key\":\t{ \"id\" : \"n-1\" }}]",
		canonical: `[{"key":{"id":"n-1"},"op":"INSERT","payload":{"amount":"1234567890.1234567890","count":"2147483647","enabled":true,"id":"n-1","large_count":"9007199254740993","ratio":"1.2345678806304932","score":"5e-324","small_count":"-32768"},"row_ordinal":"0","row_version":"1","schema":"business","table":"numeric_values"}]`,
		sha256:    "92fe0879f22de1e60f1bec5655f94cc641389e2ba5624666402a2a5cdd7150e3",
	},
	{
		name:      "C delete",
		input:     ` [ { "payload" : null , "op" : "DELETE" , "key" : { "id" : "6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01" } , "table":"users","schema":"business","row_version":"4","row_ordinal":"0" } ] `,
		canonical: `[{"key":{"id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"},"op":"DELETE","payload":null,"row_ordinal":"0","row_version":"4","schema":"business","table":"users"}]`,
		sha256:    "353abf1d6fb0e04889327d75278438526f0fa1868c489fb6385b050f60251f8b",
	},
	{
		name: "D escapes and non-ASCII",
		input: `[{"table":"posts","schema":"business","row_version":"4","row_ordinal":"0",` +
			`"payload":{"title":"Hell\u006f","score":"-0.5","id":"0b7e3f1a-2c4d-4e6f-8a1b-3c5d7e9f1a2b",` +
			`"body":"Tab\u0009here \"quoted\" \u00e9 \u20AC","author_id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"},` +
			`"op":"INSERT","key":{"id":"0b7e3f1a-2c4d-4e6f-8a1b-3c5d7e9f1a2b"}},` +
			`{"table":"users","schema":"business","row_version":"4","row_ordinal":"1","payload":null,"op":"DELETE",` +
			`"key":{"id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"}}]`,
		canonical: "[{\"key\":{\"id\":\"0b7e3f1a-2c4d-4e6f-8a1b-3c5d7e9f1a2b\"},\"op\":\"INSERT\",\"payload\":{\"author_id\":\"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01\",\"body\":\"Tab\\there \\\"quoted\\\" é €\",\"id\":\"0b7e3f1a-2c4d-4e6f-8a1b-3c5d7e9f1a2b\",\"score\":\"-0.5\",\"title\":\"Hello\"},\"row_ordinal\":\"0\",\"row_version\":\"4\",\"schema\":\"business\",\"table\":\"posts\"},{\"key\":{\"id\":\"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01\"},\"op\":\"DELETE\",\"payload\":null,\"row_ordinal\":\"1\",\"row_version\":\"4\",\"schema\":\"business\",\"table\":\"users\"}]",
		sha256:    "6e786150ebdd49ae747ae8a4f2abd71d696440ede84ad3d4c91691c832b9a83c",
	},
}

func TestCanonicalize_ProtocolVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			for _, in := range []string{v.input, v.canonical} {
				got, err := Canonicalize([]byte(in))
				if err != nil {
					t.Fatalf("Canonicalize(%s): %v", in, err)
				}
				if string(got) != v.canonical {
					t.Fatalf("Canonicalize(%s)\n got %s\nwant %s", in, got, v.canonical)
				}
				sum := sha256.Sum256(got)
				if h := hex.EncodeToString(sum[:]); h != v.sha256 {
					t.Fatalf("sha256 = %s, want %s", h, v.sha256)
				}
			}
		})
	}
}

// TestCanonicalize_RFC8785Example is the example of RFC 8785 §3.2.4.
func TestCanonicalize_RFC8785Example(t *testing.T) {
	in := `{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`
	want := `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`
	got, err := Canonicalize([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// TestCanonicalize_SortsByUTF16CodeUnits is the sorting example of RFC 8785 §3.2.3: U+1F600 (a
// surrogate pair D83D DE00) sorts before U+FB33, although its UTF-8 bytes sort after.
func TestCanonicalize_SortsByUTF16CodeUnits(t *testing.T) {
	in := `{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}`
	want := "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\"," +
		"\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\uFB33\":\"Hebrew Letter Dalet With Dagesh\"}"
	got, err := Canonicalize([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestCompareUTF16(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"a", "", 1},
		{"a", "ab", -1},
		{"b", "ab", 1},
		{"\U0001F600", "\uFB33", -1}, // D83D < FB33
		{"\uFFFF", "\U00010000", 1},  // FFFF > D800
		{"\uD7FF", "\U00010000", -1}, // D7FF < D800
		{"x\U0001F600", "x\U0001F601", -1},
		{"\U00010400", "\U0001F600", -1},
		{"é", "e", 1},
	}
	for _, tt := range tests {
		if got := compareUTF16([]byte(tt.a), []byte(tt.b)); got != tt.want {
			t.Errorf("compareUTF16(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := compareUTF16([]byte(tt.b), []byte(tt.a)); got != -tt.want {
			t.Errorf("compareUTF16(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

func TestCanonicalize_Values(t *testing.T) {
	tests := []struct{ in, want string }{
		{`0`, `0`},
		{`-0`, `0`},
		{`-0.0e5`, `0`},
		{`1.0`, `1`},
		{`1E2`, `100`},
		{`123456789012345`, `123456789012345`},
		{`1234567890123456789`, `1234567890123456800`},
		{`9007199254740993`, `9007199254740992`},
		{`1e21`, `1e+21`},
		{`1e20`, `100000000000000000000`},
		{`0.000001`, `0.000001`},
		{`1e-7`, `1e-7`},
		{`1e-400`, `0`},
		{`-1e-400`, `0`},
		{`[1,"a",true,false,null,{},[]]`, `[1,"a",true,false,null,{},[]]`},
		{` { } `, `{}`},
		{`[ ]`, `[]`},
		{`"\u00e9\/<>&\u007f\u2028"`, "\"é/<>&\u007f\u2028\""},
		{`"\b\f\n\r\t\u0000\u001F\u0008"`, `"\b\f\n\r\t\u0000\u001f\b"`},
		{`"\uD834\uDD1E"`, `"𝄞"`},
		{`"\ufffd"`, "\"\ufffd\""},
		{`{"b":{"d":1,"c":2},"a":[{"z":0,"y":1}]}`, `{"a":[{"y":1,"z":0}],"b":{"c":2,"d":1}}`},
		{`{"a\u0000":1,"a":2}`, `{"a":2,"a\u0000":1}`},
	}
	for _, tt := range tests {
		got, err := Canonicalize([]byte(tt.in))
		if err != nil {
			t.Errorf("Canonicalize(%s): %v", tt.in, err)
			continue
		}
		if string(got) != tt.want {
			t.Errorf("Canonicalize(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestCanonicalize_Refuses(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{``, ErrSyntax},
		{`   `, ErrSyntax},
		{`{`, ErrSyntax},
		{`[1,]`, ErrSyntax},
		{`{"a":1,}`, ErrSyntax},
		{`{"a" 1}`, ErrSyntax},
		{`{1:1}`, ErrSyntax},
		{`01`, ErrTrailingData},
		{`+1`, ErrSyntax},
		{`1.`, ErrSyntax},
		{`.5`, ErrSyntax},
		{`1e`, ErrSyntax},
		{`1e+`, ErrSyntax},
		{`-`, ErrSyntax},
		{`NaN`, ErrSyntax},
		{`Infinity`, ErrSyntax},
		{`tru`, ErrSyntax},
		{`nul`, ErrSyntax},
		{`'a'`, ErrSyntax},
		{`"a`, ErrSyntax},
		{"\"a\tb\"", ErrSyntax},
		{`"\x"`, ErrSyntax},
		{`"\u12"`, ErrSyntax},
		{`"\u12G4"`, ErrSyntax},
		{"\xef\xbb\xbf{}", ErrSyntax},
		{`{} {}`, ErrTrailingData},
		{`1 2`, ErrTrailingData},
		{`{"a":1,"a":2}`, ErrDuplicateName},
		{`{"b":1,"a":2,"b":3}`, ErrDuplicateName},
		{`{"a":1,"\u0061":2}`, ErrDuplicateName},
		{`[{"x":{"k":1,"k":1}}]`, ErrDuplicateName},
		{`"\ud800"`, ErrInvalidUnicode},
		{`"\udc00"`, ErrInvalidUnicode},
		{`"\ud800x"`, ErrInvalidUnicode},
		{`"\ud800\u0041"`, ErrInvalidUnicode},
		{`"\ud800\ud800"`, ErrInvalidUnicode},
		{`{"\udfff":1}`, ErrInvalidUnicode},
		{"\"\xed\xa0\x80\"", ErrInvalidUnicode}, // U+D800 encoded in UTF-8
		{"\"\xff\"", ErrInvalidUnicode},
		{"\"\xc3\"", ErrInvalidUnicode},
		{"\"\xc0\xaf\"", ErrInvalidUnicode}, // overlong '/'
		{`1e309`, ErrNumberRange},
		{`-1e400`, ErrNumberRange},
		{`[` + strings.Repeat("123456789", 40) + `]`, ErrNumberRange},
		{strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), ErrTooDeep},
	}
	for _, tt := range tests {
		got, err := Canonicalize([]byte(tt.in))
		if !errors.Is(err, tt.want) {
			t.Errorf("Canonicalize(%q) = %q, %v; want error %v", tt.in, got, err, tt.want)
			continue
		}
		var e *Error
		if !errors.As(err, &e) || !strings.HasPrefix(err.Error(), "jcs: ") {
			t.Errorf("Canonicalize(%q): error %v is not a *jcs.Error", tt.in, err)
		}
	}
}

func TestCanonicalize_DepthLimitIsInclusive(t *testing.T) {
	in := strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)
	got, err := Canonicalize([]byte(in))
	if err != nil || string(got) != in {
		t.Fatalf("Canonicalize(%d nested arrays) = %.20s…, %v; want it unchanged", MaxDepth, got, err)
	}
}

func TestAppendCanonical_AppendsAndKeepsDstOnError(t *testing.T) {
	dst := []byte("prefix:")
	got, err := AppendCanonical(dst, []byte(`{"b":1, "a":2}`))
	if err != nil || string(got) != `prefix:{"a":2,"b":1}` {
		t.Fatalf("AppendCanonical = %q, %v", got, err)
	}
	got, err = AppendCanonical(dst, []byte(`{"b":1, "b":2}`))
	if err == nil || string(got) != "prefix:" {
		t.Fatalf("AppendCanonical(duplicate) = %q, %v; want dst unchanged and an error", got, err)
	}
}

func TestCanonicalize_ErrorNamesDuplicateAndOffset(t *testing.T) {
	_, err := Canonicalize([]byte(`{"id":1, "id":2}`))
	if err == nil || err.Error() != `jcs: duplicate object member name: "id" at offset 9` {
		t.Fatalf("error = %v", err)
	}
}

func BenchmarkCanonicalize(b *testing.B) {
	for _, bench := range []struct{ name, in string }{
		{"canonical", vectors[3].canonical},
		{"reordered", vectors[3].input},
	} {
		b.Run(bench.name, func(b *testing.B) {
			in := []byte(bench.in)
			dst := make([]byte, 0, 2*len(in))
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := AppendCanonical(dst[:0], in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
