package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Claim errors, built once because Verify is on every request's path. They wrap jwt's sentinels
// so the messages read like the library's own ("token is missing required claim: sub claim is
// required").
var (
	errSubRequired = fmt.Errorf("%w: sub claim is required", jwt.ErrTokenRequiredClaimMissing)
	errDidRequired = fmt.Errorf("%w: did claim is required", jwt.ErrTokenRequiredClaimMissing)
	errSubValue    = fmt.Errorf("sub must be at most %d bytes of UTF-8 without control characters", MaxIdentityBytes)
	errDidValue    = fmt.Errorf("did must be at most %d bytes of UTF-8 without control characters", MaxIdentityBytes)
	errCrit        = errors.New("crit header names extensions this server does not understand")
	errSubType     = fmt.Errorf("%w: sub must be a string", jwt.ErrInvalidType)
	errDidType     = fmt.Errorf("%w: did must be a string", jwt.ErrInvalidType)
	errExpType     = fmt.Errorf("%w: exp must be a number of seconds", jwt.ErrInvalidType)
	errNbfType     = fmt.Errorf("%w: nbf must be a number of seconds", jwt.ErrInvalidType)
)

// MaxIdentityBytes bounds the length of sub and did. Both become keys in the database (an index
// entry must fit a page, about 2,700 bytes) and echo in logs; real user ids and device ids are
// UUIDs or short strings, and v1 source ids are capped at 256 bytes too (docs/protocol-v1.md
// §2.3), so a longer value is a malformed or hostile token, not a real identity.
const MaxIdentityBytes = 256

// maxDateSeconds bounds exp and nbf so they convert to int64 exactly; beyond it a far-future nbf
// could wrap around into the past.
const maxDateSeconds = 1 << 53

// claims is the part of a token pulsesync reads: sub, did, exp and nbf. Every other claim (iat,
// iss, aud, jti, …) is ignored whatever its type, as the protocol says.
//
// Claim names are matched case-sensitively, as RFC 7519 requires. Decoding into a tagged struct
// would not do that: encoding/json also matches "SUB" or "Did", so an issuer that lets users add
// custom claims would let them override sub or did.
type claims struct {
	sub, did string
	exp, nbf *jwt.NumericDate
}

// UnmarshalJSON decodes the claims set of a token. A non-string sub or did, or a non-numeric
// exp or nbf, makes the token invalid.
func (c *claims) UnmarshalJSON(data []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	if err := decodeString(raw["sub"], &c.sub, errSubType, errSubValue); err != nil {
		return err
	}
	if err := decodeString(raw["did"], &c.did, errDidType, errDidValue); err != nil {
		return err
	}
	if err := decodeDate(raw["exp"], &c.exp, errExpType); err != nil {
		return err
	}
	return decodeDate(raw["nbf"], &c.nbf, errNbfType)
}

// decodeString stores the JSON string in into dst. An absent claim or null leaves dst empty,
// which Validate then rejects. in is a valid JSON value (the map decode checked it), so a plain
// string (no escapes) is taken as is and only the rest goes through encoding/json. Bytes that
// are not UTF-8 fail with valueErr: encoding/json would quietly replace them with U+FFFD.
func decodeString(in json.RawMessage, dst *string, typeErr, valueErr error) error {
	switch {
	case in == nil || string(in) == "null":
		return nil
	case in[0] != '"':
		return typeErr
	}
	body := in[1 : len(in)-1]
	if !utf8.Valid(body) {
		return valueErr
	}
	if !bytes.ContainsRune(body, '\\') {
		*dst = string(body)
		return nil
	}
	return json.Unmarshal(in, dst)
}

// decodeDate stores the JSON number in into dst; an absent claim leaves dst nil. Unlike jwt's
// MapClaims, 0 is a date (1970), not an absent claim: a token with exp 0 is expired.
func decodeDate(in json.RawMessage, dst **jwt.NumericDate, typeErr error) error {
	if in == nil {
		return nil
	}
	// A valid JSON value that starts like this is a number, whose syntax ParseFloat accepts.
	// (jwt.NumericDate would also take a number inside a string, "exp":"1700000000", which the
	// reference rejects.)
	if c := in[0]; c != '-' && (c < '0' || c > '9') {
		return typeErr
	}
	f, err := strconv.ParseFloat(string(in), 64)
	if err != nil || math.Abs(f) > maxDateSeconds {
		return typeErr
	}
	sec, frac := math.Modf(f)
	*dst = jwt.NewNumericDate(time.Unix(int64(sec), int64(frac*1e9)))
	return nil
}

// Validate implements jwt.ClaimsValidator; the parser calls it after the signature and the
// time claims were checked. sub is required; did is optional here (v1 takes the source from a
// header) and required by the v0 routes through Identity.RequireSource. Both, when present, must
// pass validIdentity.
func (c *claims) Validate() error {
	switch {
	case c.sub == "":
		return errSubRequired
	case !validIdentity(c.sub):
		return errSubValue
	case c.did != "" && !validIdentity(c.did):
		return errDidValue
	}
	return nil
}

// validIdentity reports whether s may name a user or a source: at most MaxIdentityBytes of
// valid UTF-8 without C0 control characters (U+0000–U+001F) or DEL. PostgreSQL refuses NUL in
// text, and the v1 store builds keys that start with U+001E, which no identity can then forge.
func validIdentity(s string) bool {
	if len(s) > MaxIdentityBytes || !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ { // control characters are single bytes in UTF-8
		if b := s[i]; b < 0x20 || b == 0x7f {
			return false
		}
	}
	return true
}

// GetExpirationTime implements jwt.Claims.
func (c *claims) GetExpirationTime() (*jwt.NumericDate, error) { return c.exp, nil }

// GetNotBefore implements jwt.Claims.
func (c *claims) GetNotBefore() (*jwt.NumericDate, error) { return c.nbf, nil }

// GetIssuedAt implements jwt.Claims; iat is not checked (docs/protocol-v0.md §1.3).
func (c *claims) GetIssuedAt() (*jwt.NumericDate, error) { return nil, nil }

// GetIssuer implements jwt.Claims; iss is ignored.
func (c *claims) GetIssuer() (string, error) { return "", nil }

// GetSubject implements jwt.Claims.
func (c *claims) GetSubject() (string, error) { return c.sub, nil }

// GetAudience implements jwt.Claims; aud is ignored.
func (c *claims) GetAudience() (jwt.ClaimStrings, error) { return nil, nil }
