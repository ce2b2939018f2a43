package wire

import (
	"strings"
	"testing"
)

func TestValidSourceID(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"5b0e8f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b", true},
		{"!", true},
		{"~", true},
		{"Phone_1:{x}", true},
		{strings.Repeat("a", 256), true},
		{"", false},
		{strings.Repeat("a", 257), false},
		{"a b", false},
		{"a\tb", false},
		{" a", false},
		{"a\x7f", false},
		{"é", false},
		{"a\x00", false},
	}
	for _, tt := range tests {
		if got := ValidSourceID(tt.s); got != tt.want {
			t.Errorf("ValidSourceID(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func TestValidUUID(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01", true},
		{"00000000-0000-0000-0000-000000000000", true},
		{"6f0d3c4e-8f0b-1c1e-0a57-2f1e3b7c9d01", true}, // any version and variant
		{"6F0D3C4E-8F0B-4C1E-9A57-2F1E3B7C9D01", false},
		{"6f0d3c4e8f0b4c1e9a572f1e3b7c9d01", false},
		{"{6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01}", false},
		{"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d0", false},
		{"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01 ", false},
		{"6f0d3c4e_8f0b-4c1e-9a57-2f1e3b7c9d01", false},
		{"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d0g", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := ValidUUID(tt.s); got != tt.want {
			t.Errorf("ValidUUID(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func TestValidHash(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"361fd779dbf72311f02211bed60bca4c1fd2a72b9f8dd6a3a8d62d921ad0c69a", true},
		{strings.Repeat("0", 64), true},
		{"361FD779DBF72311F02211BED60BCA4C1FD2A72B9F8DD6A3A8D62D921AD0C69A", false},
		{strings.Repeat("0", 63), false},
		{strings.Repeat("0", 65), false},
		{strings.Repeat("g", 64), false},
		{"", false},
	}
	for _, tt := range tests {
		if got := ValidHash(tt.s); got != tt.want {
			t.Errorf("ValidHash(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func TestNewUUID_IsCanonicalRandomVersion4(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		u := NewUUID()
		if !ValidUUID(u) {
			t.Fatalf("NewUUID() = %q, not a canonical UUID", u)
		}
		if u[14] != '4' || !strings.ContainsRune("89ab", rune(u[19])) {
			t.Fatalf("NewUUID() = %q, not version 4 with the RFC 9562 variant", u)
		}
		if seen[u] {
			t.Fatalf("NewUUID() repeated %q", u)
		}
		seen[u] = true
	}
}
