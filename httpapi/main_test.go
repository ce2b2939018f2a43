package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pulsesync/pulsesync/internal/pgtest"
	"github.com/pulsesync/pulsesync/internal/servertest"
	"github.com/pulsesync/pulsesync/pg"
)

func TestMain(m *testing.M) {
	pgtest.Main(m, pgtest.Options{Template: servertest.Template})
}

// response is an answer read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

// call sends one request to srv and reads the answer. An empty token sends no Authorization
// header; an empty body sends none.
func call(t *testing.T, srv *servertest.Server, method, path, token, body string) response {
	t.Helper()
	return callHeader(t, srv, method, path, body, func(h http.Header) {
		if token != "" {
			h.Set("Authorization", "Bearer "+token)
		}
	})
}

// callHeader is call with the request's headers set by setHeaders.
func callHeader(t *testing.T, srv *servertest.Server, method, path, body string, setHeaders func(http.Header)) response {
	t.Helper()
	var rd io.Reader = http.NoBody
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	setHeaders(req.Header)
	return send(t, srv, req)
}

// send runs req and reads the answer.
func send(t *testing.T, srv *servertest.Server, req *http.Request) response {
	t.Helper()
	resp, err := srv.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read answer: %v", req.Method, req.URL.Path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// envelope is the JSON error body, encoded as the reference's encoder does.
func envelope(code, message string) string {
	var b bytes.Buffer
	_ = json.NewEncoder(&b).Encode(map[string]string{"error": code, "message": message})
	return b.String()
}

// wantError checks that r is status with exactly the JSON envelope {code, message}.
func wantError(t *testing.T, r response, status int, code, message string) {
	t.Helper()
	if r.status != status || string(r.body) != envelope(code, message) {
		t.Fatalf("got %d %q, want %d %q", r.status, r.body, status, envelope(code, message))
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
}

// wantStatus checks r's status and JSON content type and decodes its body into v (if not nil).
func wantStatus(t *testing.T, r response, status int, v any) {
	t.Helper()
	if r.status != status {
		t.Fatalf("got %d %s, want %d", r.status, r.body, status)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	if v != nil {
		if err := json.Unmarshal(r.body, v); err != nil {
			t.Fatalf("decode %s: %v", r.body, err)
		}
	}
}

// device is one client device of a user, known to the server by its token.
type device struct {
	srv   *servertest.Server
	token string
}

func newDevice(srv *servertest.Server, user, source string) *device {
	return &device{srv: srv, token: srv.Token(user, source)}
}

// upload posts body and expects 200.
func (d *device) upload(t *testing.T, body string) uploadResponse {
	t.Helper()
	var out uploadResponse
	wantStatus(t, call(t, d.srv, http.MethodPost, "/sync/upload", d.token, body), http.StatusOK, &out)
	return out
}

// download gets /sync/download?query and expects 200.
func (d *device) download(t *testing.T, query string) downloadResponse {
	t.Helper()
	var out downloadResponse
	wantStatus(t, call(t, d.srv, http.MethodGet, "/sync/download?"+query, d.token, ""), http.StatusOK, &out)
	return out
}

// uploadResponse mirrors docs/protocol-v0.md §3.2 for decoding; pointers tell absent keys apart.
type uploadResponse struct {
	Accepted         *bool         `json:"accepted"`
	HighestServerSeq *int64        `json:"highest_server_seq"`
	Statuses         []statusEntry `json:"statuses"`
}

type statusEntry struct {
	SourceChangeID   int64           `json:"source_change_id"`
	Status           string          `json:"status"`
	NewServerVersion *int64          `json:"new_server_version"`
	ServerRow        json.RawMessage `json:"server_row"`
	Message          *string         `json:"message"`
	Invalid          json.RawMessage `json:"invalid"`
}

// downloadResponse mirrors docs/protocol-v0.md §4.3.
type downloadResponse struct {
	Changes     []downloadEntry `json:"changes"`
	HasMore     bool            `json:"has_more"`
	NextAfter   int64           `json:"next_after"`
	WindowUntil int64           `json:"window_until"`
}

type downloadEntry struct {
	ServerID       int64           `json:"server_id"`
	Schema         string          `json:"schema"`
	Table          string          `json:"table"`
	Op             string          `json:"op"`
	PK             string          `json:"pk"`
	Payload        json.RawMessage `json:"payload"`
	ServerVersion  int64           `json:"server_version"`
	Deleted        bool            `json:"deleted"`
	SourceID       string          `json:"source_id"`
	SourceChangeID int64           `json:"source_change_id"`
	TS             string          `json:"ts"`
}

// streamState is what a user's sync state looks like from outside: the watermark and every
// stream entry, own ones included.
type streamState struct {
	watermark int64
	page      pg.DownloadPage
}

// snapshot reads user's sync state through the store, bypassing HTTP.
func snapshot(t *testing.T, srv *servertest.Server, user string) streamState {
	t.Helper()
	ctx := context.Background()
	w, err := srv.Store.Watermark(ctx, user)
	if err != nil {
		t.Fatalf("watermark: %v", err)
	}
	page, err := srv.Store.Download(ctx, user, "", pg.DownloadQuery{Limit: 1000, IncludeSelf: true})
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	return streamState{watermark: w, page: page}
}
