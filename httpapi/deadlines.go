package httpapi

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// Defaults of Deadlines.
const (
	// DefaultBodyGrace is how long a request body may take before it has to keep pace with
	// the minimum rate: enough for a phone on a bad network to start sending.
	DefaultBodyGrace = 10 * time.Second
	// DefaultMinBodyRate is the slowest a request body may arrive after the grace, in bytes
	// per second. A 32 MiB upload at this rate still gets over nine hours; what it bounds is
	// a client that trickles a byte now and then to hold a connection.
	DefaultMinBodyRate = 1 << 10
	// DefaultWriteTimeout bounds the writing of an ordinary answer, from the moment its
	// request was read: a client that does not read its download cannot hold the handler.
	DefaultWriteTimeout = 2 * time.Minute
)

// Deadlines bound how long a client may take to send its request body and to read the answer,
// so that no client holds a handler, its goroutine and its socket longer than its data
// justifies. The zero value of each field means its default; a negative value switches the
// bound off.
type Deadlines struct {
	// BodyGrace is the time a request body gets before MinBodyRate applies; 0 means
	// DefaultBodyGrace. A request that announces a body and never sends it fails after it.
	BodyGrace time.Duration
	// MinBodyRate is the slowest a body may arrive, in bytes per second, averaged since the
	// request began: by BodyGrace + n/MinBodyRate the first n bytes must be there. 0 means
	// DefaultMinBodyRate.
	MinBodyRate int64
	// WriteTimeout bounds an ordinary answer; held requests (streams, long-polls) get
	// per-write deadlines of their own instead. 0 means DefaultWriteTimeout.
	WriteTimeout time.Duration
}

func (d Deadlines) withDefaults() Deadlines {
	if d.BodyGrace == 0 {
		d.BodyGrace = DefaultBodyGrace
	}
	if d.MinBodyRate == 0 {
		d.MinBodyRate = DefaultMinBodyRate
	}
	if d.WriteTimeout == 0 {
		d.WriteTimeout = DefaultWriteTimeout
	}
	return d
}

// errSlowBody is what reading a request body returns once it fell behind its deadline.
var errSlowBody = errors.New("request body arrived too slowly")

// codeRequestTimeout answers a body that arrived too slowly (408).
const codeRequestTimeout = "request_timeout"

// bodyTooSlow reports whether err is a body read that missed its deadline.
func bodyTooSlow(err error) bool { return errors.Is(err, errSlowBody) }

// refuseSlowBody answers 408 request_timeout; net/http closes the connection afterwards, as
// whatever is left of the body cannot be told from a next request.
func refuseSlowBody(w http.ResponseWriter) {
	writeError(w, http.StatusRequestTimeout, codeRequestTimeout, errSlowBody.Error())
}

// deadlines puts Config.Deadlines on the request's connection: a write deadline for the answer
// (lifted by markHeld) and, for a request with a body, a read deadline that moves on as the
// body arrives. Handlers see a body that fell behind as a read error wrapping errSlowBody.
// Connections that do not support deadlines (a test recorder) are served without them.
func (s *Server) deadlines(next http.Handler) http.Handler {
	d := s.cfg.Deadlines
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		now := time.Now()
		if d.WriteTimeout > 0 && rc.SetWriteDeadline(now.Add(d.WriteTimeout)) == nil {
			if info := infoOf(r.Context()); info != nil {
				info.rc = rc
			}
		}
		if r.ContentLength != 0 && d.MinBodyRate > 0 && d.BodyGrace > 0 {
			p := &pacedBody{ReadCloser: r.Body, rc: rc, start: now, d: d}
			if rc.SetReadDeadline(p.deadline()) == nil {
				r.Body = p
			}
		}
		next.ServeHTTP(w, r)
	})
}

// pacedBody is a request body that must arrive at Deadlines.MinBodyRate after the grace.
type pacedBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	start time.Time
	d     Deadlines
	read  int64
}

// deadline is when the bytes read so far plus the next one must have arrived.
func (p *pacedBody) deadline() time.Time {
	return p.start.Add(p.d.BodyGrace + time.Duration(p.read)*time.Second/time.Duration(p.d.MinBodyRate))
}

// Read reads the body and moves the connection's read deadline on by the time the bytes read
// have earned. At the end of the body it lifts the deadline: net/http then reads the socket in
// the background to notice a client that leaves, and that read must not time out.
func (p *pacedBody) Read(b []byte) (int, error) {
	n, err := p.ReadCloser.Read(b)
	p.read += int64(n)
	switch {
	case err == io.EOF:
		_ = p.rc.SetReadDeadline(time.Time{})
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		return n, errSlowBody
	case n > 0:
		_ = p.rc.SetReadDeadline(p.deadline())
	}
	return n, err
}

// markHeld keeps a request that stays open on purpose (a stream, a long-poll) out of the
// latency histogram and lifts the answer's write deadline: such a handler bounds each write
// itself.
func markHeld(r *http.Request) {
	if info := infoOf(r.Context()); info != nil {
		info.held = true
		if info.rc != nil {
			_ = info.rc.SetWriteDeadline(time.Time{})
		}
	}
}

// armAnswer gives the answer of a held request that ends with an ordinary answer (a long-poll)
// the write deadline of an ordinary answer, from now.
func (s *Server) armAnswer(r *http.Request) {
	if info := infoOf(r.Context()); info != nil && info.rc != nil {
		_ = info.rc.SetWriteDeadline(time.Now().Add(s.cfg.Deadlines.WriteTimeout))
	}
}
