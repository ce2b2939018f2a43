package jcs

import (
	"slices"
	"testing"
)

// TestMembers walks the members of canonical objects holding every kind of value, nested
// containers, escapes in names and strings, and delimiters inside strings.
func TestMembers(t *testing.T) {
	tests := []struct {
		in   string
		want [][2]string
	}{
		{`{}`, nil},
		{`{"a":1}`, [][2]string{{"a", "1"}}},
		{` { "b" : [1, {"x": "]}"}, []], "a": null, "c":"q\"uo,te}" , "d":{"e":{"f":[true,false]}},"g":-1.5e-7} `,
			[][2]string{{"a", "null"}, {"b", `[1,{"x":"]}"},[]]`}, {"c", `"q\"uo,te}"`}, {"d", `{"e":{"f":[true,false]}}`}, {"g", "-1.5e-7"}}},
		{`{"n\"a\\me":"v\\","z":{}}`, [][2]string{{`n\"a\\me`, `"v\\"`}, {"z", "{}"}}},
		{`{"k":"","l":[],"m":0}`, [][2]string{{"k", `""`}, {"l", "[]"}, {"m", "0"}}},
	}
	for _, tt := range tests {
		canonical, err := Canonicalize([]byte(tt.in))
		if err != nil {
			t.Fatalf("Canonicalize(%s): %v", tt.in, err)
		}
		var got [][2]string
		for name, value := range Members(canonical) {
			got = append(got, [2]string{string(name), string(value)})
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Members(%s) = %q, want %q", canonical, got, tt.want)
		}
	}
}

// TestMembers_NotObject yields nothing for canonical text that is not an object.
func TestMembers_NotObject(t *testing.T) {
	for _, in := range []string{`[{"a":1}]`, `"{\"a\":1}"`, `null`, `3`, ``} {
		for name := range Members([]byte(in)) {
			t.Errorf("Members(%s) yielded %q", in, name)
		}
	}
}

// TestMembers_Break stops when the loop body breaks.
func TestMembers_Break(t *testing.T) {
	n := 0
	for range Members([]byte(`{"a":1,"b":2,"c":3}`)) {
		n++
		if n == 2 {
			break
		}
	}
	if n != 2 {
		t.Fatalf("iterated %d members after break at 2", n)
	}
}

// TestMembers_Allocs walks a canonical object without allocating.
func TestMembers_Allocs(t *testing.T) {
	canonical := []byte(`{"a":"x","b":[1,2],"c":{"d":null}}`)
	allocs := testing.AllocsPerRun(100, func() {
		for range Members(canonical) {
		}
	})
	if allocs != 0 {
		t.Fatalf("Members allocates %v times per walk", allocs)
	}
}
