package auth

import (
	"errors"
	"testing"
)

func TestBearerToken(t *testing.T) {
	tests := []struct {
		name    string
		header  string
		want    string
		wantErr error
	}{
		{"token", "Bearer x", "x", nil},
		{"jwt shaped token", "Bearer aaa.bbb.ccc", "aaa.bbb.ccc", nil},
		{"missing", "", "", ErrMissingHeader},
		{"lower-case scheme", "bearer x", "", ErrNotBearer},
		{"upper-case scheme", "BEARER x", "", ErrNotBearer},
		{"two spaces", "Bearer  x", "", ErrNotBearer},
		{"space inside token", "Bearer x y", "", ErrNotBearer},
		{"trailing space", "Bearer x ", "", ErrNotBearer},
		{"other scheme", "Basic x", "", ErrNotBearer},
		{"empty token", "Bearer ", "", ErrNotBearer},
		{"scheme only", "Bearer", "", ErrNotBearer},
		{"no space", "Bearerx", "", ErrNotBearer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := BearerToken(tc.header)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("BearerToken(%q) error = %v, want %v", tc.header, err, tc.wantErr)
			}
			if got != tc.want {
				t.Fatalf("BearerToken(%q) = %q, want %q", tc.header, got, tc.want)
			}
		})
	}
}
