package httpapi_test

import (
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pulsesync/pulsesync/internal/servertest"
)

// signToken signs claims with method and key, failing the test on error.
func signToken(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign %s token: %v", method.Alg(), err)
	}
	return s
}

// authenticatedEndpoints are every endpoint behind the JWT, each with a body or query that
// would be a 400 if it were looked at: authentication must come first (docs/protocol-v0.md §1.4).
var authenticatedEndpoints = []struct{ method, path, body string }{
	{http.MethodPost, "/sync/upload", `{"changes":[`},
	{http.MethodGet, "/sync/download?after=-1&limit=x", ""},
	{http.MethodGet, "/sync/schema-version", ""},
	{http.MethodGet, "/admin/materialize-failures?limit=x", ""},
	{http.MethodPost, "/admin/materialize-failures/retry?id=-1", `{"id":`},
}

func TestAuthentication_FailuresAre401JSONOnEveryEndpoint(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	now := time.Now()
	hs := func(c jwt.MapClaims) string { return signToken(t, jwt.SigningMethodHS256, srv.Secret, c) }
	valid := func() jwt.MapClaims {
		return jwt.MapClaims{"sub": "alice", "did": "phone", "exp": now.Add(time.Hour).Unix()}
	}
	with := func(key string, value any) jwt.MapClaims {
		c := valid()
		if value == nil {
			delete(c, key)
		} else {
			c[key] = value
		}
		return c
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	good := hs(valid())

	cases := []struct {
		name          string
		header        string // the Authorization header; "-" sends none
		messagePrefix string
	}{
		{"missing header", "-", "authorization header required"},
		{"empty header", "", "authorization header required"},
		{"wrong scheme", "Basic YWxpY2U6cHc=", "bearer token required"},
		{"lower-case bearer", "bearer " + good, "bearer token required"},
		{"double space", "Bearer  " + good, "bearer token required"},
		{"scheme only", "Bearer", "bearer token required"},
		{"garbage token", "Bearer not.a.jwt", "invalid token"},
		{"wrong secret", "Bearer " + signToken(t, jwt.SigningMethodHS256, []byte("another-secret"), valid()), "invalid token"},
		{"alg none", "Bearer " + signToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid()), "invalid token"},
		{"RS256 without a JWKS", "Bearer " + signToken(t, jwt.SigningMethodRS256, rsaKey, valid()), "invalid token"},
		{"expired", "Bearer " + hs(with("exp", now.Add(-time.Minute).Unix())), "invalid token"},
		{"nbf in the future", "Bearer " + hs(with("nbf", now.Add(time.Hour).Unix())), "invalid token"},
		{"no exp", "Bearer " + hs(with("exp", nil)), "invalid token"},
		{"missing sub", "Bearer " + hs(with("sub", nil)), "invalid token"},
		{"empty sub", "Bearer " + hs(with("sub", "")), "invalid token"},
		{"numeric sub", "Bearer " + hs(with("sub", 42)), "invalid token"},
		{"missing did", "Bearer " + hs(with("did", nil)), "invalid token"},
		{"empty did", "Bearer " + hs(with("did", "")), "invalid token"},
		{"NUL in sub", "Bearer " + hs(with("sub", "ali\x00ce")), "invalid token"},
		{"sub of 3000 bytes", "Bearer " + hs(with("sub", strings.Repeat("a", 3000))), "invalid token"},
		{"control character in did", "Bearer " + hs(with("did", "phone\x1e")), "invalid token"},
		{"did of 3000 bytes", "Bearer " + hs(with("did", strings.Repeat("d", 3000))), "invalid token"},
		{"crit header", "Bearer " + critToken(t, srv.Secret, valid()), "invalid token"},
	}
	for _, tc := range cases {
		for _, ep := range authenticatedEndpoints {
			t.Run(tc.name+" "+ep.method+" "+ep.path, func(t *testing.T) {
				r := callHeader(t, srv, ep.method, ep.path, ep.body, func(h http.Header) {
					if tc.header != "-" {
						h.Set("Authorization", tc.header)
					}
				})
				var body struct{ Error, Message string }
				wantStatus(t, r, http.StatusUnauthorized, &body)
				if body.Error != "authentication_failed" || !strings.HasPrefix(body.Message, tc.messagePrefix) {
					t.Fatalf("body %s, want authentication_failed with a message starting %q", r.body, tc.messagePrefix)
				}
				if got := r.header.Values("WWW-Authenticate"); len(got) != 1 || got[0] != "Bearer" {
					t.Fatalf("WWW-Authenticate %q, want exactly Bearer", got)
				}
				for _, token := range []string{good, strings.TrimPrefix(tc.header, "Bearer ")} {
					if len(token) > 8 && strings.Contains(string(r.body), token) {
						t.Fatalf("the answer %s echoes the token", r.body)
					}
				}
			})
		}
	}
}

// critToken signs claims with HS256 and a crit header naming an extension (RFC 7515 §4.1.11).
func critToken(t *testing.T, secret []byte, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["crit"] = []string{"urn:example:must-understand"}
	s, err := tok.SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAuthentication_TwoAuthorizationHeadersAre401: which of two headers counts differs
// between proxies and servers, so neither is trusted, even when both are valid.
func TestAuthentication_TwoAuthorizationHeadersAre401(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	alice, mallory := srv.Token("alice", "phone"), srv.Token("mallory", "phone")
	for _, ep := range authenticatedEndpoints {
		r := callHeader(t, srv, ep.method, ep.path, ep.body, func(h http.Header) {
			h.Add("Authorization", "Bearer "+alice)
			h.Add("Authorization", "Bearer "+mallory)
		})
		wantError(t, r, http.StatusUnauthorized, "authentication_failed", "exactly one authorization header allowed")
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/sync/ws?after=0", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Add("Authorization", "")
	req.Header.Add("Authorization", "Bearer "+alice)
	resp, err := srv.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/sync/ws with two Authorization headers: %d, want 401", resp.StatusCode)
	}
}

// TestAuthentication_V0RoutesNeedDid: the verifier accepts a token without did (v1 takes the
// source from a header), but every v0 route still refuses it with the message it always gave.
func TestAuthentication_V0RoutesNeedDid(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	token := signToken(t, jwt.SigningMethodHS256, srv.Secret, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()})
	const message = "invalid token: token has invalid claims: token is missing required claim: did claim is required"
	for _, ep := range authenticatedEndpoints {
		wantError(t, call(t, srv, ep.method, ep.path, token, ep.body), http.StatusUnauthorized, "authentication_failed", message)
	}
}

func TestAuthentication_HMACAlgorithmsAreAccepted(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	claims := jwt.MapClaims{"sub": "alice", "did": "device-1a2b3c4d", "exp": time.Now().Add(time.Hour).Unix()}
	for _, method := range []jwt.SigningMethod{jwt.SigningMethodHS256, jwt.SigningMethodHS384, jwt.SigningMethodHS512} {
		t.Run(method.Alg(), func(t *testing.T) {
			r := call(t, srv, http.MethodGet, "/sync/schema-version", signToken(t, method, srv.Secret, claims), "")
			if r.status != http.StatusOK || string(r.body) != "{\"schema_version\":1}\n" {
				t.Fatalf("got %d %q, want 200 {\"schema_version\":1}", r.status, r.body)
			}
		})
	}
}
