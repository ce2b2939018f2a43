package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseJWK(t *testing.T) {
	rsaPub := &testRSAKey().PublicKey
	p256Pub := &newECKey(t, elliptic.P256()).PublicKey
	p521Pub := &newECKey(t, elliptic.P521()).PublicKey
	zeroXPub := ecKeyWithLeadingZeroX(t)
	p256 := ecJWK(t, "p256", p256Pub)
	change := func(j jwk, f func(*jwk)) jwk { f(&j); return j }

	tests := []struct {
		name        string
		jwk         jwk
		want        crypto.PublicKey // nil when the key must be refused
		wantAlgs    []string
		unsupported bool // refused as not for us rather than as malformed
	}{
		{"rsa", rsaJWK("r", rsaPub), rsaPub, rsaAlgs, false},
		{"rsa pinned to PS256", change(rsaJWK("r", rsaPub), func(j *jwk) { j.Alg = "PS256" }), rsaPub, []string{"PS256"}, false},
		{"rsa for signing", change(rsaJWK("r", rsaPub), func(j *jwk) { j.Use = "sig" }), rsaPub, rsaAlgs, false},
		{"rsa with padded base64", change(rsaJWK("r", rsaPub), func(j *jwk) { j.E += "=" }), rsaPub, rsaAlgs, false},
		{"ec P-256", p256, p256Pub, []string{"ES256"}, false},
		{"ec P-521", ecJWK(t, "p521", p521Pub), p521Pub, []string{"ES512"}, false},
		{"ec coordinate without its leading zero", change(ecJWK(t, "z", zeroXPub), func(j *jwk) {
			x, _ := decodeB64(j.X, "x")
			j.X = b64(x[1:])
		}), zeroXPub, []string{"ES256"}, false},

		{"encryption key", change(rsaJWK("r", rsaPub), func(j *jwk) { j.Use = "enc" }), nil, nil, true},
		{"symmetric key", jwk{Kty: "oct", Kid: "o"}, nil, nil, true},
		{"unknown curve", change(p256, func(j *jwk) { j.Crv = "secp256k1" }), nil, nil, true},
		{"rsa alg on ec key", change(p256, func(j *jwk) { j.Alg = "RS256" }), nil, nil, false},
		{"ES384 on a P-256 key", change(p256, func(j *jwk) { j.Alg = "ES384" }), nil, nil, false},
		{"hmac alg on rsa key", change(rsaJWK("r", rsaPub), func(j *jwk) { j.Alg = "HS256" }), nil, nil, false},
		{"rsa modulus of 1024 bits", change(rsaJWK("r", rsaPub), func(j *jwk) { j.N = b64(rsaPub.N.Bytes()[:128]) }), nil, nil, false},
		{"rsa even exponent", change(rsaJWK("r", rsaPub), func(j *jwk) { j.E = b64([]byte{1, 0, 0}) }), nil, nil, false},
		{"rsa exponent 1", change(rsaJWK("r", rsaPub), func(j *jwk) { j.E = b64([]byte{1}) }), nil, nil, false},
		{"rsa huge exponent", change(rsaJWK("r", rsaPub), func(j *jwk) { j.E = b64([]byte{1, 0, 0, 0, 1}) }), nil, nil, false},
		{"rsa without n", change(rsaJWK("r", rsaPub), func(j *jwk) { j.N = "" }), nil, nil, false},
		{"rsa n not base64url", change(rsaJWK("r", rsaPub), func(j *jwk) { j.N = "a+b/" }), nil, nil, false},
		{"ec point off the curve", change(p256, func(j *jwk) { j.Y = j.X }), nil, nil, false},
		{"ec coordinate too long", change(p256, func(j *jwk) { j.X = b64(make([]byte, 33)) }), nil, nil, false},
		{"ec without y", change(p256, func(j *jwk) { j.Y = "" }), nil, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := parseJWK(tc.jwk)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("parseJWK accepted the key for %v", k.algs)
				}
				if got := errors.Is(err, errUnsupportedKey); got != tc.unsupported {
					t.Fatalf("parseJWK error %q: unsupported = %v, want %v", err, got, tc.unsupported)
				}
				for _, material := range []string{tc.jwk.N, tc.jwk.X, tc.jwk.Y} {
					if len(material) > 8 && strings.Contains(err.Error(), material) {
						t.Fatalf("parseJWK error %q contains key material", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("parseJWK: %v", err)
			}
			if !slices.Equal(k.algs, tc.wantAlgs) {
				t.Fatalf("key algorithms = %v, want %v", k.algs, tc.wantAlgs)
			}
			if got, ok := k.key.(interface{ Equal(crypto.PublicKey) bool }); !ok || !got.Equal(tc.want) {
				t.Fatalf("parsed key %T differs from the published %T", k.key, tc.want)
			}
		})
	}
}

// ecKeyWithLeadingZeroX returns a P-256 key whose x coordinate starts with a zero byte, the kind
// some issuers publish shortened. About one key in 256 qualifies.
func ecKeyWithLeadingZeroX(t *testing.T) *ecdsa.PublicKey {
	t.Helper()
	for range 100_000 {
		pub := &newECKey(t, elliptic.P256()).PublicKey
		if point, err := pub.Bytes(); err == nil && point[1] == 0 {
			return pub
		}
	}
	t.Fatal("no P-256 key with a leading zero x coordinate found")
	return nil
}
