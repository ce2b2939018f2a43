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

// authenticate admits requests with a valid Bearer token and answers every other one 401
// authentication_failed with WWW-Authenticate: Bearer (PROTOCOL.md §1.4), before the handler
// looks at the body or the query. The identity goes into the request's context; the token goes
// nowhere, logs included.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := s.identify(r)
		if err != nil {
			unauthorized(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
	})
}

// identify verifies the request's Bearer token and tells the request log whose it is.
func (s *Server) identify(r *http.Request) (auth.Identity, error) {
	token, err := auth.BearerToken(r.Header.Get("Authorization"))
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

// unauthorized answers 401. The auth package's errors are written to be shown: "authorization
// header required", "bearer token required", "invalid token: <reason>"; anything else (a
// canceled JWKS wait) gets a fixed text.
func unauthorized(w http.ResponseWriter, err error) {
	message := "invalid token"
	if errors.Is(err, auth.ErrMissingHeader) || errors.Is(err, auth.ErrNotBearer) || errors.Is(err, auth.ErrInvalidToken) {
		message = err.Error()
	}
	w.Header().Set("WWW-Authenticate", "Bearer")
	writeError(w, http.StatusUnauthorized, codeAuthFailed, message)
}
