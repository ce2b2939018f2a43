package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Mint returns an HS256 token for user's device source, signed with secret, with the claims
// sub, did, iat and nbf set to now and, when ttl > 0, exp = now + ttl. A token minted with
// ttl == 0 never expires and is refused unless the verifier allows tokens without exp. An empty
// secret, user or source, or a negative ttl, is an error. Mint is meant for `pulsesync token`,
// the development sign-in and tests.
func Mint(secret []byte, user, source string, ttl time.Duration) (string, error) {
	switch {
	case len(secret) == 0:
		return "", errors.New("mint token: empty secret")
	case user == "":
		return "", errors.New("mint token: empty user")
	case source == "":
		return "", errors.New("mint token: empty source")
	case ttl < 0:
		return "", fmt.Errorf("mint token: negative ttl %v", ttl)
	}
	now := time.Now()
	c := jwt.MapClaims{
		"sub": user,
		"did": source,
		"iat": now.Unix(),
		"nbf": now.Unix(),
	}
	if ttl > 0 {
		c["exp"] = now.Add(ttl).Unix()
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	return token, nil
}
