package auth

import (
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"
)

// jwksServer is a real HTTP JWKS endpoint whose keys and health a test changes at will, and
// which counts the requests it receives.
type jwksServer struct {
	*httptest.Server
	requests atomic.Int64

	mu     sync.Mutex
	body   []byte
	status int  // answered instead of the keys when not 200
	hang   bool // block requests until the client gives up
}

func newJWKSServer(t *testing.T, keys ...jwk) *jwksServer {
	t.Helper()
	s := &jwksServer{status: http.StatusOK}
	s.setKeys(t, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		s.mu.Lock()
		body, status, hang := s.body, s.status, s.hang
		s.mu.Unlock()
		if hang {
			<-r.Context().Done()
			return
		}
		if status != http.StatusOK {
			http.Error(w, "unavailable", status)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setKeys(t *testing.T, keys ...jwk) {
	t.Helper()
	body, err := json.Marshal(map[string][]jwk{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.body = body
	s.mu.Unlock()
}

func (s *jwksServer) setStatus(status int) {
	s.mu.Lock()
	s.status = status
	s.mu.Unlock()
}

func (s *jwksServer) setHang(hang bool) {
	s.mu.Lock()
	s.hang = hang
	s.mu.Unlock()
}

func TestJWKS_VerifiesAsymmetricTokens(t *testing.T) {
	rsaKey := testRSAKey()
	p256, p384, p521 := newECKey(t, elliptic.P256()), newECKey(t, elliptic.P384()), newECKey(t, elliptic.P521())
	pinnedRS256 := rsaJWK("rsa-rs256", &rsaKey.PublicKey)
	pinnedRS256.Alg = "RS256"
	srv := newJWKSServer(t,
		rsaJWK("rsa", &rsaKey.PublicKey), pinnedRS256,
		ecJWK(t, "p256", &p256.PublicKey), ecJWK(t, "p384", &p384.PublicKey), ecJWK(t, "p521", &p521.PublicKey))
	v := newVerifier(t, Config{JWKSURL: srv.URL})
	der, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	// The classic confusion attack: an HMAC token keyed with the server's public key.
	hmacWithPublicKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})

	tests := []struct {
		name    string
		method  jwt.SigningMethod
		key     any
		kid     string
		wantErr error // nil for a valid token
	}{
		{"RS256", jwt.SigningMethodRS256, rsaKey, "rsa", nil},
		{"RS512", jwt.SigningMethodRS512, rsaKey, "rsa", nil},
		{"PS256", jwt.SigningMethodPS256, rsaKey, "rsa", nil},
		{"RS256 on a key pinned to RS256", jwt.SigningMethodRS256, rsaKey, "rsa-rs256", nil},
		{"ES256", jwt.SigningMethodES256, p256, "p256", nil},
		{"ES384", jwt.SigningMethodES384, p384, "p384", nil},
		{"ES512", jwt.SigningMethodES512, p521, "p521", nil},

		{"PS256 on a key pinned to RS256", jwt.SigningMethodPS256, rsaKey, "rsa-rs256", errKeyAlgMismatch},
		{"ES256 naming an RSA key", jwt.SigningMethodES256, p256, "rsa", errKeyAlgMismatch},
		{"RS256 naming an EC key", jwt.SigningMethodRS256, rsaKey, "p256", errKeyAlgMismatch},
		{"ES384 naming a P-256 key", jwt.SigningMethodES384, p384, "p256", errKeyAlgMismatch},
		{"ES256 signed by another key", jwt.SigningMethodES256, newECKey(t, elliptic.P256()), "p256", jwt.ErrTokenSignatureInvalid},
		{"no kid", jwt.SigningMethodES256, p256, "", errUnknownKey},
		{"HS256 without a secret", jwt.SigningMethodHS256, []byte("guess"), "rsa", jwt.ErrTokenSignatureInvalid},
		{"HS256 keyed with the RSA public key", jwt.SigningMethodHS256, hmacWithPublicKey, "rsa", jwt.ErrTokenSignatureInvalid},
		{"alg none", jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "rsa", jwt.ErrTokenSignatureInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			token := sign(t, tc.method, tc.key, tc.kid, validClaims())
			got, err := v.Verify(t.Context(), token)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if got.User != "alice" || got.Source != "device-1a2b3c4d" {
					t.Fatalf("Verify = %+v, want alice on device-1a2b3c4d", got)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Verify error = %v, want one wrapping %q", err, tc.wantErr)
			}
			assertSafeError(t, err, token, nil)
		})
	}
}

func TestJWKS_WithSecretChoosesKeyByAlg(t *testing.T) {
	ec := newECKey(t, elliptic.P256())
	srv := newJWKSServer(t, ecJWK(t, "ec", &ec.PublicKey))
	v := newVerifier(t, Config{Secret: testSecret, JWKSURL: srv.URL})

	for _, token := range []string{
		sign(t, jwt.SigningMethodHS256, testSecret, "", validClaims()),
		sign(t, jwt.SigningMethodHS256, testSecret, "ec", validClaims()), // a kid does not matter for HMAC
		sign(t, jwt.SigningMethodES256, ec, "ec", validClaims()),
	} {
		if _, err := v.Verify(t.Context(), token); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	}
	if _, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodES256, newECKey(t, elliptic.P256()), "ec", validClaims())); !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		t.Fatalf("Verify ES256 token of a foreign key = %v, want jwt.ErrTokenSignatureInvalid", err)
	}
}

func TestJWKS_KeyWithoutKidServesTokensWithoutKid(t *testing.T) {
	ec := newECKey(t, elliptic.P256())
	srv := newJWKSServer(t, ecJWK(t, "", &ec.PublicKey))
	v := newVerifier(t, Config{JWKSURL: srv.URL})

	if _, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodES256, ec, "", validClaims())); err != nil {
		t.Fatalf("Verify token without kid: %v", err)
	}
	if _, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodES256, ec, "some-kid", validClaims())); !errors.Is(err, errUnknownKey) {
		t.Fatalf("Verify token with a kid the set lacks = %v, want an unknown key", err)
	}
}

func TestJWKS_UnknownKidPicksUpRotatedKey(t *testing.T) {
	oldKey, newKey := newECKey(t, elliptic.P256()), newECKey(t, elliptic.P256())
	srv := newJWKSServer(t, ecJWK(t, "old", &oldKey.PublicKey))
	v := newVerifier(t, Config{JWKSURL: srv.URL})
	if n := srv.requests.Load(); n != 1 {
		t.Fatalf("NewVerifier made %d JWKS requests, want 1", n)
	}

	srv.setKeys(t, ecJWK(t, "old", &oldKey.PublicKey), ecJWK(t, "new", &newKey.PublicKey))
	got, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodES256, newKey, "new", validClaims()))
	if err != nil {
		t.Fatalf("Verify token of the rotated-in key: %v", err)
	}
	if got.User != "alice" {
		t.Fatalf("Verify = %+v, want user alice", got)
	}
	if n := srv.requests.Load(); n != 2 {
		t.Fatalf("JWKS requests = %d, want 2 (start, then one for the unknown kid)", n)
	}
	// The rotated-in key is cached now: verifying again fetches nothing.
	if _, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodES256, newKey, "new", validClaims())); err != nil {
		t.Fatalf("Verify again: %v", err)
	}
	if n := srv.requests.Load(); n != 2 {
		t.Fatalf("JWKS requests = %d after a known kid, want still 2", n)
	}
}

func TestJWKS_UnknownKidStormFetchesOncePerWindow(t *testing.T) {
	known, forger := newECKey(t, elliptic.P256()), newECKey(t, elliptic.P256())
	srv := newJWKSServer(t, ecJWK(t, "known", &known.PublicKey))
	v := newVerifier(t, Config{JWKSURL: srv.URL})

	const storm = 64
	tokens := make([]string, storm)
	for i := range tokens {
		tokens[i] = sign(t, jwt.SigningMethodES256, forger, fmt.Sprintf("forged-%d", i), validClaims())
	}
	errs := make([]error, storm)
	var wg sync.WaitGroup
	for i := range storm {
		wg.Go(func() { _, errs[i] = v.Verify(t.Context(), tokens[i]) })
	}
	wg.Wait()

	for i, err := range errs {
		if !errors.Is(err, errUnknownKey) || !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("Verify forged token %d = %v, want an invalid token error for an unknown key", i, err)
		}
	}
	if n := srv.requests.Load(); n != 2 {
		t.Fatalf("JWKS requests = %d after %d forged kids, want 2 (start, then one refresh per window)", n, storm)
	}
	// Known kids keep working through the storm and cost no fetch.
	if _, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodES256, known, "known", validClaims())); err != nil {
		t.Fatalf("Verify known kid: %v", err)
	}
	if n := srv.requests.Load(); n != 2 {
		t.Fatalf("JWKS requests = %d, want still 2", n)
	}
}

func TestJWKS_PeriodicRefreshPicksUpNewKey(t *testing.T) {
	oldKey, newKey := newECKey(t, elliptic.P256()), newECKey(t, elliptic.P256())
	srv := newJWKSServer(t, ecJWK(t, "old", &oldKey.PublicKey))
	v := newVerifier(t, Config{JWKSURL: srv.URL, JWKSRefresh: 20 * time.Millisecond})

	// Spend this window's unknown-kid refresh, so only the periodic refresh can find the new key.
	if _, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodES256, newKey, "new", validClaims())); !errors.Is(err, errUnknownKey) {
		t.Fatalf("Verify before rotation = %v, want an unknown key", err)
	}
	srv.setKeys(t, ecJWK(t, "new", &newKey.PublicKey))
	rotatedAt := srv.requests.Load()
	// Fetches never overlap, so once a second request after the rotation arrived, the first
	// one, which saw the new key, has been stored.
	waitFor(t, "two periodic JWKS fetches after the rotation", func() bool { return srv.requests.Load() >= rotatedAt+2 })

	if _, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodES256, newKey, "new", validClaims())); err != nil {
		t.Fatalf("Verify token of the new key: %v", err)
	}
	if _, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodES256, oldKey, "old", validClaims())); !errors.Is(err, errUnknownKey) {
		t.Fatalf("Verify token of the withdrawn key = %v, want an unknown key", err)
	}
}

func TestNewVerifier_FailsWhenJWKSUnavailable(t *testing.T) {
	ec := newECKey(t, elliptic.P256())
	unavailable := newJWKSServer(t, ecJWK(t, "ec", &ec.PublicKey))
	unavailable.setStatus(http.StatusServiceUnavailable)
	noUsableKeys := newJWKSServer(t, jwk{Kty: "oct", Kid: "hmac"})
	notJSON := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<html>login</html>")
	}))
	t.Cleanup(notJSON.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	tests := []struct {
		name string
		url  string
	}{
		{"status 503", unavailable.URL},
		{"no usable keys", noUsableKeys.URL},
		{"not json", notJSON.URL},
		{"connection refused", closed.URL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewVerifier(t.Context(), Config{JWKSURL: tc.url})
			if err == nil {
				v.Close()
				t.Fatal("NewVerifier succeeded without a usable JWKS")
			}
		})
	}
}

func TestJWKS_CachedKeysSurviveServerOutage(t *testing.T) {
	ec := newECKey(t, elliptic.P256())
	srv := newJWKSServer(t, ecJWK(t, "ec", &ec.PublicKey))
	v := newVerifier(t, Config{JWKSURL: srv.URL, JWKSRefresh: 10 * time.Millisecond})

	srv.setStatus(http.StatusServiceUnavailable)
	downAt := srv.requests.Load()
	waitFor(t, "two failed JWKS refreshes", func() bool { return srv.requests.Load() >= downAt+2 })

	if _, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodES256, ec, "ec", validClaims())); err != nil {
		t.Fatalf("Verify with the JWKS server down: %v", err)
	}
}

func TestClose_StopsRefresher(t *testing.T) {
	ec := newECKey(t, elliptic.P256())
	srv := newJWKSServer(t, ecJWK(t, "ec", &ec.PublicKey))
	before := goleak.IgnoreCurrent()

	v, err := NewVerifier(t.Context(), Config{JWKSURL: srv.URL, JWKSRefresh: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := srv.requests.Load()
	waitFor(t, "periodic JWKS refreshes", func() bool { return srv.requests.Load() >= start+2 })
	closeWithin(t, v, 5*time.Second)
	closeWithin(t, v, 5*time.Second) // idempotent

	goleak.VerifyNone(t, before)
	stoppedAt := srv.requests.Load()
	// The refresher is gone (goleak above), so nothing can fetch any more; Verify still works
	// with the cached keys.
	if _, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodES256, ec, "ec", validClaims())); err != nil {
		t.Fatalf("Verify after Close: %v", err)
	}
	if n := srv.requests.Load(); n != stoppedAt {
		t.Fatalf("JWKS requests went from %d to %d after Close", stoppedAt, n)
	}
}

func TestClose_CancelsRunningFetch(t *testing.T) {
	ec := newECKey(t, elliptic.P256())
	srv := newJWKSServer(t, ecJWK(t, "ec", &ec.PublicKey))
	v, err := NewVerifier(t.Context(), Config{JWKSURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}

	srv.setHang(true)
	verified := make(chan error, 1)
	go func() {
		_, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodES256, ec, "unknown", validClaims()))
		verified <- err
	}()
	waitFor(t, "the refresh for the unknown kid to reach the server", func() bool { return srv.requests.Load() == 2 })

	closeWithin(t, v, 5*time.Second)
	if err := <-verified; !errors.Is(err, errUnknownKey) {
		t.Fatalf("Verify waiting on the cancelled fetch = %v, want an unknown key", err)
	}
}

func TestVerify_ContextEndsWaitForKeys(t *testing.T) {
	ec := newECKey(t, elliptic.P256())
	srv := newJWKSServer(t, ecJWK(t, "ec", &ec.PublicKey))
	v := newVerifier(t, Config{JWKSURL: srv.URL})
	srv.setHang(true)

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := v.Verify(ctx, sign(t, jwt.SigningMethodES256, ec, "unknown", validClaims()))
	if !errors.Is(err, ErrInvalidToken) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Verify with a hung JWKS and a short deadline = %v, want invalid token and deadline exceeded", err)
	}
}

// closeWithin fails the test if v.Close does not return within d.
func closeWithin(t *testing.T, v *Verifier, d time.Duration) {
	t.Helper()
	closed := make(chan struct{})
	go func() {
		v.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(d):
		t.Fatalf("Close did not return within %v", d)
	}
}
