package jcs

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

// TestAppendNumber_RFC8785 holds the binary64 samples of RFC 8785 Appendix B and the spellings the
// protocol names (docs/protocol-v1.md §4.1).
func TestAppendNumber_RFC8785(t *testing.T) {
	tests := []struct {
		bits uint64
		want string
	}{
		{0x0000000000000000, "0"},
		{0x8000000000000000, "0"},
		{0x0000000000000001, "5e-324"},
		{0x8000000000000001, "-5e-324"},
		{0x7fefffffffffffff, "1.7976931348623157e+308"},
		{0xffefffffffffffff, "-1.7976931348623157e+308"},
		{0x4340000000000000, "9007199254740992"},
		{0xc340000000000000, "-9007199254740992"},
		{0x4430000000000000, "295147905179352830000"},
		{0x44b52d02c7e14af5, "9.999999999999997e+22"},
		{0x44b52d02c7e14af6, "1e+23"},
		{0x44b52d02c7e14af7, "1.0000000000000001e+23"},
		{0x444b1ae4d6e2ef4e, "999999999999999700000"},
		{0x444b1ae4d6e2ef4f, "999999999999999900000"},
		{0x444b1ae4d6e2ef50, "1e+21"},
		{0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
		{0x3eb0c6f7a0b5ed8d, "0.000001"},
		{0x41b3de4355555553, "333333333.3333332"},
		{0x41b3de4355555554, "333333333.33333325"},
		{0x41b3de4355555555, "333333333.3333333"},
		{0x41b3de4355555556, "333333333.3333334"},
		{0x41b3de4355555557, "333333333.33333343"},
		{0xbecbf647612f3696, "-0.0000033333333333333333"},
		{0x43143ff3c1cb0959, "1424953923781206.2"},
	}
	for _, tt := range tests {
		f := math.Float64frombits(tt.bits)
		if got := string(AppendNumber(nil, f)); got != tt.want {
			t.Errorf("AppendNumber(%#016x) = %s, want %s", tt.bits, got, tt.want)
		}
	}
}

func TestAppendNumber_Thresholds(t *testing.T) {
	tests := []struct {
		f    float64
		want string
	}{
		{1, "1"},
		{0.5, "0.5"},
		{-0.5, "-0.5"},
		{1e21, "1e+21"},
		{1e20, "100000000000000000000"},
		{-1e21, "-1e+21"},
		{1e-6, "0.000001"},
		{1e-7, "1e-7"},
		{1.5e-7, "1.5e-7"},
		{1e-10, "1e-10"},
		{1e100, "1e+100"},
		{123e-20, "1.23e-18"},
		{float64(float32(1.2345678901234567)), "1.2345678806304932"},
		{math.NaN(), "null"},
		{math.Inf(1), "null"},
		{math.Inf(-1), "null"},
	}
	for _, tt := range tests {
		if got := string(AppendNumber([]byte("x"), tt.f)); got != "x"+tt.want {
			t.Errorf("AppendNumber(%v) = %s, want x%s", tt.f, got, tt.want)
		}
	}
}

// TestAppendNumber_RoundTrips checks, over a fixed pseudo-random sample of bit patterns, that every
// finite value's spelling parses back to the same value and carries the same significant digits
// as Go's shortest form.
func TestAppendNumber_RoundTrips(t *testing.T) {
	x := uint64(0x9e3779b97f4a7c15)
	for range 200000 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		f := math.Float64frombits(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		s := string(AppendNumber(nil, f))
		back, err := strconv.ParseFloat(s, 64)
		if err != nil || back != f {
			t.Fatalf("AppendNumber(%#016x) = %s parses back to %v, %v", x, s, back, err)
		}
		if got, want := significand(s), significand(strconv.FormatFloat(f, 'e', -1, 64)); got != want {
			t.Fatalf("AppendNumber(%#016x) = %s has digits %s, want %s", x, s, got, want)
		}
	}
}

// significand returns the significant digits of a decimal spelling: no sign, point, exponent,
// leading or trailing zeros.
func significand(s string) string {
	if e := strings.IndexAny(s, "eE"); e >= 0 {
		s = s[:e]
	}
	s = strings.NewReplacer("-", "", ".", "").Replace(s)
	return strings.Trim(s, "0")
}

func TestAppendString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"plain", `"plain"`},
		{"q\"b\\s/", `"q\"b\\s/"`},
		{"\b\t\n\f\r", `"\b\t\n\f\r"`},
		{"\x00\x01\x0b\x1f", `"\u0000\u0001\u000b\u001f"`},
		{"\x7f<>&\u2028\u2029", "\"\x7f<>&\u2028\u2029\""},
		{"é €😀", "\"é €😀\""},
		{"bad\xffbyte", "\"bad\ufffdbyte\""},
		{"\xed\xa0\x80", "\"\ufffd\ufffd\ufffd\""},
	}
	for _, tt := range tests {
		if got := string(AppendString([]byte("x"), tt.in)); got != "x"+tt.want {
			t.Errorf("AppendString(%q) = %s, want x%s", tt.in, got, tt.want)
		}
	}
}

// TestAppendString_AgreesWithCanonicalize: every escaped character canonicalises to what
// AppendString writes for it.
func TestAppendString_AgreesWithCanonicalize(t *testing.T) {
	for r := rune(0); r < 0x3000; r++ {
		if r >= 0xd800 && r <= 0xdfff {
			continue
		}
		in := []byte(`"\u` + strconv.FormatInt(0x10000+int64(r), 16)[1:] + `"`)
		got, err := Canonicalize(in)
		if err != nil {
			t.Fatalf("Canonicalize(%s): %v", in, err)
		}
		if want := AppendString(nil, string(r)); string(got) != string(want) {
			t.Fatalf("U+%04X: Canonicalize gives %s, AppendString %s", r, got, want)
		}
	}
}
