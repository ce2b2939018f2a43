package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"
)

// claimErrors are the errors claims.UnmarshalJSON and claims.Validate may return besides
// encoding/json's own, which are reported for a claims set that is not a JSON object.
var claimErrors = []error{errSubRequired, errSubValue, errSubType, errDidValue, errDidType, errExpType, errNbfType}

// FuzzClaims feeds arbitrary claims sets, signed with the right secret so that only the claims
// can make a difference, to a Verifier, and to the claims decoder directly. It checks that
// nothing panics, that every refusal wraps ErrInvalidToken and, from the decoder, is one of
// the documented claim errors or a JSON error, and that an accepted token names a valid,
// non-empty user, a valid or empty source, and a future expiry, as the decoder saw them.
func FuzzClaims(f *testing.F) {
	exp := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	for _, s := range []string{
		`{"sub":"alice","did":"device-1","exp":` + exp + `}`,
		`{"sub":"alice","exp":` + exp + `}`,
		`{"sub":"","did":"d","exp":` + exp + `}`,
		`{"sub":"alice","did":"d","exp":0}`,
		`{"sub":"alice","did":"d","exp":"` + exp + `"}`,
		`{"sub":"alice","did":"d","exp":1e300}`,
		`{"sub":"alice","did":"d","exp":` + exp + `,"nbf":9007199254740993}`,
		`{"SUB":"mallory","sub":"alice","Did":"x","exp":` + exp + `}`,
		`{"sub":"al\u0000ice","exp":` + exp + `}`,
		`{"sub":"\ud800","exp":` + exp + `}`,
		`{"sub":1,"exp":` + exp + `}`,
		`{"sub":null,"did":null,"exp":` + exp + `}`,
		`{"sub":"alice","sub":"bob","exp":` + exp + `}`,
		`[]`, `null`, `"sub"`, ``,
	} {
		f.Add([]byte(s))
	}
	v, err := NewVerifier(f.Context(), Config{Secret: testSecret})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(v.Close)
	f.Fuzz(func(t *testing.T, set []byte) {
		var c claims
		decodeErr := c.UnmarshalJSON(set)
		if decodeErr == nil {
			decodeErr = c.Validate()
		}
		if decodeErr != nil && !documentedClaimError(decodeErr) {
			t.Fatalf("claims %q refused with %T %v, not a documented claim error", set, decodeErr, decodeErr)
		}
		id, err := v.Verify(t.Context(), signHS256(set))
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("claims %q refused with %v, which does not wrap ErrInvalidToken", set, err)
			}
			return
		}
		switch {
		case decodeErr != nil:
			t.Fatalf("claims %q accepted by Verify as %+v, refused by the decoder: %v", set, id, decodeErr)
		case id.User == "" || !validIdentity(id.User):
			t.Fatalf("claims %q accepted with user %q, want a non-empty valid identity", set, id.User)
		case id.Source != "" && !validIdentity(id.Source):
			t.Fatalf("claims %q accepted with source %q, want empty or a valid identity", set, id.Source)
		case id.User != c.sub || id.Source != c.did:
			t.Fatalf("claims %q accepted as %q/%q, the decoder read %q/%q", set, id.User, id.Source, c.sub, c.did)
		case !id.Expires.After(time.Now().Add(-time.Minute)):
			t.Fatalf("claims %q accepted with expiry %v, want a future one", set, id.Expires)
		}
	})
}

// documentedClaimError reports whether err is one the claims decoder is documented to return.
func documentedClaimError(err error) bool {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if errors.As(err, &syntax) || errors.As(err, &typ) {
		return true
	}
	for _, e := range claimErrors {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// signHS256 returns a compact token whose claims set is exactly set, signed with testSecret.
func signHS256(set []byte) string {
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(set)
	mac := hmac.New(sha256.New, testSecret)
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}
