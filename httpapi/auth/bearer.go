package auth

import (
	"errors"
	"strings"
)

// Errors of BearerToken. Their messages are the ones the protocol's JSON 401 bodies carry
// (docs/protocol-v0.md §1.4), so the middleware can show them to clients as they are.
var (
	// ErrMissingHeader means the request had no (or an empty) Authorization header.
	ErrMissingHeader = errors.New("authorization header required")
	// ErrNotBearer means the Authorization header is not exactly "Bearer <token>".
	ErrNotBearer = errors.New("bearer token required")
)

const bearerPrefix = "Bearer "

// BearerToken returns the token of an Authorization header value of the form "Bearer <token>".
// Like the reference server it accepts only the case-sensitive scheme word Bearer, one space and
// a non-empty token without spaces. It returns ErrMissingHeader for an empty value and
// ErrNotBearer for any other shape. The token itself is not checked.
func BearerToken(header string) (string, error) {
	if header == "" {
		return "", ErrMissingHeader
	}
	token, ok := strings.CutPrefix(header, bearerPrefix)
	if !ok || token == "" || strings.Contains(token, " ") {
		return "", ErrNotBearer
	}
	return token, nil
}
