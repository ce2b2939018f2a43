package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/pulsesync/pulsesync/pg"
)

// upload serves POST /sync/upload (docs/protocol-v0.md §3). The body is read whole (it is one
// transaction anyway), decoded by decodeUpload and handed to the store. Answers: 200 with one
// status per change; 400 invalid_request for an unparsable body or a request the store refuses
// as a whole (*pg.RequestError); 408 request_timeout for a body slower than Config.Deadlines;
// 413 request_too_large past Config.MaxBodyBytes; 500
// upload_failed when the database fails, in which case nothing was applied.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	body, err := s.readBody(r)
	if err != nil {
		s.refuseBody(w, r, err)
		return
	}
	changes, err := decodeUpload(body)
	if err != nil {
		s.refuseBody(w, r, err)
		return
	}
	id := identityOf(r.Context())
	res, err := s.store.Upload(r.Context(), id.User, id.Source, changes)
	var refused *pg.RequestError
	switch {
	case errors.As(err, &refused):
		writeError(w, http.StatusBadRequest, codeInvalidRequest, refused.Message)
		return
	case err != nil:
		s.serverError(r, "upload failed", err, slog.Int("changes", len(changes)))
		writeError(w, http.StatusInternalServerError, codeUploadFailed, "Failed to process upload")
		return
	}
	s.metrics.observeUpload(res.Outcomes)
	if res.Advance.Seq > 0 {
		s.cfg.Fanout.Announce(res.Advance) // committed: tell the user's other devices
	}
	s.writeEncoded(w, func(b []byte) []byte { return appendUploadResult(b, &res) })
}

// readBody reads the whole request body within Config.MaxBodyBytes. A declared Content-Length
// over the cap is refused before reading anything.
func (s *Server) readBody(r *http.Request) ([]byte, error) {
	limit := s.cfg.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		// ReadFrom wants MinRead bytes free before each read, the one that finds EOF included:
		// without them it would copy the whole body into a buffer twice the size.
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(r.Body); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// refuseBody answers a body that could not be read or decoded: 408 when it arrived too slowly,
// 413 past the size cap, 400 otherwise. A body cut short by the client is a 400 as well; the client will not see it.
func (s *Server) refuseBody(w http.ResponseWriter, r *http.Request, err error) {
	var tooLarge *http.MaxBytesError
	var bad *badRequest
	switch {
	case bodyTooSlow(err):
		refuseSlowBody(w)
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, codeRequestTooLarge,
			fmt.Sprintf("request body larger than %d bytes", tooLarge.Limit))
	case errors.As(err, &bad):
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "bad upload body", slog.String("user", identityOf(r.Context()).User),
			slog.String("err", err.Error()))
		writeError(w, http.StatusBadRequest, codeInvalidRequest, bad.message)
	default:
		writeError(w, http.StatusBadRequest, codeInvalidRequest, msgUnparsableUpload)
	}
}
