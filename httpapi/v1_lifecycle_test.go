package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/pulsesync/pulsesync/httpapi"
	"github.com/pulsesync/pulsesync/internal/pushtest"
	"github.com/pulsesync/pulsesync/push"
)

// TestV1_Capabilities checks the capabilities answer against the worked example's step 0
// (docs/protocol-v1.md §7): the same members, types and default values, byte for byte.
func TestV1_Capabilities(t *testing.T) {
	srv := newV1Server(t, v1Options{v1: httpapi.V1Config{AppName: "demo", Watch: true}})
	r := srv.device(exUser, exPhone).ok(t, http.MethodGet, "/sync/capabilities", "", nil)
	want := compact(t, `{"protocol_version":"v1","schema_version":1,"app_name":"demo",
 "registered_tables":["business.posts","business.users"],
 "registered_table_specs":[{"schema":"business","table":"posts","sync_key_columns":["id"]},
                           {"schema":"business","table":"users","sync_key_columns":["id"]}],
 "features":{"accepted_push_replay_visibility":true,"bundle_change_watch":true,"bundle_pull":true,
             "bundle_push":true,"capabilities_endpoint":true,"committed_bundle_row_fetch":true,
             "committed_bundle_visibility":true,"connect_lifecycle":true,"graceful_shutdown":true,
             "history_pruned_errors":true,"history_pruned_visibility":true,"push_session_chunking":true,
             "registered_write_rejection_enforced":true,"retained_floor_visibility":true,
             "retained_window_visibility":true,"scope_initialization_leases":true,
             "server_checkpoint_tracking":false,"snapshot_chunking":true,"status_endpoint":true,
             "structured_sync_keys":true},
 "bundle_limits":{"max_bundles_per_pull":5000,"default_rows_per_push_chunk":1000,"max_rows_per_push_chunk":5000,
                  "push_session_ttl_seconds":900,"default_rows_per_committed_bundle_chunk":1000,
                  "max_rows_per_committed_bundle_chunk":5000,"default_rows_per_snapshot_chunk":1000,
                  "max_rows_per_snapshot_chunk":5000,"snapshot_session_ttl_seconds":900,
                  "default_bytes_per_snapshot_chunk":4194304,"max_bytes_per_snapshot_chunk":16777216,
                  "max_bytes_per_snapshot_row":4194304,"snapshot_materialization_batch_rows":512,
                  "snapshot_materialization_batch_bytes":4194304,"max_concurrent_snapshot_builds":8,
                  "max_concurrent_snapshot_chunk_requests":4,"initialization_lease_ttl_seconds":900}}`)
	if string(r.body) != want {
		t.Fatalf("capabilities\n got %s\nwant %s", r.body, want)
	}
	// Without watch, the flag says so and the route refuses (§3.12 step 3).
	off := newV1Server(t, v1Options{})
	c := off.device(exUser, exPhone)
	var caps struct {
		Features map[string]bool `json:"features"`
	}
	c.ok(t, http.MethodGet, "/sync/capabilities", "", &caps)
	if on, ok := caps.Features["bundle_change_watch"]; !ok || on {
		t.Fatalf("bundle_change_watch = %v (present %v), want false", on, ok)
	}
	wantV1Error(t, c.do(t, http.MethodGet, "/sync/watch", ""), http.StatusServiceUnavailable, "bundle_change_watch_disabled")
}

// TestV1_ShutdownRefusesNewOperations checks docs/protocol-v1.md §2.5 and §6.1 M2: once the
// node's shutdown begins, every operation is 503 service_unavailable with Retry-After, and
// health turns 503 while status stays 200.
func TestV1_ShutdownRefusesNewOperations(t *testing.T) {
	srv := newV1Server(t, v1Options{v1: httpapi.V1Config{Watch: true}})
	seedAlice(t, srv)
	phone := srv.device(exUser, exPhone)
	var st struct {
		Status              string `json:"status"`
		Lifecycle           string `json:"lifecycle"`
		AcceptingOperations bool   `json:"accepting_operations"`
		LatestBundleSeqMax  int64  `json:"latest_bundle_seq_max"`
	}
	wantStatus(t, phone.do(t, http.MethodGet, "/syncx/health", ""), http.StatusOK, &st)
	if st.Status != "healthy" || st.Lifecycle != "running" || !st.AcceptingOperations || st.LatestBundleSeqMax != 1 {
		t.Fatalf("health before shutdown: %+v", st)
	}

	srv.node.Shutdown()
	for _, req := range []struct{ method, path, body string }{
		{"POST", "/sync/connect", `{"has_local_pending_rows":false}`},
		{"POST", "/sync/push-sessions", `{"source_bundle_id":2,"planned_row_count":1,"canonical_request_hash":"` + hash64("c") + `"}`},
		{"GET", "/sync/pull", ""},
		{"GET", "/sync/committed-bundles/1/rows", ""},
		{"POST", "/sync/snapshot-sessions", ""},
		{"GET", "/sync/watch", ""},
	} {
		r := phone.do(t, req.method, req.path, req.body)
		wantV1Error(t, r, http.StatusServiceUnavailable, "service_unavailable")
		if r.header.Get("Retry-After") != "1" {
			t.Fatalf("%s %s: Retry-After %q, want 1", req.method, req.path, r.header.Get("Retry-After"))
		}
	}
	wantStatus(t, phone.do(t, http.MethodGet, "/syncx/health", ""), http.StatusServiceUnavailable, &st)
	if st.Status != "unhealthy" || st.Lifecycle != "shutting_down" || st.AcceptingOperations {
		t.Fatalf("health during shutdown: %+v", st)
	}
	wantStatus(t, phone.do(t, http.MethodGet, "/syncx/status", ""), http.StatusOK, &st)
}

func hash64(c string) string {
	b := make([]byte, 64)
	for i := range b {
		b[i] = c[0]
	}
	return string(b)
}

// TestV1_CORS checks §2.4: an allowed origin gets the headers and a 204 preflight; another
// origin gets none.
func TestV1_CORS(t *testing.T) {
	srv := newV1Server(t, v1Options{v1: httpapi.V1Config{AllowedOrigins: []string{"https://app.example"}}})
	anon := &v1Client{srv: srv}
	r := anon.do(t, http.MethodOptions, "/sync/pull", "", func(h http.Header) {
		h.Set("Origin", "https://app.example")
		h.Set("Access-Control-Request-Method", "GET")
	})
	if r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		r.header.Get("Access-Control-Allow-Headers") != "Authorization, Content-Type, Oversync-Source-ID" ||
		r.header.Get("Access-Control-Allow-Methods") != "GET, POST, DELETE, OPTIONS" {
		t.Fatalf("preflight: %d %v", r.status, r.header)
	}
	r = srv.device(exUser, exPhone).do(t, http.MethodGet, "/sync/capabilities", "", func(h http.Header) { h.Set("Origin", "https://evil.example") })
	if r.status != http.StatusOK || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("other origin: %d %v", r.status, r.header)
	}
}

// TestV1_WatchCatchUpAndAdmission checks §3.12: a watch whose checkpoint is behind gets an
// event at once; the per-user cap refuses one more with 429 and Retry-After; the test route
// counts the user's streams.
func TestV1_WatchCatchUpAndAdmission(t *testing.T) {
	srv := newV1Server(t, v1Options{v1: httpapi.V1Config{Watch: true, TestRoutes: true}, push: push.Config{MaxPerUser: 1}})
	seedAlice(t, srv)
	laptop := srv.device(exUser, exLaptop)
	w := openWatch(t, laptop, 0)
	if ev := w.next(t); ev != "event: bundle\ndata: {\"bundle_seq\":1}" {
		t.Fatalf("catch-up event %q", ev)
	}
	r := laptop.do(t, http.MethodGet, "/sync/watch?after_bundle_seq=1", "")
	wantV1Error(t, r, http.StatusTooManyRequests, "too_many_connections")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	var subs struct {
		UserID          string `json:"user_id"`
		SubscriberCount int    `json:"subscriber_count"`
		ProcessLocal    bool   `json:"process_local_only"`
	}
	anon := &v1Client{srv: srv}
	pushtest.WaitFor(t, func() bool {
		r := anon.do(t, http.MethodGet, "/test/watch-subscribers?user_id=alice", "")
		return r.status == http.StatusOK && json.Unmarshal(r.body, &subs) == nil && subs.SubscriberCount == 1
	})
	if subs.UserID != exUser || !subs.ProcessLocal {
		t.Fatalf("watch-subscribers: %+v", subs)
	}
	r = anon.do(t, http.MethodPost, "/test/retention-floor", `{"user_id":"nobody","retained_bundle_floor":1}`)
	wantV1Error(t, r, http.StatusNotFound, "user_state_not_found")
	r = anon.do(t, http.MethodPost, "/test/retention-floor", `{"user_id":"alice","retained_bundle_floor":1}`)
	if r.status != http.StatusOK || string(r.body) != `{"status":"ok","user_id":"alice","retained_bundle_floor":1}` {
		t.Fatalf("retention-floor: %d %s", r.status, r.body)
	}
}

// TestV1_DevSignInServesV1Clients checks §3.14: the sign-in answers token, expires_in and user,
// and its token works on the v1 routes (which need no did).
func TestV1_DevSignInServesV1Clients(t *testing.T) {
	srv := newV1Server(t, v1Options{devLogin: true})
	var out struct {
		Token     string `json:"token"`
		ExpiresIn int64  `json:"expires_in"`
		User      string `json:"user"`
	}
	(&v1Client{srv: srv}).ok(t, http.MethodPost, "/dummy-signin", `{"user":"bob","password":"ignored"}`, &out)
	if out.Token == "" || out.ExpiresIn != 300 || out.User != "bob" {
		t.Fatalf("sign-in: %+v", out)
	}
	c := &v1Client{srv: srv, token: out.Token, source: "device-1"}
	c.ok(t, http.MethodGet, "/sync/capabilities", "", nil)
}
