package loadtest

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// HTTP sends requests and records k6's built-in HTTP metrics: http_reqs;
// http_req_duration (sending + waiting + receiving: from the connection being
// ready to the last byte of the body) and its parts http_req_blocked (waiting
// for a connection), http_req_connecting, http_req_tls_handshaking,
// http_req_sending, http_req_waiting (time to first byte) and
// http_req_receiving; http_req_failed (transport errors and statuses outside
// 200–399); and data_sent / data_received.
//
// data_sent and data_received are the bytes on the wire (request and status
// lines, headers, bodies) when the client's transport dials through
// CountingDialer, and the body bytes alone otherwise.
//
// Every sample carries, besides the endpoint's tags, k6's per-request tags
// method, status (0 after a transport error), expected_response (whether the
// status is 200–399) and name (the endpoint's "endpoint" tag when it has one,
// else the URL without its query: ids in paths would otherwise make a series
// per request).
type HTTP struct {
	client  *http.Client
	metrics *Metrics
}

// NewHTTP returns an HTTP recording into m; a nil client means http.DefaultClient.
func NewHTTP(m *Metrics, client *http.Client) *HTTP {
	if client == nil {
		client = http.DefaultClient
	}
	h := &HTTP{client: client, metrics: m}
	h.Endpoint(nil).sinks(requestTags{}) // declares the metrics, so thresholds may name them
	return h
}

// Endpoint is a sender whose samples carry a fixed tag set.
type Endpoint struct {
	client  *http.Client
	metrics *Metrics
	tags    Tags
	byReq   sync.Map // requestTags → *httpSinks
}

// requestTags are the tags a request adds to its endpoint's.
type requestTags struct {
	method, name string
	status       int
}

// httpSinks are the handles of one endpoint and request tag set.
type httpSinks struct {
	reqs                                                            *Counter
	duration, blocked, connecting, tls, sending, waiting, receiving *Trend
	failed                                                          *Rate
	sent, received                                                  *Counter
}

// Endpoint returns a sender whose samples are tagged with tags, e.g.
// {"endpoint": "upload"} for http_req_duration{endpoint:upload}.
func (h *HTTP) Endpoint(tags Tags) *Endpoint {
	return &Endpoint{client: h.client, metrics: h.metrics, tags: tags}
}

// sinks returns the handles for a request's tags, creating them on first use.
func (e *Endpoint) sinks(rt requestTags) *httpSinks {
	if s, ok := e.byReq.Load(rt); ok {
		return s.(*httpSinks)
	}
	m := e.metrics
	if rt.method != "" {
		m = m.WithTags(Tags{"method": rt.method, "name": rt.name, "status": strconv.Itoa(rt.status),
			"expected_response": strconv.FormatBool(expected(rt.status))})
	}
	t := e.tags
	s := &httpSinks{
		reqs:       m.Counter("http_reqs", Default, t),
		duration:   m.Trend("http_req_duration", Time, t),
		blocked:    m.Trend("http_req_blocked", Time, t),
		connecting: m.Trend("http_req_connecting", Time, t),
		tls:        m.Trend("http_req_tls_handshaking", Time, t),
		sending:    m.Trend("http_req_sending", Time, t),
		waiting:    m.Trend("http_req_waiting", Time, t),
		receiving:  m.Trend("http_req_receiving", Time, t),
		failed:     m.Rate("http_req_failed", t),
		sent:       m.Counter("data_sent", Data, t),
		received:   m.Counter("data_received", Data, t),
	}
	actual, _ := e.byReq.LoadOrStore(rt, s)
	return actual.(*httpSinks)
}

// expected is k6's default expected_response: a status from 200 to 399.
func expected(status int) bool { return status >= 200 && status < 400 }

// Response is a fully read HTTP response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	// Start is when the request was sent, End when the body was read.
	Start, End time.Time
}

// Duration is the time from sending the request to reading the whole body,
// connection set-up included (http_req_duration leaves that out).
func (r Response) Duration() time.Duration { return r.End.Sub(r.Start) }

// Do sends req, reads the whole response body and records the sample. A
// non-2xx/3xx status is not an error here (it is recorded as failed); a
// transport or body read error is returned, and recorded as failed without
// timings.
func (e *Endpoint) Do(req *http.Request) (Response, error) {
	var tr requestTrace
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), tr.trace()))
	name := e.tags["endpoint"]
	if name == "" {
		u := *req.URL
		u.RawQuery, u.Fragment = "", ""
		name = u.String()
	}
	start := time.Now()
	resp, err := e.client.Do(req)
	if err != nil {
		s := e.sinks(requestTags{method: req.Method, name: name})
		s.reqs.Add(1)
		s.failed.Add(true)
		s.sent.Add(float64(max(req.ContentLength, 0)))
		return Response{}, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	end := time.Now()
	s := e.sinks(requestTags{method: req.Method, name: name, status: resp.StatusCode})
	s.reqs.Add(1)
	sent, received, counted := tr.wireBytes()
	if !counted {
		sent, received = max(req.ContentLength, 0), int64(len(body))
	}
	s.sent.Add(float64(sent))
	s.received.Add(float64(received))
	if err != nil {
		s.failed.Add(true)
		return Response{}, fmt.Errorf("%s %s: read body: %w", req.Method, req.URL.Path, err)
	}
	tr.record(s, start, end)
	s.failed.Add(!expected(resp.StatusCode))
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: body, Start: start, End: end}, nil
}

// requestTrace collects one request's httptrace events. The callbacks may
// run on the transport's goroutines, hence the lock.
type requestTrace struct {
	mu                        sync.Mutex
	getConn, gotConn          time.Time
	connectStart, connectDone time.Time
	tlsStart, tlsDone         time.Time
	wrote, firstByte          time.Time
	counted                   bool // the connection counts its bytes into wire
	wire                      wireCount
}

func (t *requestTrace) trace() *httptrace.ClientTrace {
	at := func(dst *time.Time) {
		t.mu.Lock()
		defer t.mu.Unlock()
		if dst.IsZero() {
			*dst = time.Now()
		}
	}
	return &httptrace.ClientTrace{
		GetConn:      func(string) { at(&t.getConn) },
		ConnectStart: func(string, string) { at(&t.connectStart) },
		ConnectDone:  func(string, string, error) { at(&t.connectDone) },
		TLSHandshakeStart: func() {
			at(&t.tlsStart)
		},
		TLSHandshakeDone: func(tls.ConnectionState, error) { at(&t.tlsDone) },
		GotConn: func(info httptrace.GotConnInfo) {
			at(&t.gotConn)
			t.mu.Lock()
			defer t.mu.Unlock()
			if c, ok := info.Conn.(*countingConn); ok {
				t.counted = true
				c.owner.Store(&t.wire)
			}
		},
		WroteRequest:         func(httptrace.WroteRequestInfo) { at(&t.wrote) },
		GotFirstResponseByte: func() { at(&t.firstByte) },
	}
}

// wireBytes returns what the request's connection sent and received while
// the request held it; counted is false when the connection does not count.
func (t *requestTrace) wireBytes() (sent, received int64, counted bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.wire.sent.Load(), t.wire.received.Load(), t.counted
}

// record adds the request's timings, as k6 splits them: blocked until a
// connection was ready (less connecting and TLS), then sending, waiting and
// receiving, whose sum is http_req_duration.
func (t *requestTrace) record(s *httpSinks, start, end time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	span := func(from, to time.Time) time.Duration {
		if from.IsZero() || to.IsZero() || to.Before(from) {
			return 0
		}
		return to.Sub(from)
	}
	ready := t.gotConn
	if ready.IsZero() {
		ready = start
	}
	connecting, tlsTime := span(t.connectStart, t.connectDone), span(t.tlsStart, t.tlsDone)
	s.blocked.AddDuration(max(span(start, ready)-connecting-tlsTime, 0))
	s.connecting.AddDuration(connecting)
	s.tls.AddDuration(tlsTime)
	wrote, first := t.wrote, t.firstByte
	if wrote.IsZero() {
		wrote = ready
	}
	if first.IsZero() {
		first = wrote
	}
	sending, waiting, receiving := span(ready, wrote), span(wrote, first), span(first, end)
	s.sending.AddDuration(sending)
	s.waiting.AddDuration(waiting)
	s.receiving.AddDuration(receiving)
	s.duration.AddDuration(sending + waiting + receiving)
}

// CountingDialer wraps a transport's DialContext so that its connections
// count the bytes they carry; an Endpoint whose client dials through it
// records data_sent and data_received as wire bytes. Use it as
//
//	&http.Transport{DialContext: loadtest.CountingDialer((&net.Dialer{}).DialContext)}
func CountingDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: c}, nil
	}
}

// countingConn counts the bytes read and written through it into the
// request that holds it. Ownership passes when the transport hands the
// connection to the next request (httptrace's GotConn): the transport does
// that only after the previous response was read to its end, and the next
// request writes only after, so every byte lands in its own request's count
// even when the hand-over races the previous request's bookkeeping.
type countingConn struct {
	net.Conn
	owner atomic.Pointer[wireCount]
}

// wireCount is one request's bytes on the wire.
type wireCount struct{ sent, received atomic.Int64 }

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if o := c.owner.Load(); o != nil {
		o.received.Add(int64(n))
	}
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if o := c.owner.Load(); o != nil {
		o.sent.Add(int64(n))
	}
	return n, err
}
