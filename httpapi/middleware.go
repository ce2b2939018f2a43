package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// requestInfo is what inner handlers tell the request log about a request. The log middleware
// puts it in the context before the route runs; authenticate fills in the user.
type requestInfo struct {
	user string
	// held marks a request kept open on purpose (a stream, a long-poll): its duration says
	// nothing about the server's speed and stays out of the latency histogram.
	held bool
	// rc sets the connection's deadlines; nil when it supports none.
	rc *http.ResponseController
}

type requestInfoKey struct{}

// infoOf returns the request's requestInfo, or nil outside observe.
func infoOf(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	return info
}

// statusClientClosed is nginx's code for a request whose client left before the answer: the
// error the handler answered is the client's doing, not the server's.
const statusClientClosed = 499

// unmatchedRoute labels requests no route matched (404, and 405 of unknown methods), so that
// random paths cannot grow the metrics' label sets.
const unmatchedRoute = "unmatched"

// observe logs every request and records its metrics once it is answered: method, route
// pattern, status, duration, user and request id. Successful and client-error answers log at
// debug level, server errors at warn. An error answered after the client left (the request's
// context is canceled: it closed the connection) counts as 499, except a 408, where the server
// gave up on the client. Tokens and bodies are never logged.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &requestInfo{}
		ctx := context.WithValue(r.Context(), requestInfoKey{}, info)
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r.WithContext(ctx))

		status := ww.Status()
		switch {
		case status == 0: // the handler wrote nothing: net/http answers 200
			status = http.StatusOK
		case status >= http.StatusBadRequest && status != http.StatusRequestTimeout && ctx.Err() != nil:
			status = statusClientClosed
		}
		route := chi.RouteContext(ctx).RoutePattern()
		if route == "" {
			route = unmatchedRoute
		}
		elapsed := time.Since(start)
		s.metrics.observeRequest(route, status, elapsed, info.held)

		level := slog.LevelDebug
		if status >= http.StatusInternalServerError {
			level = slog.LevelWarn
		}
		if s.log.Enabled(ctx, level) {
			s.log.LogAttrs(ctx, level, "http request",
				slog.String("method", r.Method),
				slog.String("route", route),
				slog.Int("status", status),
				slog.Float64("dur_ms", float64(elapsed.Microseconds())/1000),
				slog.String("user", info.user),
				slog.String("req_id", middleware.GetReqID(ctx)),
			)
		}
	})
}

// recoverPanics turns a panicking handler into a 500 internal_error answer and an error log line
// with the stack. http.ErrAbortHandler is passed on: it is net/http's way to abort a response.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.LogAttrs(r.Context(), slog.LevelError, "handler panicked",
				slog.String("method", r.Method),
				slog.String("route", chi.RouteContext(r.Context()).RoutePattern()),
				slog.String("req_id", middleware.GetReqID(r.Context())),
				slog.Any("panic", v),
				slog.String("stack", string(debug.Stack())),
			)
			writeError(w, http.StatusInternalServerError, codeInternal, "Internal server error")
		}()
		next.ServeHTTP(w, r)
	})
}

// limitBody caps every request body at Config.MaxBodyBytes. Reading past the cap fails with an
// *http.MaxBytesError, which handlers answer 413, and makes net/http close the connection
// instead of draining the rest.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}
