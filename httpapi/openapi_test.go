package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/go-chi/chi/v5"

	"github.com/pulsesync/pulsesync/httpapi"
	"github.com/pulsesync/pulsesync/internal/servertest"
	"github.com/pulsesync/pulsesync/internal/v1test"
)

// openAPIPath is the published description of the HTTP API, docs/openapi.yaml.
const openAPIPath = "../docs/openapi.yaml"

// loadOpenAPI loads docs/openapi.yaml and validates it as the OpenAPI version it declares
// (3.1: kin-openapi then checks schemas as JSON Schema 2020-12), examples and defaults included.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(openAPIPath)
	if err != nil {
		t.Fatalf("load %s: %v", openAPIPath, err)
	}
	if doc.OpenAPI != "3.1.0" || !doc.IsOpenAPI31OrLater() {
		t.Fatalf("%s declares OpenAPI %q, want 3.1.0", openAPIPath, doc.OpenAPI)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableMultiError(), openapi3.EnableSchemaFormatValidation()); err != nil {
		t.Fatalf("%s is not a valid OpenAPI 3.1 document: %v", openAPIPath, err)
	}
	return doc
}

func TestOpenAPI_DocumentIsValid(t *testing.T) {
	doc := loadOpenAPI(t)
	// Every operation but the shared CORS preflight has an id, a summary and security stated
	// explicitly, so that no route silently inherits "no authentication".
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if method == http.MethodOptions {
				continue
			}
			if op.OperationID == "" || op.Summary == "" || op.Security == nil {
				t.Errorf("%s %s: operationId %q, summary %q, security set %v; want all three", method, path, op.OperationID, op.Summary, op.Security != nil)
			}
		}
	}
}

// TestOpenAPI_MatchesTheRouter walks the router of a node with every optional route on (push,
// the dev sign-in, v1 with watch, test routes and CORS preflights) and compares its (method,
// pattern) pairs with the document's: chi's {param} patterns are OpenAPI's path templates.
func TestOpenAPI_MatchesTheRouter(t *testing.T) {
	doc := loadOpenAPI(t)
	srv := newV1Server(t, v1Options{devLogin: true,
		v1: httpapi.V1Config{Watch: true, TestRoutes: true, AllowedOrigins: []string{"*"}}})
	router, ok := srv.node.Handler().(chi.Routes)
	if !ok {
		t.Fatalf("the node's handler is a %T, not a chi router", srv.node.Handler())
	}
	served := map[string]bool{}
	err := chi.Walk(router, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		served[method+" "+route] = true
		return nil
	})
	if err != nil {
		t.Fatalf("walk the router: %v", err)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	for _, optional := range []string{"POST /dummy-signin", "GET /sync/ws", "GET /sync/events", "GET /sync/watch",
		"POST /test/retention-floor", "GET /test/watch-subscribers", "OPTIONS /sync/pull"} {
		if !served[optional] {
			t.Fatalf("the router does not serve %s: an optional route group is off", optional)
		}
	}
	for _, route := range sortedKeys(served) {
		if !documented[route] {
			t.Errorf("served but not documented in %s: %s", openAPIPath, route)
		}
	}
	for _, route := range sortedKeys(documented) {
		if !served[route] {
			t.Errorf("documented in %s but not served: %s", openAPIPath, route)
		}
	}
}

// TestOpenAPI_SecurityAndSourceHeaderAsDocumented asks every documented operation without a
// token, and with a token but without an Oversync-Source-ID header: an operation documented
// as bearer-only answers 401 to the first, an open one never does; an operation documented
// with the required source header refuses the second with the header's 400, no other does.
func TestOpenAPI_SecurityAndSourceHeaderAsDocumented(t *testing.T) {
	doc := loadOpenAPI(t)
	srv := newV1Server(t, v1Options{devLogin: true,
		v1: httpapi.V1Config{Watch: true, TestRoutes: true, AllowedOrigins: []string{"*"}}})
	anonymous := &v1Client{srv: srv}
	sourceless := srv.device("alice", "")
	concrete := strings.NewReplacer("{push_id}", "0b7e3f1a-2c4d-4e6f-8a1b-3c5d7e9f1a2b",
		"{snapshot_id}", "0b7e3f1a-2c4d-4e6f-8a1b-3c5d7e9f1a2b", "{bundle_seq}", "1")
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			url := concrete.Replace(path)
			if op.Security == nil {
				t.Fatalf("%s states no security", name)
			}
			// An empty list, or an empty requirement among the alternatives, admits a caller
			// without a token.
			open := len(*op.Security) == 0 || slices.ContainsFunc(*op.Security,
				func(req openapi3.SecurityRequirement) bool { return len(req) == 0 })
			switch r := anonymous.do(t, method, url, ""); {
			case !open && r.status != http.StatusUnauthorized:
				t.Errorf("%s without a token: %d %s, want 401 (documented as bearer-only)", name, r.status, r.body)
			case open && r.status == http.StatusUnauthorized:
				t.Errorf("%s without a token: 401, but documented as open", name)
			}
			if open {
				continue
			}
			wantsSource := slices.ContainsFunc(op.Parameters, func(p *openapi3.ParameterRef) bool {
				return p.Value.In == openapi3.ParameterInHeader && p.Value.Name == "Oversync-Source-ID" && p.Value.Required
			})
			if ok := op.Responses.Status(http.StatusOK); !wantsSource && ok != nil && ok.Value.Content.Get("text/event-stream") != nil {
				continue // a v0 stream: with a valid token it would open and never end
			}
			r := sourceless.do(t, method, url, "")
			refused := r.status == http.StatusBadRequest && string(r.body) == envelope("invalid_request", sourceHeaderMessage)
			if wantsSource != refused {
				t.Errorf("%s without a source header: %d %s; documented with the required header: %v", name, r.status, r.body, wantsSource)
			}
		}
	}
}

// sourceHeaderMessage is the message of the 400 for a bad Oversync-Source-ID (docs/protocol-v1.md §2.3).
const sourceHeaderMessage = "Oversync-Source-ID header must be a non-empty visible ASCII token"

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestOpenAPI_AnswersMatchTheDocument drives real v0 and v1 traffic, successes and refusals,
// through a client that checks every exchange against the document: each answer's status must
// be documented for its route and its body must match the schema, and every request the server
// accepted (1xx, 2xx) must be one the document accepts.
func TestOpenAPI_AnswersMatchTheDocument(t *testing.T) {
	doc := loadOpenAPI(t)
	srv := servertest.New(t, servertest.Options{V1: true, DevSignIn: true})
	check := newSpecCheck(t, doc, srv.Client.Transport)
	srv.Client = &http.Client{Transport: check}
	ctx := t.Context()

	// Operations.
	for _, path := range []string{"/health", "/ready", "/metrics", "/syncx/health", "/syncx/status"} {
		call(t, srv, http.MethodGet, path, "", "")
	}
	call(t, srv, http.MethodPost, "/dummy-signin", "", `{"user":"alice","password":"x","device":"phone"}`)
	call(t, srv, http.MethodPost, "/dummy-signin", "", `{"password":"x"}`)

	// v0: upload, conflict, download, schema version, admin routes, refusals.
	token := srv.Token("alice", "phone")
	call(t, srv, http.MethodPost, "/sync/upload", token, insertBody(1, 2))
	call(t, srv, http.MethodPost, "/sync/upload", token,
		`{"changes":[{"source_change_id":9,"schema":"business","table":"users","op":"UPDATE","pk":"6f0d3c4e-8f0b-4c1e-9a57-000000000001","server_version":7,"payload":{"name":"x"}},`+
			`{"source_change_id":10,"schema":"business","table":"nope","op":"INSERT","pk":"6f0d3c4e-8f0b-4c1e-9a57-000000000009","server_version":0,"payload":{}}]}`)
	call(t, srv, http.MethodPost, "/sync/upload", token, `{"changes":[`)
	call(t, srv, http.MethodGet, "/sync/download?after=0&limit=1000&include_self=true", token, "")
	call(t, srv, http.MethodGet, "/sync/download?after=-1", token, "")
	call(t, srv, http.MethodGet, "/sync/download", "", "")
	call(t, srv, http.MethodGet, "/sync/schema-version", token, "")
	call(t, srv, http.MethodGet, "/admin/materialize-failures", token, "")
	call(t, srv, http.MethodPost, "/admin/materialize-failures/retry?id=42", token, "")
	call(t, srv, http.MethodPost, "/admin/materialize-failures/retry", token, "")

	// v1: refusals before the scope exists, then a whole push, pull and snapshot cycle.
	phone := v1test.New(srv, "alice", "phone-1")
	v1 := func(method, path, body, source string) {
		t.Helper()
		callHeader(t, srv, method, path, body, func(h http.Header) {
			h.Set("Authorization", "Bearer "+token)
			if source != "" {
				h.Set("Oversync-Source-ID", source)
			}
		})
	}
	v1(http.MethodGet, "/sync/capabilities", "", "phone-1")
	v1(http.MethodGet, "/sync/capabilities", "", "")
	v1(http.MethodGet, "/sync/pull", "", "phone-1")
	v1(http.MethodGet, "/sync/watch", "", "phone-1")
	if err := phone.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	user := v1test.NewUser("0b7e3f1a-2c4d-4e6f-8a1b-3c5d7e9f1a2b", "ann", 3)
	if _, err := phone.Push(ctx, 1, []v1test.Row{user}); err != nil {
		t.Fatal(err)
	}
	if _, err := phone.Push(ctx, 1, []v1test.Row{user}); err != nil { // answered already_committed
		t.Fatal(err)
	}
	stale := v1test.Row{Table: "users", Key: "0b7e3f1a-2c4d-4e6f-8a1b-3c5d7e9f1a2b", Op: "UPDATE", Base: 0,
		Payload: []byte(`{"id":"0b7e3f1a-2c4d-4e6f-8a1b-3c5d7e9f1a2b","name":"bo","email":"b@x","visits":"1","active":true}`)}
	if _, err := phone.Push(ctx, 2, []v1test.Row{stale}); !v1test.IsRefusal(err, "push_conflict") {
		t.Fatalf("stale update: %v, want a push_conflict refusal", err)
	}
	if _, err := phone.CommittedRows(ctx, 1); err != nil {
		t.Fatal(err)
	}
	v1(http.MethodGet, "/sync/committed-bundles/9/rows?max_rows=10", "", "phone-1")
	if _, err := phone.Pull(ctx, 0, 1000, 0); err != nil {
		t.Fatal(err)
	}
	v1(http.MethodGet, "/sync/pull?after_bundle_seq=7", "", "phone-1")
	v1(http.MethodPost, "/sync/push-sessions", `{"source_bundle_id":0,"planned_row_count":1,"canonical_request_hash":"x"}`, "phone-1")
	v1(http.MethodDelete, "/sync/push-sessions/0b7e3f1a-2c4d-4e6f-8a1b-3c5d7e9f1a2b", "", "phone-1")
	v1(http.MethodPost, "/sync/push-sessions/0b7e3f1a-2c4d-4e6f-8a1b-3c5d7e9f1a2b/commit", "", "phone-1")
	var staged struct {
		PushID string `json:"push_id"`
	}
	r := callHeader(t, srv, http.MethodPost, "/sync/push-sessions",
		`{"source_bundle_id":2,"planned_row_count":1,"canonical_request_hash":"`+strings.Repeat("a", 64)+`"}`, func(h http.Header) {
			h.Set("Authorization", "Bearer "+token)
			h.Set("Oversync-Source-ID", "phone-1")
		})
	wantStatus(t, r, http.StatusOK, &staged)
	v1(http.MethodDelete, "/sync/push-sessions/"+staged.PushID, "", "phone-1")
	callHeader(t, srv, http.MethodPost, "/sync/connect", "x", func(h http.Header) {
		h.Set("Authorization", "Bearer "+token)
		h.Set("Oversync-Source-ID", "phone-1")
		h.Set("Content-Type", "text/plain")
	})

	laptop := v1test.New(srv, "alice", "laptop-1")
	if err := laptop.Connect(ctx); err != nil { // remote_authoritative
		t.Fatal(err)
	}
	var snap struct {
		ID string `json:"snapshot_id"`
	}
	r = callHeader(t, srv, http.MethodPost, "/sync/snapshot-sessions", "", func(h http.Header) {
		h.Set("Authorization", "Bearer "+token)
		h.Set("Oversync-Source-ID", "laptop-1")
	})
	wantStatus(t, r, http.StatusOK, &snap)
	v1(http.MethodGet, "/sync/snapshot-sessions/"+snap.ID+"?after_row_ordinal=0&max_rows=1000&max_bytes=4194304", "", "laptop-1")
	v1(http.MethodGet, "/sync/snapshot-sessions/"+snap.ID+"?max_bytes=1", "", "laptop-1")
	v1(http.MethodDelete, "/sync/snapshot-sessions/"+snap.ID, "", "laptop-1")
	v1(http.MethodGet, "/sync/snapshot-sessions/"+snap.ID, "", "laptop-1")
	v1(http.MethodPost, "/sync/snapshot-sessions", `{"source_replacement":{"previous_source_id":"laptop-1","new_source_id":"laptop-2","reason":"history_pruned"}}`, "laptop-1")
	v1(http.MethodPost, "/sync/push-sessions", `{"source_bundle_id":1,"planned_row_count":1,"canonical_request_hash":"`+strings.Repeat("a", 64)+`"}`, "laptop-1")

	// Streams: their status and headers are checked; their bodies never end.
	openStream(t, srv, "/sync/events?after=0", token, "")
	openStream(t, srv, "/sync/watch?after_bundle_seq=0", token, "phone-1")
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/sync/ws?after=0",
		&websocket.DialOptions{HTTPClient: srv.Client, HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		t.Fatalf("open the WebSocket: %v", err)
	}
	_ = conn.CloseNow()
	call(t, srv, http.MethodGet, "/sync/ws?after=x", token, "")

	// The test routes.
	call(t, srv, http.MethodGet, "/test/watch-subscribers?user_id=alice", "", "")
	call(t, srv, http.MethodPost, "/test/retention-floor", "", `{"user_id":"alice","retained_bundle_floor":0}`)
	call(t, srv, http.MethodPost, "/test/retention-floor", "", `{"user_id":"nobody","retained_bundle_floor":1}`)

	check.report(t, []string{
		"health 200", "ready 200", "metrics 200", "v1Health 200", "v1Status 200", "devSignIn 200", "devSignIn 400",
		"upload 200", "upload 400", "download 200", "download 400", "download 401", "schemaVersion 200",
		"listMaterializeFailures 200", "retryMaterializeFailure 404", "retryMaterializeFailure 400",
		"v1Capabilities 200", "v1Capabilities 400", "v1Pull 409", "v1Watch 409", "v1Connect 200", "v1Connect 415",
		"v1CreatePushSession 200", "v1CreatePushSession 400", "v1CreatePushSession 409", "v1StagePushChunk 200",
		"v1CommitPushSession 200", "v1CommitPushSession 409", "v1CommitPushSession 404", "v1DeletePushSession 204",
		"v1DeletePushSession 404", "v1CommittedBundleRows 200", "v1CommittedBundleRows 404", "v1Pull 200",
		"v1CreateSnapshotSession 200", "v1SnapshotChunk 200", "v1SnapshotChunk 400", "v1DeleteSnapshotSession 204",
		"v1SnapshotChunk 410", "pushEvents 200", "v1Watch 200", "pushWebSocket 101", "pushWebSocket 400",
		"v1TestWatchSubscribers 200", "v1TestSetRetentionFloor 200", "v1TestSetRetentionFloor 404",
	})
}

// openStream opens the event stream at path, expects it to start (200, text/event-stream)
// and leaves it.
func openStream(t *testing.T, srv *servertest.Server, path, token, source string) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if source != "" {
		req.Header.Set("Oversync-Source-ID", source)
	}
	resp, err := srv.Client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("GET %s: %d %q, want 200 text/event-stream", path, resp.StatusCode, ct)
	}
}

// specCheck is an http.RoundTripper that checks every exchange against an OpenAPI document
// and remembers which (operation, status) pairs it saw.
type specCheck struct {
	doc    *openapi3.T
	router routers.Router
	next   http.RoundTripper

	mu       sync.Mutex
	problems []string
	seen     map[string]bool
}

func newSpecCheck(t *testing.T, doc *openapi3.T, next http.RoundTripper) *specCheck {
	t.Helper()
	// The document's server is the dev address; test servers listen elsewhere, so routes
	// are matched by path alone.
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("route the document: %v", err)
	}
	return &specCheck{doc: doc, router: router, next: next, seen: map[string]bool{}}
}

func (c *specCheck) RoundTrip(req *http.Request) (*http.Response, error) {
	exchange := req.Method + " " + req.URL.RequestURI()
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		c.problem("%s: not in the document: %v", exchange, err)
		return c.next.RoundTrip(req)
	}
	var reqBody []byte
	if req.Body != nil {
		if reqBody, err = io.ReadAll(req.Body); err != nil {
			return nil, fmt.Errorf("read the request body: %w", err)
		}
		_ = req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus: true, MultiError: true}
	validated := req.Clone(context.Background())
	validated.Body = io.NopCloser(bytes.NewReader(reqBody))
	in := &openapi3filter.RequestValidationInput{Request: validated, PathParams: params, Route: route, Options: opts}
	if resp.StatusCode < 300 {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			c.problem("%s: answered %d, but the document refuses the request: %v", exchange, resp.StatusCode, err)
		}
	}
	stream := resp.StatusCode == http.StatusSwitchingProtocols ||
		strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	var body []byte
	if !stream {
		body, err = io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read the answer: %w", err)
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode,
		Header: resp.Header, Body: io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, ExcludeResponseBody: stream}}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		c.problem("%s: answer %d %s does not match the document: %v", exchange, resp.StatusCode, body, err)
	}
	c.mu.Lock()
	c.seen[fmt.Sprintf("%s %d", route.Operation.OperationID, resp.StatusCode)] = true
	c.mu.Unlock()
	return resp, nil
}

func (c *specCheck) problem(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// report fails t for every mismatch seen, and for each expected "operationId status" pair
// that no exchange produced: a check that saw nothing proves nothing.
func (c *specCheck) report(t *testing.T, want []string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.problems {
		t.Error(p)
	}
	var missing []string
	for _, w := range want {
		if !c.seen[w] {
			missing = append(missing, w)
		}
	}
	if len(missing) > 0 {
		t.Errorf("exchanges expected but not seen: %s", strings.Join(missing, ", "))
	}
}
