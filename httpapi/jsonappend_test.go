package httpapi

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

// jsonPieces are the fragments random test strings are built from: plain text, every class of
// character encoding/json escapes, multi-byte runes and broken UTF-8.
var jsonPieces = []string{
	"a", "Ann Lee", " ", "\"", "\\", "/", "<", ">", "&", "\n", "\r", "\t", "\b", "\f", "\x00", "\x01",
	"\x1f", "\x7f", "é", "日本", "😀", "\u2028", "\u2029", "\u2027", "\u202a", "\ufffd", "\xff", "\xc0",
	"\xe2\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\x80",
}

func randomJSONString(rng *rand.Rand) string {
	var sb strings.Builder
	for n := rng.IntN(12); n > 0; n-- {
		sb.WriteString(jsonPieces[rng.IntN(len(jsonPieces))])
	}
	return sb.String()
}

// checkAppendString compares appendString with json.Marshal for s.
func checkAppendString(t *testing.T, s string) {
	t.Helper()
	want, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("json.Marshal(%q): %v", s, err)
	}
	got := appendString([]byte("prefix"), s)
	if !bytes.HasPrefix(got, []byte("prefix")) {
		t.Fatalf("appendString(%q) lost the buffer's prefix: %q", s, got)
	}
	got = got[len("prefix"):]
	if !bytes.Equal(got, want) {
		t.Fatalf("appendString(%q) = %s, encoding/json writes %s", s, got, want)
	}
	if !json.Valid(got) {
		t.Fatalf("appendString(%q) = %s is not valid JSON", s, got)
	}
}

func TestAppendString_MatchesEncodingJSON(t *testing.T) {
	for _, s := range append([]string{""}, jsonPieces...) {
		checkAppendString(t, s)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		checkAppendString(t, randomJSONString(rng))
	}
	for c := range 256 { // every single byte, alone and between ASCII letters
		checkAppendString(t, string([]byte{byte(c)}))
		checkAppendString(t, "x"+string([]byte{byte(c)})+"y")
	}
}

func TestAppendString_InvalidUTF8BecomesReplacementCharacter(t *testing.T) {
	got := string(appendString(nil, "a\xffb\xe2\x80"))
	if want := `"a\ufffdb\ufffd\ufffd"`; got != want {
		t.Fatalf("appendString = %s, want %s (one replacement per invalid byte)", got, want)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range jsonPieces {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkAppendString(t, s) })
}
