package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsesync/pulsesync/httpapi"
	"github.com/pulsesync/pulsesync/httpapi/auth"
	"github.com/pulsesync/pulsesync/internal/demo"
	"github.com/pulsesync/pulsesync/internal/node"
	"github.com/pulsesync/pulsesync/internal/pgtest"
	"github.com/pulsesync/pulsesync/internal/v1test/workedexample"
	"github.com/pulsesync/pulsesync/pg"
	"github.com/pulsesync/pulsesync/pgv1"
	"github.com/pulsesync/pulsesync/push"
)

// v1BusinessSQL replaces the v0 demo's business schema with the tables of the worked example
// (docs/protocol-v1.md §7 and vector D of §4.5): the hashes the document prints cover the
// schema name, so the tables must be business.users and business.posts.
const v1BusinessSQL = "DROP SCHEMA IF EXISTS business CASCADE;" + workedexample.TablesSQL

// v1Server is a node serving only the v1 protocol on the business tables of v1BusinessSQL,
// on its own database, over a real socket.
type v1Server struct {
	t      *testing.T
	url    string
	client *http.Client
	pool   *pgxpool.Pool
	node   *node.Node
	secret []byte
	http   *httptest.Server
}

// v1Options tunes newV1Server.
type v1Options struct {
	store    pgv1.Config
	v1       httpapi.V1Config // Store is set by the node
	push     push.Config
	devLogin bool
}

// newV1Server starts a v1 node; everything it holds ends with the test.
func newV1Server(t *testing.T, opts v1Options) *v1Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dbURL := pgtest.NewDB(t)
	pool, err := pg.Connect(ctx, pg.PoolConfig{URL: dbURL, MaxConns: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, v1BusinessSQL); err != nil {
		t.Fatalf("create business tables: %v", err)
	}
	secret := []byte(demo.Secret)
	cfg := node.Config{Pool: pool, Auth: auth.Config{Secret: secret}, NodeID: t.Name(), Push: opts.push,
		V1Tables: []pgv1.TableSpec{{Schema: "business", Table: "users"}, {Schema: "business", Table: "posts"}},
		V1Store:  opts.store, V1: opts.v1, Registry: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if opts.devLogin {
		cfg.DevSignIn = &httpapi.DevSignIn{Secret: secret}
	}
	n, err := node.New(ctx, cfg)
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(n.Close)
	ts := httptest.NewUnstartedServer(n.Handler())
	ts.Config.RegisterOnShutdown(n.Shutdown)
	ts.Config.ConnContext = push.ConnContext
	ts.Start()
	t.Cleanup(ts.Close)
	return &v1Server{t: t, url: ts.URL, client: ts.Client(), pool: pool, node: n, secret: secret, http: ts}
}

// device returns a client of user with source as its Oversync-Source-ID.
func (s *v1Server) device(user, source string) *v1Client {
	token, err := auth.Mint(s.secret, user, "unused-did", time.Hour)
	if err != nil {
		s.t.Fatal(err)
	}
	return &v1Client{srv: s, token: token, source: source}
}

// v1Client is one client installation: a token and a source id.
type v1Client struct {
	srv    *v1Server
	token  string
	source string
}

// do sends one request. body "" sends none and no content type; JSON bodies go with
// Content-Type application/json. edit may change the request's headers last.
func (c *v1Client) do(t *testing.T, method, path, body string, edit ...func(http.Header)) response {
	t.Helper()
	var rd io.Reader = http.NoBody
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, c.srv.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.source != "" {
		req.Header.Set("Oversync-Source-ID", c.source)
	}
	for _, e := range edit {
		e(req.Header)
	}
	resp, err := c.srv.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read answer: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// ok sends a request that must answer 200 with a JSON body and decodes it into v (if not nil).
func (c *v1Client) ok(t *testing.T, method, path, body string, v any) response {
	t.Helper()
	r := c.do(t, method, path, body)
	wantStatus(t, r, http.StatusOK, v)
	return r
}

// wantV1Error checks that r is status with a JSON error body whose code is code, and returns
// the body's members.
func wantV1Error(t *testing.T, r response, status int, code string) map[string]json.RawMessage {
	t.Helper()
	var body map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &body); err != nil || r.status != status {
		t.Fatalf("got %d %s, want %d %s", r.status, r.body, status, code)
	}
	var got, msg string
	_ = json.Unmarshal(body["error"], &got)
	if err := json.Unmarshal(body["message"], &msg); err != nil || got != code || msg == "" {
		t.Fatalf("got %d %s, want %d with error %q and a message", r.status, r.body, status, code)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	return body
}

// compact returns the JSON text s without insignificant white space, for comparing answers with
// the documented ones.
func compact(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatalf("compact %s: %v", s, err)
	}
	return b.String()
}
