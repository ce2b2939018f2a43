package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/pulsesync/pulsesync/httpapi/auth"
)

type identityKey struct{}

// identityOf returns the identity authenticate stored in ctx. Handlers behind authenticate can
// rely on it being there.
func identityOf(ctx context.Context) auth.Identity {
	id, _ := ctx.Value(identityKey{}).(auth.Identity)
	return id
}

// errManyHeaders refuses a request with more than one Authorization header: which one a proxy
// or a handler would read differs, so none is trusted.
var errManyHeaders = errors.New("exactly one authorization header allowed")

// authenticate admits v0 requests with a valid Bearer token that names a source (claim did) and
// answers every other one 401 authentication_failed with WWW-Authenticate: Bearer (docs/protocol-v0.md
// §1.4), before the handler looks at the body or the query. The identity goes into the request's
// context; the token goes nowhere, logs included. A body the handler will never read is not
// waited for: the 401 closes the connection instead, so a client announcing a body it never
// sends cannot hold the answer back.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := s.identifyV0(r)
		if err != nil {
			if r.ContentLength != 0 {
				w.Header().Set("Connection", "close")
			}
			unauthorized(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
	})
}

// identifyV0 is identify for the v0 routes, whose source comes from the token's did claim.
func (s *Server) identifyV0(r *http.Request) (auth.Identity, error) {
	id, err := s.identify(r)
	if err != nil {
		return auth.Identity{}, err
	}
	if err := id.RequireSource(); err != nil {
		return auth.Identity{}, err
	}
	return id, nil
}

// identify verifies the request's one Bearer token and tells the request log whose it is. The
// identity's Source is the token's did, "" when it has none.
func (s *Server) identify(r *http.Request) (auth.Identity, error) {
	headers := r.Header.Values("Authorization")
	if len(headers) > 1 {
		return auth.Identity{}, errManyHeaders
	}
	var header string
	if len(headers) == 1 {
		header = headers[0]
	}
	token, err := auth.BearerToken(header)
	if err != nil {
		return auth.Identity{}, err
	}
	id, err := s.cfg.Verifier.Verify(r.Context(), token)
	if err != nil {
		return auth.Identity{}, err
	}
	if info := infoOf(r.Context()); info != nil {
		info.user = id.User
	}
	return id, nil
}

// unauthorized answers 401. The errors of identify are written to be shown: "authorization
// header required", "bearer token required", "invalid token: <reason>", "exactly one
// authorization header allowed"; anything else (a canceled JWKS wait) gets a fixed text.
func unauthorized(w http.ResponseWriter, err error) {
	message := "invalid token"
	if errors.Is(err, auth.ErrMissingHeader) || errors.Is(err, auth.ErrNotBearer) || errors.Is(err, auth.ErrInvalidToken) ||
		errors.Is(err, errManyHeaders) {
		message = err.Error()
	}
	w.Header().Set("WWW-Authenticate", "Bearer")
	writeError(w, http.StatusUnauthorized, codeAuthFailed, message)
}
