package scenarios

import (
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// credential is one device's bearer token, re-minted when a tenth of its
// lifetime is left. It is owned by one VU, so it needs no lock.
type credential struct {
	user, device string
	secret       []byte
	ttl          time.Duration

	header  string // "Bearer <token>"
	renewAt time.Time
}

func newCredential(p Params, user, device string) *credential {
	return &credential{user: user, device: device, secret: []byte(p.Secret), ttl: p.TokenTTL.D()}
}

// bearer returns the Authorization header value, minting a token when the
// current one is missing or close to expiry.
func (c *credential) bearer(now time.Time) (string, error) {
	if c.header != "" && now.Before(c.renewAt) {
		return c.header, nil
	}
	exp := now.Add(c.ttl)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": c.user, "did": c.device, "exp": exp.Unix(),
	}).SignedString(c.secret)
	if err != nil {
		return "", fmt.Errorf("mint token for user %s device %s: %w", c.user, c.device, err)
	}
	c.header, c.renewAt = "Bearer "+tok, exp.Add(-c.ttl/10)
	return c.header, nil
}
