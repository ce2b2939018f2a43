package httpapi_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pulsesync/pulsesync/internal/natstest"
	"github.com/pulsesync/pulsesync/internal/pushtest"
	"github.com/pulsesync/pulsesync/internal/servertest"
)

func TestRouting_UnknownPathsAndMethodsAreJSON(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	token := srv.Token("alice", "phone")
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/nope"},
		{http.MethodPost, "/sync"},
		{http.MethodGet, "/sync/upload/extra"},
		{http.MethodGet, "/dummy-signin"}, // not mounted without DevSignIn
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			wantError(t, call(t, srv, tc.method, tc.path, token, ""), http.StatusNotFound, "not_found", "no such endpoint")
		})
	}
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodGet, "/sync/upload", "POST"},
		{http.MethodPut, "/sync/upload", "POST"},
		{"BREW", "/sync/upload", "POST"},
		{http.MethodPost, "/sync/download", "GET"},
		{http.MethodDelete, "/health", "GET"},
		{http.MethodGet, "/admin/materialize-failures/retry", "POST"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := call(t, srv, tc.method, tc.path, "", "") // no token: routing answers first
			wantError(t, r, http.StatusMethodNotAllowed, "method_not_allowed", "Only "+tc.allow+" method is allowed")
			if got := r.header.Get("Allow"); got != tc.allow {
				t.Fatalf("Allow %q, want %q", got, tc.allow)
			}
		})
	}
}

func TestHealthAndReadiness(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	pushtest.WaitFor(t, srv.Node.Cluster.Healthy) // the LISTEN connection may still be opening
	for path, want := range map[string]string{"/health": `{"status":"healthy"}`, "/ready": `{"status":"ready"}`} {
		r := call(t, srv, http.MethodGet, path, "", "")
		wantStatus(t, r, http.StatusOK, nil)
		if string(r.body) != want+"\n" {
			t.Fatalf("%s: %q, want %q", path, r.body, want)
		}
	}
}

// TestReady_503WhileTheFanoutStreamIsDown stops NATS under a node: /health stays up, /ready
// answers 503 and the node says why once, at warn; with NATS back it is ready again.
func TestReady_503WhileTheFanoutStreamIsDown(t *testing.T) {
	nats := natstest.Start(t)
	var logs lockedBuffer
	srv := servertest.New(t, servertest.Options{NATSURL: nats.URL(),
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	pushtest.WaitFor(t, srv.Node.Cluster.Healthy)
	wantStatus(t, call(t, srv, http.MethodGet, "/ready", "", ""), http.StatusOK, nil)

	nats.Stop()
	pushtest.WaitFor(t, func() bool { return !srv.Node.Cluster.Healthy() })
	for range 3 {
		wantError(t, call(t, srv, http.MethodGet, "/ready", "", ""), http.StatusServiceUnavailable, "not_ready", "fan-out stream down")
	}
	wantStatus(t, call(t, srv, http.MethodGet, "/health", "", ""), http.StatusOK, nil)
	all := strings.Join(logs.lines(), "\n")
	if n := strings.Count(all, "not ready: the fan-out's advance stream is down"); n != 1 {
		t.Fatalf("the stream going down was logged %d times over 3 probes, want once:\n%s", n, all)
	}

	if err := nats.Restart(); err != nil {
		t.Fatal(err)
	}
	pushtest.WaitFor(t, srv.Node.Cluster.Healthy)
	wantStatus(t, call(t, srv, http.MethodGet, "/ready", "", ""), http.StatusOK, nil)
}

// TestDatabaseGone_AnswersAre5xxJSON closes the store's pool under the running server: liveness
// stays up, readiness and every database-backed endpoint answer their documented 5xx envelope.
func TestDatabaseGone_AnswersAre5xxJSON(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	token := srv.Token("alice", "phone")
	srv.Pool.Close()

	wantStatus(t, call(t, srv, http.MethodGet, "/health", "", ""), http.StatusOK, nil)
	cases := []struct {
		method, path, body string
		status             int
		code, message      string
	}{
		{http.MethodGet, "/ready", "", 503, "not_ready", "database unreachable"},
		{http.MethodPost, "/sync/upload", batch(insertUser(1, rowR, "Ann")), 500, "upload_failed", "Failed to process upload"},
		{http.MethodGet, "/sync/download?after=0", "", 500, "download_failed", "Failed to process download"},
		{http.MethodGet, "/admin/materialize-failures", "", 500, "list_failures_failed", "Failed to list failures"},
		{http.MethodPost, "/admin/materialize-failures/retry?id=1", "", 500, "retry_failed", "Failed to retry materialize failure"},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			wantError(t, call(t, srv, tc.method, tc.path, token, tc.body), tc.status, tc.code, tc.message)
		})
	}
}

func TestMetrics_ExposeRequestsUploadsAndPool(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	phone := newDevice(srv, "alice", "phone")
	phone.upload(t, batch(insertUser(1, rowR, "Ann"), insertUser(2, rowR2, "Bob")))
	phone.upload(t, batch(insertUser(3, rowR, "Ann again"), `{"source_change_id":4,"table":"nope","op":"INSERT","pk":"`+rowR+`","payload":{}}`))
	phone.download(t, "after=0")
	call(t, srv, http.MethodGet, "/no/such/path/42", "", "")

	r := call(t, srv, http.MethodGet, "/metrics", "", "")
	if r.status != http.StatusOK {
		t.Fatalf("GET /metrics: %d", r.status)
	}
	text := string(r.body)
	for _, want := range []string{
		`pulsesync_http_requests_total{code="200",route="/sync/upload"} 2`,
		`pulsesync_http_requests_total{code="200",route="/sync/download"} 1`,
		`pulsesync_http_requests_total{code="404",route="unmatched"} 1`,
		`pulsesync_http_request_duration_seconds_count{route="/sync/upload"} 2`,
		`pulsesync_http_request_duration_seconds_bucket{route="/sync/download",le="+Inf"} 1`,
		`pulsesync_upload_changes_total{status="applied"} 2`,
		`pulsesync_upload_changes_total{status="conflict"} 1`,
		`pulsesync_upload_changes_total{status="invalid"} 1`,
		`pulsesync_pg_pool_connections{state="acquired"} `, // the fan-out may hold one at any moment
		`pulsesync_pg_pool_connections{state="idle"} `,
		`pulsesync_pg_pool_max_connections `,
		`pulsesync_pg_pool_acquires_total `,
		`pulsesync_pg_pool_acquire_wait_seconds_total `,
	} {
		if !strings.Contains(text, "\n"+want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(text, "/no/such/path") {
		t.Errorf("/metrics has a raw path as a label")
	}
}

func TestDevSignIn(t *testing.T) {
	srv := servertest.New(t, servertest.Options{DevSignIn: true})
	var got struct {
		Token     string
		ExpiresIn int64 `json:"expires_in"`
		User      string
		Device    string
	}
	wantStatus(t, call(t, srv, http.MethodPost, "/dummy-signin", "", `{"user":"alice","password":"any","device":"phone-7f3a"}`), http.StatusOK, &got)
	if got.Token == "" || got.ExpiresIn != 300 || got.User != "alice" || got.Device != "phone-7f3a" {
		t.Fatalf("sign-in answer %+v, want a token for alice's phone-7f3a valid 300 s", got)
	}
	// The token works, for that user and device: the device does not see its own change.
	phone := &device{srv: srv, token: got.Token}
	phone.upload(t, batch(insertUser(1, rowR, "Ann")))
	if p := phone.download(t, "after=0"); len(p.Changes) != 0 || p.WindowUntil != 1 {
		t.Fatalf("the signed-in device downloaded %+v, want nothing of its own and window 1", p)
	}
	if p := newDevice(srv, "alice", "laptop").download(t, "after=0"); len(p.Changes) != 1 || p.Changes[0].SourceID != "phone-7f3a" {
		t.Fatalf("alice's laptop downloaded %+v, want the phone's change", p)
	}

	wantStatus(t, call(t, srv, http.MethodPost, "/dummy-signin", "", `{"user":"bob"}`), http.StatusOK, &got)
	if !regexp.MustCompile(`^device-[0-9a-z]+$`).MatchString(got.Device) {
		t.Fatalf("invented device %q, want device-<base 36>", got.Device)
	}
	wantError(t, call(t, srv, http.MethodPost, "/dummy-signin", "", `{"user":`), http.StatusBadRequest, "invalid_request", "invalid JSON")
	wantError(t, call(t, srv, http.MethodPost, "/dummy-signin", "", `{"password":"x"}`), http.StatusBadRequest, "invalid_request", "user required")
}

// lockedBuffer is a log destination safe for the server's concurrent handlers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSpace(l.b.String()), "\n")
}

// TestRequestLog_OneLinePerRequestWithoutTokens checks the request log's fields and levels, and
// that no token reaches the log, whether valid or refused.
func TestRequestLog_OneLinePerRequestWithoutTokens(t *testing.T) {
	var logs lockedBuffer
	srv := servertest.New(t, servertest.Options{Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	token := srv.Token("alice", "phone")
	bad := srv.Token("mallory", "x") + "tampered"
	call(t, srv, http.MethodPost, "/sync/upload", token, batch(insertUser(1, rowR, "Ann")))
	call(t, srv, http.MethodGet, "/sync/download?after=0", bad, "")
	srv.Pool.Close()
	call(t, srv, http.MethodGet, "/sync/download?after=0", token, "")

	type line struct {
		Level, Msg, Method, Route, User string
		Status                          int
		DurMS                           *float64 `json:"dur_ms"`
		ReqID                           string   `json:"req_id"`
	}
	var requests []line
	deadline := time.Now().Add(5 * time.Second)
	for len(requests) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("want 3 request lines, have %d in\n%s", len(requests), strings.Join(logs.lines(), "\n"))
		}
		requests = requests[:0]
		for _, l := range logs.lines() {
			var v line
			if json.Unmarshal([]byte(l), &v) == nil && v.Msg == "http request" {
				requests = append(requests, v)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	want := []line{
		{Level: "DEBUG", Method: "POST", Route: "/sync/upload", User: "alice", Status: 200},
		{Level: "DEBUG", Method: "GET", Route: "/sync/download", User: "", Status: 401},
		{Level: "WARN", Method: "GET", Route: "/sync/download", User: "alice", Status: 500},
	}
	for i, w := range want {
		got := requests[i]
		if got.Level != w.Level || got.Method != w.Method || got.Route != w.Route || got.User != w.User || got.Status != w.Status ||
			got.DurMS == nil || got.ReqID == "" {
			t.Errorf("request line %d: %+v, want %+v with dur_ms and req_id", i, got, w)
		}
	}
	all := strings.Join(logs.lines(), "\n")
	for _, secret := range []string{token, bad, strings.Split(token, ".")[2], string(srv.Secret)} {
		if strings.Contains(all, secret) {
			t.Fatalf("the log contains a token or the secret:\n%s", all)
		}
	}
}

// TestServer_LeavesNoGoroutines serves a few requests in a subtest; once its cleanups have run
// (server, verifier, pool), no goroutine of it may remain.
func TestServer_LeavesNoGoroutines(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Run("serve", func(t *testing.T) {
		srv := servertest.New(t, servertest.Options{DevSignIn: true})
		phone := newDevice(srv, "alice", "phone")
		phone.upload(t, batch(insertUser(1, rowR, "Ann")))
		phone.download(t, "after=0")
		call(t, srv, http.MethodGet, "/metrics", "", "")
	})
	goleak.VerifyNone(t, before)
}
