package jcs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
)

// FuzzCanonicalize checks the properties every canonical form has: Canonicalize never panics, and
// when it accepts an input its output is valid JSON, is its own canonical form, and decodes to the
// same value as the input (numbers compared as binary64). The seed corpus is in
// testdata/fuzz/FuzzCanonicalize and replays with every go test.
func FuzzCanonicalize(f *testing.F) {
	for _, v := range vectors {
		f.Add([]byte(v.input))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Canonicalize(in)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("Canonicalize(%q) = %q, not valid JSON", in, out)
		}
		again, err := Canonicalize(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("Canonicalize(%q) = %q, which canonicalises to %q, %v", in, out, again, err)
		}
		want, err := decode(in)
		if err != nil {
			t.Fatalf("encoding/json refuses %q, which Canonicalize accepted: %v", in, err)
		}
		got, err := decode(out)
		if err != nil {
			t.Fatalf("encoding/json refuses output %q: %v", out, err)
		}
		if msg := sameValue(want, got); msg != "" {
			t.Fatalf("Canonicalize(%q) = %q changes the value: %s", in, out, msg)
		}
	})
}

func decode(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// sameValue compares two decoded JSON values, numbers by their binary64 value; it returns "" when
// they are equal and a description of the first difference otherwise.
func sameValue(a, b any) string {
	switch a := a.(type) {
	case json.Number:
		bn, ok := b.(json.Number)
		if !ok {
			return fmt.Sprintf("number %s became %T", a, b)
		}
		fa, erra := strconv.ParseFloat(string(a), 64)
		fb, errb := strconv.ParseFloat(string(bn), 64)
		if erra != nil || errb != nil || fa != fb {
			return fmt.Sprintf("number %s became %s", a, bn)
		}
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok || len(a) != len(bm) {
			return fmt.Sprintf("object of %d members became %T", len(a), b)
		}
		for k, av := range a {
			bv, ok := bm[k]
			if !ok {
				return fmt.Sprintf("member %q lost", k)
			}
			if msg := sameValue(av, bv); msg != "" {
				return msg
			}
		}
	case []any:
		ba, ok := b.([]any)
		if !ok || len(a) != len(ba) {
			return fmt.Sprintf("array of %d elements became %T", len(a), b)
		}
		for i := range a {
			if msg := sameValue(a[i], ba[i]); msg != "" {
				return msg
			}
		}
	default:
		if a != b {
			return fmt.Sprintf("%#v became %#v", a, b)
		}
	}
	return ""
}
