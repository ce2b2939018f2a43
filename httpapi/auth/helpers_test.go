package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testSecret is the secret the KMP instrumentation tests sign with (docs/protocol-v0.md §1.5).
var testSecret = []byte("your-secret-key-change-in-production")

// testRSAKey is generated once: a 2048-bit key takes a noticeable time under -race.
var testRSAKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func newECKey(t *testing.T, curve elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatalf("generate ec key: %v", err)
	}
	return k
}

// newVerifier builds a verifier that is closed when the test ends.
func newVerifier(t *testing.T, cfg Config) *Verifier {
	t.Helper()
	v, err := NewVerifier(t.Context(), cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	t.Cleanup(v.Close)
	return v
}

// claimsFor returns the claims the KMP tests mint: sub, did and exp only.
func claimsFor(user, source string, exp time.Time) jwt.MapClaims {
	return jwt.MapClaims{"sub": user, "did": source, "exp": exp.Unix()}
}

func validClaims() jwt.MapClaims {
	return claimsFor("alice", "device-1a2b3c4d", time.Now().Add(time.Hour))
}

// sign signs c with method and key, naming kid in the header when it is not empty.
func sign(t *testing.T, method jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s token: %v", method.Alg(), err)
	}
	return s
}

// signWithHeader signs c with HS256 and testSecret, with extra members in the JOSE header.
func signWithHeader(t *testing.T, header map[string]any, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(testSecret)
	if err != nil {
		t.Fatalf("sign token: %v", err)
	}
	return s
}

// signRawHS256 signs a claims set given as JSON text, for claims jwt.MapClaims cannot express
// (key order, duplicate names, names differing only in case).
func signRawHS256(secret []byte, claimsJSON string) string {
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString([]byte(claimsJSON))
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, pub *rsa.PublicKey) jwk {
	return jwk{Kty: "RSA", Kid: kid, N: b64(pub.N.Bytes()), E: b64(big.NewInt(int64(pub.E)).Bytes())}
}

func ecJWK(t *testing.T, kid string, pub *ecdsa.PublicKey) jwk {
	t.Helper()
	point, err := pub.Bytes()
	if err != nil {
		t.Fatalf("encode ec key: %v", err)
	}
	size := (len(point) - 1) / 2
	return jwk{
		Kty: "EC", Kid: kid, Crv: pub.Curve.Params().Name,
		X: b64(point[1 : 1+size]), Y: b64(point[1+size:]),
	}
}

// waitFor polls cond until it holds, failing the test after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// assertSafeError checks that err wraps ErrInvalidToken and does not echo the token or secret.
func assertSafeError(t *testing.T, err error, token string, secret []byte) {
	t.Helper()
	if !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("error %q does not wrap ErrInvalidToken", err)
	}
	msg := err.Error()
	for _, part := range strings.Split(token, ".") {
		if len(part) >= 8 && strings.Contains(msg, part) {
			t.Fatalf("error %q contains a part of the token", msg)
		}
	}
	if len(secret) > 0 && strings.Contains(msg, string(secret)) {
		t.Fatalf("error %q contains the secret", msg)
	}
}
