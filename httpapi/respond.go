package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
)

// The protocol's error codes (docs/protocol-v0.md §7) and this server's additions.
const (
	codeInvalidRequest     = "invalid_request"
	codeAuthFailed         = "authentication_failed"
	codeNotFound           = "not_found"
	codeMethodNotAllowed   = "method_not_allowed"
	codeRequestTooLarge    = "request_too_large"
	codeUploadFailed       = "upload_failed"
	codeDownloadFailed     = "download_failed"
	codeListFailuresFailed = "list_failures_failed"
	codeRetryFailed        = "retry_failed"
	codeRetryInProgress    = "retry_in_progress"
	codeTokenError         = "token_error"
	codeNotReady           = "not_ready"
	codeInternal           = "internal_error"
)

// errorBody is the envelope of every error answer.
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// writeError answers with status and the JSON error envelope. It encodes with encoding/json's
// defaults, as the reference did, so the bytes match it: '>' in "after must be >= 0" is written
// \u003e, and the body ends with a newline.
func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{Error: code, Message: message})
}

// writeJSON answers 200 with v encoded by encoding/json's defaults, for the answers that are
// neither hot nor hand-encoded.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// serverError logs the cause of a 5xx answer with the request's user and source. When the
// client went away first, the failure is its own doing and is logged at debug level.
func (s *Server) serverError(r *http.Request, msg string, err error, attrs ...slog.Attr) {
	level := slog.LevelError
	if r.Context().Err() != nil {
		level = slog.LevelDebug
	}
	id := identityOf(r.Context())
	attrs = append(attrs, slog.String("user", id.User), slog.String("source", id.Source), slog.String("err", err.Error()))
	s.log.LogAttrs(r.Context(), level, msg, attrs...)
}

// writeEncoded answers 200 with the JSON that encode appends to an empty buffer. Buffers are
// reused across requests, except very large ones, which would pin their memory.
func (s *Server) writeEncoded(w http.ResponseWriter, encode func([]byte) []byte) {
	const keepBelow = 1 << 20
	bp, _ := s.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	b := encode((*bp)[:0])
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
	if cap(b) <= keepBelow {
		*bp = b
		s.bufs.Put(bp)
	}
}

// notFound answers a path no route matches.
func notFound(w http.ResponseWriter, _ *http.Request) {
	writeError(w, http.StatusNotFound, codeNotFound, "no such endpoint")
}

// methodNotAllowed returns the 405 handler of router: the JSON envelope, and an Allow header
// listing the methods the path does serve. chi hands a custom 405 handler no such list, so the
// handler asks the router, which is cheap enough for an error path.
func methodNotAllowed(router chi.Routes) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allowed []string
		for _, m := range [...]string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
			http.MethodPatch, http.MethodDelete, http.MethodOptions} {
			if router.Match(chi.NewRouteContext(), m, r.URL.Path) {
				allowed = append(allowed, m)
			}
		}
		list := strings.Join(allowed, ", ")
		var message string
		switch len(allowed) {
		case 0: // an unknown method on a path that does not exist either
			message = "method not allowed"
		case 1:
			message = "Only " + list + " method is allowed" // the reference handlers' wording
		default:
			message = "Only " + list + " methods are allowed"
		}
		if list != "" {
			w.Header().Set("Allow", list)
		}
		writeError(w, http.StatusMethodNotAllowed, codeMethodNotAllowed, message)
	}
}
