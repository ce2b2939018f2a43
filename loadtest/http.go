package loadtest

import (
	"fmt"
	"io"
	"net/http"
	"time"
)

// HTTP sends requests and records k6's built-in HTTP metrics: http_reqs,
// http_req_duration (from sending the request to the last byte of the body),
// http_req_failed (transport errors and statuses outside 200–399), and
// data_sent / data_received (request and response body bytes; headers are
// not counted).
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
	h.Endpoint(nil)
	return h
}

// Endpoint is a sender whose samples carry a fixed tag set.
type Endpoint struct {
	client   *http.Client
	reqs     *Counter
	duration *Trend
	failed   *Rate
	sent     *Counter
	received *Counter
}

// Endpoint returns a sender whose samples are tagged with tags, e.g.
// {"endpoint": "upload"} for http_req_duration{endpoint:upload}.
func (h *HTTP) Endpoint(tags Tags) *Endpoint {
	m := h.metrics
	return &Endpoint{
		client:   h.client,
		reqs:     m.Counter("http_reqs", Default, tags),
		duration: m.Trend("http_req_duration", Time, tags),
		failed:   m.Rate("http_req_failed", tags),
		sent:     m.Counter("data_sent", Data, tags),
		received: m.Counter("data_received", Data, tags),
	}
}

// Response is a fully read HTTP response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	// Start is when the request was sent, End when the body was read.
	Start, End time.Time
}

// Duration is the request's http_req_duration.
func (r Response) Duration() time.Duration { return r.End.Sub(r.Start) }

// Do sends req, reads the whole response body and records the sample. A
// non-2xx/3xx status is not an error here (it is recorded as failed); a
// transport or body read error is returned, and recorded as failed without a
// duration.
func (e *Endpoint) Do(req *http.Request) (Response, error) {
	start := time.Now()
	resp, err := e.client.Do(req)
	e.reqs.Add(1)
	if req.ContentLength > 0 {
		e.sent.Add(float64(req.ContentLength))
	}
	if err != nil {
		e.failed.Add(true)
		return Response{}, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	end := time.Now()
	e.received.Add(float64(len(body)))
	if err != nil {
		e.failed.Add(true)
		return Response{}, fmt.Errorf("%s %s: read body: %w", req.Method, req.URL.Path, err)
	}
	e.duration.AddDuration(end.Sub(start))
	e.failed.Add(resp.StatusCode < 200 || resp.StatusCode >= 400)
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: body, Start: start, End: end}, nil
}
