package auth

import (
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestMint_RoundTripsThroughVerify(t *testing.T) {
	v := newVerifier(t, Config{Secret: testSecret})
	before := time.Now().Truncate(time.Second)

	token, err := Mint(testSecret, "alice", "phone-7f3a", 5*time.Minute)
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	got, err := v.Verify(t.Context(), token)
	if err != nil {
		t.Fatalf("Verify minted token: %v", err)
	}
	if got.User != "alice" || got.Source != "phone-7f3a" {
		t.Fatalf("Verify = %+v, want alice on phone-7f3a", got)
	}
	if earliest, latest := before.Add(5*time.Minute), time.Now().Add(5*time.Minute); got.Expires.Before(earliest) || got.Expires.After(latest) {
		t.Fatalf("Expires = %v, want within [%v, %v]", got.Expires, earliest, latest)
	}

	tok, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		t.Fatalf("parse minted token: %v", err)
	}
	if alg := tok.Method.Alg(); alg != "HS256" {
		t.Fatalf("alg = %s, want HS256", alg)
	}
	c := tok.Claims.(jwt.MapClaims)
	for name, get := range map[string]func() (*jwt.NumericDate, error){"iat": c.GetIssuedAt, "nbf": c.GetNotBefore} {
		d, err := get()
		if err != nil || d == nil || d.Before(before) || d.After(time.Now()) {
			t.Fatalf("claim %s = %v (%v), want the minting time", name, d, err)
		}
	}
}

func TestMint_WithoutTTLHasNoExp(t *testing.T) {
	token, err := Mint(testSecret, "alice", "phone-7f3a", 0)
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	strict := newVerifier(t, Config{Secret: testSecret})
	if _, err := strict.Verify(t.Context(), token); !errors.Is(err, jwt.ErrTokenRequiredClaimMissing) {
		t.Fatalf("Verify without AllowNoExp = %v, want a missing exp", err)
	}
	lenient := newVerifier(t, Config{Secret: testSecret, AllowNoExp: true})
	got, err := lenient.Verify(t.Context(), token)
	if err != nil {
		t.Fatalf("Verify with AllowNoExp: %v", err)
	}
	if !got.Expires.IsZero() {
		t.Fatalf("Expires = %v, want zero", got.Expires)
	}
}

func TestMint_RejectsBadInput(t *testing.T) {
	tests := []struct {
		name         string
		secret       []byte
		user, source string
		ttl          time.Duration
	}{
		{"empty secret", nil, "alice", "phone", time.Minute},
		{"empty user", testSecret, "", "phone", time.Minute},
		{"empty source", testSecret, "alice", "", time.Minute},
		{"negative ttl", testSecret, "alice", "phone", -time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if token, err := Mint(tc.secret, tc.user, tc.source, tc.ttl); err == nil {
				t.Fatalf("Mint returned token %q, want an error", token)
			}
		})
	}
}
