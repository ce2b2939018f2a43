package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pulsesync/pulsesync/httpapi/auth"
	"github.com/pulsesync/pulsesync/pg"
	"github.com/pulsesync/pulsesync/push"
	"github.com/pulsesync/pulsesync/sequencer"
)

// Fanout is the node's link to the other nodes (package cluster implements it).
type Fanout interface {
	// Announce tells every node, this one included, that an upload committed.
	Announce(a sequencer.Advance)
	// Watch makes sure the user's advances reach this node from now on; call it before
	// reading the user's seq from the database.
	Watch(ctx context.Context, user string) error
	// Healthy reports whether advances of other nodes reach this node within milliseconds;
	// while it is false they arrive only through reconciliation, and the node is not ready.
	Healthy() bool
}

// maxWait bounds a long-poll's wait=S (docs/architecture.md "Push protocol").
const maxWait = 60

const codeTooManyConnections = "too_many_connections"

// parseStreamQuery reads the after and schema parameters of /sync/ws and /sync/events, with
// the download's rules and messages.
func parseStreamQuery(v url.Values) (after int64, schema, message string) {
	q, message := parseDownloadQuery(url.Values{"after": {v.Get("after")}, "schema": {v.Get("schema")}})
	return q.After, q.Schema, message
}

// parseWait reads a download's optional wait=S; 0 means a plain download.
func parseWait(v url.Values) (time.Duration, string) {
	s := v.Get("wait")
	if s == "" {
		return 0, ""
	}
	n, err := strconv.Atoi(s)
	switch {
	case err != nil:
		return 0, "wait must be an integer"
	case n < 0 || n > maxWait:
		return 0, "wait must be between 0 and 60"
	}
	return time.Duration(n) * time.Second, ""
}

// refuseAdmission answers a session the caps do not admit: 429 with Retry-After, or 503 while
// the server shuts down.
func refuseAdmission(w http.ResponseWriter, err error) {
	if errors.Is(err, push.ErrShuttingDown) {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, codeNotReady, "server shutting down")
		return
	}
	w.Header().Set("Retry-After", "5")
	writeError(w, http.StatusTooManyRequests, codeTooManyConnections, err.Error())
}

func peerOf(id auth.Identity) push.Peer {
	return push.Peer{User: id.User, Source: id.Source, Expires: id.Expires}
}

// websocket serves GET /sync/ws. With an Authorization header the token is checked before the
// upgrade (401 as everywhere); without one the socket is upgraded and must send
// {"type":"auth","token":…} first, as browsers cannot set headers.
func (s *Server) websocket(w http.ResponseWriter, r *http.Request) {
	after, schema, message := parseStreamQuery(r.URL.Query())
	if message != "" {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, message)
		return
	}
	markHeld(r)
	req := push.WSRequest{After: after, Schema: schema, Authenticate: s.authenticateMessage}
	if headers := r.Header.Values("Authorization"); len(headers) > 1 || len(headers) == 1 && headers[0] != "" {
		id, err := s.identifyV0(r)
		if err != nil {
			unauthorized(w, err)
			return
		}
		ticket, err := s.cfg.Push.Admit(id.User, "ws")
		if err != nil {
			refuseAdmission(w, err)
			return
		}
		peer := peerOf(id)
		req.Peer, req.Ticket = &peer, ticket
	}
	s.cfg.Push.ServeWS(w, r, req)
}

// authenticateMessage verifies a token a WebSocket sent in its first message.
func (s *Server) authenticateMessage(ctx context.Context, token string) (push.Peer, error) {
	id, err := s.cfg.Verifier.Verify(ctx, token)
	if errors.Is(err, jwt.ErrTokenExpired) {
		return push.Peer{}, errors.Join(push.ErrTokenExpired, err)
	}
	if err == nil {
		err = id.RequireSource()
	}
	if err != nil {
		return push.Peer{}, err
	}
	return peerOf(id), nil
}

// events serves GET /sync/events, the push frames as Server-Sent Events. A browser resuming
// sends Last-Event-ID, the last seq it was told, which then stands for after.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	after, schema, message := parseStreamQuery(r.URL.Query())
	if message != "" {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, message)
		return
	}
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, codeInvalidRequest, "Last-Event-ID must be a seq")
			return
		}
		after = max(after, n)
	}
	markHeld(r)
	id := identityOf(r.Context())
	ticket, err := s.cfg.Push.Admit(id.User, "sse")
	if err != nil {
		refuseAdmission(w, err)
		return
	}
	err = s.cfg.Push.ServeSSE(w, r, push.SSERequest{Peer: peerOf(id), Ticket: ticket, After: after, Schema: schema})
	if errors.Is(err, push.ErrShuttingDown) {
		refuseAdmission(w, err)
	} else if err != nil {
		s.serverError(r, "event stream failed", err)
		writeError(w, http.StatusInternalServerError, codeDownloadFailed, "Failed to open event stream")
	}
}

// longPoll answers a download with wait=S: it holds an empty answer until changes for the
// query arrive or S elapses, then answers exactly as a plain download would at that moment.
func (s *Server) longPoll(w http.ResponseWriter, r *http.Request, q pg.DownloadQuery, wait time.Duration) {
	markHeld(r)
	id := identityOf(r.Context())
	ticket, err := s.cfg.Push.Admit(id.User, "longpoll")
	if err != nil {
		refuseAdmission(w, err)
		return
	}
	var page pg.DownloadPage
	err = s.cfg.Push.LongPoll(r.Context(), push.LongPollRequest{Peer: peerOf(id), Ticket: ticket, After: q.After,
		Schema: q.Schema, Wait: wait}, func(ctx context.Context) (bool, error) {
		var err error
		page, err = s.store.Download(ctx, id.User, id.Source, q)
		return len(page.Changes) > 0, err
	})
	switch {
	case r.Context().Err() != nil:
		return // the client left; nobody reads an answer
	case errors.Is(err, push.ErrShuttingDown):
		refuseAdmission(w, err)
	case err != nil:
		s.serverError(r, "download failed", err)
		writeError(w, http.StatusInternalServerError, codeDownloadFailed, "Failed to process download")
	default:
		s.armAnswer(r)
		s.writeEncoded(w, func(b []byte) []byte { return appendDownloadPage(b, &page) })
	}
}

// emptyPoll answers, without the database, a download that certainly finds nothing: one whose
// cursor is at or past its window top, when that top is given (until) or is the user's
// watermark known current on this node. The answer is the one §4.2 step 2 prescribes.
func (s *Server) emptyPoll(user string, q pg.DownloadQuery) (pg.DownloadPage, bool) {
	top := q.Until
	if top == 0 {
		if s.cfg.Watermarks == nil {
			return pg.DownloadPage{}, false
		}
		seq, ok := s.cfg.Watermarks.Lookup(user)
		if !ok {
			return pg.DownloadPage{}, false
		}
		top = seq
	}
	if q.After < top {
		return pg.DownloadPage{}, false
	}
	return pg.DownloadPage{Changes: []pg.StreamEntry{}, NextAfter: q.After, WindowUntil: top}, true
}

// downloadFromDatabase runs a plain download and, when its window top is the user's watermark,
// remembers it for later empty polls. The cache entry is opened before the read, so an advance
// committed meanwhile is not lost (sequencer.Watermarks.Begin).
func (s *Server) downloadFromDatabase(ctx context.Context, id auth.Identity, q pg.DownloadQuery) (pg.DownloadPage, error) {
	remember := s.cfg.Watermarks != nil && q.Until == 0
	if remember {
		if err := s.cfg.Fanout.Watch(ctx, id.User); err != nil {
			remember = false
		} else {
			s.cfg.Watermarks.Begin(id.User)
		}
	}
	page, err := s.store.Download(ctx, id.User, id.Source, q)
	if err == nil && remember {
		s.cfg.Watermarks.Fill(id.User, page.WindowUntil)
	}
	return page, err
}
