package auth

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestVerify_HMAC(t *testing.T) {
	v := newVerifier(t, Config{Secret: testSecret})
	long256 := strings.Repeat("é", 128) // 256 bytes, 128 characters
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	alice := Identity{User: "alice", Source: "device-1a2b3c4d", Expires: exp}
	with := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := claimsFor(alice.User, alice.Source, exp)
		change(c)
		return c
	}
	hs256 := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, testSecret, "", c) }

	tests := []struct {
		name    string
		token   string
		want    Identity
		wantErr error // a jwt sentinel the error must wrap; nil for a valid token
	}{
		{"HS256", hs256(claimsFor(alice.User, alice.Source, exp)), alice, nil},
		{"HS384", sign(t, jwt.SigningMethodHS384, testSecret, "", claimsFor(alice.User, alice.Source, exp)), alice, nil},
		{"HS512", sign(t, jwt.SigningMethodHS512, testSecret, "", claimsFor(alice.User, alice.Source, exp)), alice, nil},
		{"nbf in the past", hs256(with(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(-time.Minute).Unix() })), alice, nil},
		{"other claims of any type are ignored", hs256(with(func(c jwt.MapClaims) {
			c["iss"], c["aud"], c["iat"], c["jti"] = 1, 2, "yesterday", map[string]any{}
		})), alice, nil},
		{"SUB does not override sub", signRawHS256(testSecret,
			fmt.Sprintf(`{"sub":"alice","SUB":"mallory","did":"device-1a2b3c4d","Did":"x","exp": %d}`, exp.Unix())), alice, nil},

		{"wrong secret", sign(t, jwt.SigningMethodHS256, []byte("another-secret"), "", validClaims()), Identity{}, jwt.ErrTokenSignatureInvalid},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", validClaims()), Identity{}, jwt.ErrTokenSignatureInvalid},
		{"RS256 without a jwks", sign(t, jwt.SigningMethodRS256, testRSAKey(), "", validClaims()), Identity{}, jwt.ErrTokenSignatureInvalid},
		{"expired a second ago", hs256(with(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Second).Unix() })), Identity{}, jwt.ErrTokenExpired},
		{"exp 0", hs256(with(func(c jwt.MapClaims) { c["exp"] = 0 })), Identity{}, jwt.ErrTokenExpired},
		{"nbf in the future", hs256(with(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Minute).Unix() })), Identity{}, jwt.ErrTokenNotValidYet},
		{"no exp", hs256(with(func(c jwt.MapClaims) { delete(c, "exp") })), Identity{}, jwt.ErrTokenRequiredClaimMissing},
		{"exp as a string", hs256(with(func(c jwt.MapClaims) { c["exp"] = fmt.Sprint(exp.Unix()) })), Identity{}, jwt.ErrInvalidType},
		{"nbf as null", hs256(with(func(c jwt.MapClaims) { c["nbf"] = nil })), Identity{}, jwt.ErrInvalidType},
		{"missing sub", hs256(with(func(c jwt.MapClaims) { delete(c, "sub") })), Identity{}, jwt.ErrTokenRequiredClaimMissing},
		{"empty sub", hs256(with(func(c jwt.MapClaims) { c["sub"] = "" })), Identity{}, jwt.ErrTokenRequiredClaimMissing},
		{"null sub", hs256(with(func(c jwt.MapClaims) { c["sub"] = nil })), Identity{}, jwt.ErrTokenRequiredClaimMissing},
		{"numeric sub", hs256(with(func(c jwt.MapClaims) { c["sub"] = 42 })), Identity{}, jwt.ErrInvalidType},
		{"upper-case SUB is not sub", signRawHS256(testSecret,
			fmt.Sprintf(`{"SUB":"alice","did":"device-1a2b3c4d","exp":%d}`, exp.Unix())), Identity{}, jwt.ErrTokenRequiredClaimMissing},
		{"missing did: no source", hs256(with(func(c jwt.MapClaims) { delete(c, "did") })), Identity{User: "alice", Expires: exp}, nil},
		{"empty did: no source", hs256(with(func(c jwt.MapClaims) { c["did"] = "" })), Identity{User: "alice", Expires: exp}, nil},
		{"sub of 256 bytes", hs256(with(func(c jwt.MapClaims) { c["sub"] = long256 })), Identity{User: long256, Source: alice.Source, Expires: exp}, nil},
		{"non-ASCII sub and did", hs256(with(func(c jwt.MapClaims) { c["sub"], c["did"] = "Zoë", "téléphone" })),
			Identity{User: "Zoë", Source: "téléphone", Expires: exp}, nil},
		{"sub of 257 bytes", hs256(with(func(c jwt.MapClaims) { c["sub"] = long256 + "x" })), Identity{}, jwt.ErrTokenInvalidClaims},
		{"sub of 3000 bytes", hs256(with(func(c jwt.MapClaims) { c["sub"] = strings.Repeat("a", 3000) })), Identity{}, jwt.ErrTokenInvalidClaims},
		{"NUL in sub", hs256(with(func(c jwt.MapClaims) { c["sub"] = "ali\x00ce" })), Identity{}, jwt.ErrTokenInvalidClaims},
		{"record separator in sub", hs256(with(func(c jwt.MapClaims) { c["sub"] = "\x1ealice" })), Identity{}, jwt.ErrTokenInvalidClaims},
		{"DEL in sub", hs256(with(func(c jwt.MapClaims) { c["sub"] = "alice\x7f" })), Identity{}, jwt.ErrTokenInvalidClaims},
		{"newline in did", hs256(with(func(c jwt.MapClaims) { c["did"] = "phone\n" })), Identity{}, jwt.ErrTokenInvalidClaims},
		{"NUL in did", hs256(with(func(c jwt.MapClaims) { c["did"] = "\x00" })), Identity{}, jwt.ErrTokenInvalidClaims},
		{"did of 257 bytes", hs256(with(func(c jwt.MapClaims) { c["did"] = long256 + "x" })), Identity{}, jwt.ErrTokenInvalidClaims},
		{"invalid UTF-8 in sub", signRawHS256(testSecret, fmt.Sprintf("{\"sub\":\"al\xffice\",\"exp\":%d}", exp.Unix())),
			Identity{}, jwt.ErrTokenMalformed},
		{"crit header", signWithHeader(t, map[string]any{"crit": []string{"exp"}, "exp": 1}, validClaims()), Identity{}, jwt.ErrTokenUnverifiable},
		{"empty crit header", signWithHeader(t, map[string]any{"crit": []string{}}, validClaims()), Identity{}, jwt.ErrTokenUnverifiable},
		{"crit b64", signWithHeader(t, map[string]any{"crit": []string{"b64"}, "b64": true}, validClaims()), Identity{}, jwt.ErrTokenUnverifiable},
		{"object did", hs256(with(func(c jwt.MapClaims) { c["did"] = map[string]any{"id": "x"} })), Identity{}, jwt.ErrInvalidType},
		{"claims not an object", signRawHS256(testSecret, `["alice"]`), Identity{}, jwt.ErrTokenMalformed},
		{"not a jwt", "not-a-jwt", Identity{}, jwt.ErrTokenMalformed},
		{"empty", "", Identity{}, jwt.ErrTokenMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := v.Verify(t.Context(), tc.token)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if !got.Expires.Equal(tc.want.Expires) || got.User != tc.want.User || got.Source != tc.want.Source {
					t.Fatalf("Verify = %+v, want %+v", got, tc.want)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Verify error = %v, want one wrapping %q", err, tc.wantErr)
			}
			if got != (Identity{}) {
				t.Fatalf("Verify returned identity %+v with error", got)
			}
			assertSafeError(t, err, tc.token, testSecret)
		})
	}
}

// The middleware copies the message into the 401 body, so its exact shape matters.
func TestVerify_ErrorMessageForClients(t *testing.T) {
	v := newVerifier(t, Config{Secret: testSecret})
	tests := []struct {
		name   string
		claims jwt.MapClaims
		want   string
	}{
		{"expired", claimsFor("alice", "d", time.Now().Add(-time.Minute)),
			"invalid token: token has invalid claims: token is expired"},
		{"no exp", jwt.MapClaims{"sub": "alice", "did": "d"},
			"invalid token: token has invalid claims: token is missing required claim: exp claim is required"},
		{"control character in sub", claimsFor("ali\x00ce", "d", time.Now().Add(time.Hour)),
			"invalid token: token has invalid claims: sub must be at most 256 bytes of UTF-8 without control characters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodHS256, testSecret, "", tc.claims))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Verify error = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestIdentity_RequireSource: a token without did is valid, and the v0 routes refuse it with the
// message they always gave.
func TestIdentity_RequireSource(t *testing.T) {
	v := newVerifier(t, Config{Secret: testSecret})
	id, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodHS256, testSecret, "",
		jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}))
	if err != nil || id.User != "alice" || id.Source != "" {
		t.Fatalf("Verify token without did = %+v, %v; want alice with no source", id, err)
	}
	const want = "invalid token: token has invalid claims: token is missing required claim: did claim is required"
	if err := id.RequireSource(); !errors.Is(err, ErrInvalidToken) || !errors.Is(err, jwt.ErrTokenRequiredClaimMissing) || err.Error() != want {
		t.Fatalf("RequireSource = %v, want %q wrapping ErrInvalidToken", err, want)
	}
	if err := (Identity{User: "alice", Source: "phone"}).RequireSource(); err != nil {
		t.Fatalf("RequireSource with a source = %v", err)
	}
}

func TestVerify_AllowNoExp(t *testing.T) {
	v := newVerifier(t, Config{Secret: testSecret, AllowNoExp: true})

	got, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodHS256, testSecret, "", jwt.MapClaims{"sub": "alice", "did": "d"}))
	if err != nil {
		t.Fatalf("Verify token without exp: %v", err)
	}
	if want := (Identity{User: "alice", Source: "d"}); got != want {
		t.Fatalf("Verify = %+v, want %+v (zero Expires)", got, want)
	}

	// Allowing a missing exp must not relax a present one.
	expired := claimsFor("alice", "d", time.Now().Add(-time.Second))
	if _, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodHS256, testSecret, "", expired)); !errors.Is(err, jwt.ErrTokenExpired) {
		t.Fatalf("Verify expired token = %v, want jwt.ErrTokenExpired", err)
	}
}

func TestNewVerifier_RejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no key source", Config{}, "no key source"},
		{"negative refresh", Config{Secret: testSecret, JWKSRefresh: -time.Second}, "negative"},
		{"relative jwks url", Config{JWKSURL: "/keys"}, "absolute http or https"},
		{"jwks url with other scheme", Config{JWKSURL: "ftp://example.com/keys"}, "absolute http or https"},
		{"unparsable jwks url", Config{JWKSURL: "http://[::1"}, "parse jwks url"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewVerifier(t.Context(), tc.cfg)
			if err == nil {
				v.Close()
				t.Fatalf("NewVerifier(%+v) succeeded, want an error containing %q", tc.cfg, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewVerifier error = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func BenchmarkVerifyHS256(b *testing.B) {
	v, err := NewVerifier(b.Context(), Config{Secret: testSecret})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	token, err := Mint(testSecret, "alice", "device-1a2b3c4d", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, token); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Parallel shows that concurrent requests do not contend inside Verify.
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := v.Verify(ctx, token); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
