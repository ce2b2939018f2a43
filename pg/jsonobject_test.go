package pg

import (
	"bytes"
	"encoding/json"
	"maps"
	"testing"
	"unicode/utf8"
)

// FuzzEachField checks eachField against encoding/json on every compacted object: the same
// members, the last of duplicated keys winning, and never a panic on anything else.
func FuzzEachField(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"a":1}`, `{"a":"x","b":null,"c":true,"d":false}`, `{"a":{"b":[1,{"c":"}"}]},"d":[]}`,
		`{"q\"k":"v\\","k":"\"}"}`, `{"a":1,"a":2}`, `{"\u00e9":"é","e\u0301":-1.5e3}`, `{"a":"[{"}`,
		`{"a"}`, `{"a":`, `[1]`, `{"a":1,}`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var compact bytes.Buffer
		if json.Compact(&compact, data) != nil || len(bytes.TrimSpace(data)) == 0 || bytes.TrimSpace(data)[0] != '{' {
			_ = eachField(data, func(string, []byte) {}) // must not panic
			return
		}
		if !utf8.Valid(data) {
			t.Skip("the store refuses payloads that are not UTF-8 before walking them")
		}
		var want map[string]json.RawMessage
		if err := json.Unmarshal(compact.Bytes(), &want); err != nil {
			t.Fatalf("encoding/json refuses %s: %v", compact.Bytes(), err)
		}
		got := map[string]json.RawMessage{}
		if err := eachField(compact.Bytes(), func(k string, v []byte) { got[k] = v }); err != nil {
			t.Fatalf("eachField(%s): %v", compact.Bytes(), err)
		}
		if !maps.EqualFunc(got, want, func(a, b json.RawMessage) bool { return bytes.Equal(a, b) }) {
			t.Fatalf("eachField(%s) = %v, want %v", compact.Bytes(), got, want)
		}
	})
}
