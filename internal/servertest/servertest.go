// Package servertest starts a complete pulsesync HTTP server on a fresh database for tests.
//
// The server is the real one: httpapi's router on a real socket (httptest.NewServer), a pg.Store
// on its own PostgreSQL database cloned from a migrated template (internal/pgtest), the demo
// tables of internal/demo registered, and an HS256 verifier with the demo secret. A test binary
// using it passes Template to pgtest.Main from its TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m, pgtest.Options{Template: servertest.Template}) }
package servertest

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsesync/pulsesync/httpapi"
	"github.com/pulsesync/pulsesync/httpapi/auth"
	"github.com/pulsesync/pulsesync/internal/demo"
	"github.com/pulsesync/pulsesync/internal/node"
	"github.com/pulsesync/pulsesync/internal/pgtest"
	"github.com/pulsesync/pulsesync/pg"
	"github.com/pulsesync/pulsesync/pgv1"
	"github.com/pulsesync/pulsesync/push"
)

// setupTimeout bounds everything New does against the database.
const setupTimeout = 30 * time.Second

// loopback is where every test client connects from.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// tokenTTL is the lifetime of the tokens Server.Token mints: longer than any test.
const tokenTTL = time.Hour

// Template prepares the database every test database is cloned from: the migrated sync schema
// and the demo business tables. Use it as pgtest.Options.Template.
func Template(ctx context.Context, url string) error {
	pool, err := pg.Connect(ctx, pg.PoolConfig{URL: url})
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := pg.Migrate(ctx, pool); err != nil {
		return err
	}
	if _, err := pgv1.Migrate(ctx, pool); err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, demo.SchemaSQL+demo.V1SchemaSQL); err != nil {
		return fmt.Errorf("create demo tables: %w", err)
	}
	return nil
}

// Options configures New. The zero value is a server as `pulsesync serve` would run it on the
// demo tables (fan-out over Postgres LISTEN/NOTIFY), without the development sign-in.
type Options struct {
	// StoreConfig configures the store; its Logger defaults to the server's logger.
	StoreConfig pg.StoreConfig
	// MaxBodyBytes caps request bodies; 0 means httpapi.DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// DevSignIn mounts POST /dummy-signin, issuing tokens signed with Server.Secret.
	DevSignIn bool
	// DatabaseURL makes the server share an existing database (another Server's, for
	// multi-node tests); "" gives it a fresh one.
	DatabaseURL string
	// NATSURL fans out over NATS instead of LISTEN/NOTIFY.
	NATSURL string
	// ReconcileEvery is the fan-out's reconciliation period; 0 = the default 5 s.
	ReconcileEvery time.Duration
	// Push tunes the push sessions (heartbeat, caps, timeouts).
	Push push.Config
	// NodeID names the node, e.g. in its LISTEN connection's application_name; "" = the test's name.
	NodeID string
	// V1 also serves the v1 bundle protocol on the v1 demo tables (app.users, app.posts), with
	// /sync/watch and the v1 test routes.
	V1 bool
	// HTTP bounds what one client can hold, as in production (node.HTTPConfig); the zero
	// value is production's defaults, except that the per-address limits skip loopback.
	HTTP node.HTTPConfig
	// LimitLoopback applies HTTP's per-address limits to loopback clients too. Every test
	// client connects from 127.0.0.1, so by default they do not: tests that open hundreds of
	// connections would trip them.
	LimitLoopback bool
	// Logger receives the server's logs; nil means warnings and errors in the test's output.
	Logger *slog.Logger
	// MaxConns caps the store's connection pool; 0 = 16. Tests of pool starvation shrink it.
	MaxConns int32
}

// Server is a running pulsesync server. Everything it holds is closed when the test ends: the
// HTTP server first, then the node, then the pool, then the database is dropped.
type Server struct {
	// URL is the server's base URL, http://127.0.0.1:<port>.
	URL string
	// DatabaseURL is the URL of the server's database.
	DatabaseURL string
	// Pool is the store's connection pool; closing it makes the database unreachable for the
	// server.
	Pool *pgxpool.Pool
	// Store is the server's store, for checks that bypass HTTP.
	Store *pg.Store
	// V1Store is the server's v1 store; nil unless Options.V1.
	V1Store *pgv1.Store
	// Node is the whole node, for fault injection (its cluster fan-out, its push service).
	Node *node.Node
	// Secret is the HS256 secret the server accepts (demo.Secret).
	Secret []byte
	// Client talks to the server; its idle connections close with it.
	Client *http.Client
	// Registry holds the server's metrics, as GET /metrics serves them.
	Registry *prometheus.Registry

	http *httptest.Server
	t    testing.TB
}

// New starts a server; it fails the test if anything cannot be set up.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	dbURL := opts.DatabaseURL
	if dbURL == "" {
		dbURL = pgtest.NewDB(t)
	}
	maxConns := opts.MaxConns
	if maxConns <= 0 {
		maxConns = 16
	}
	pool, err := pg.Connect(ctx, pg.PoolConfig{URL: dbURL, MaxConns: maxConns})
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	t.Cleanup(pool.Close)
	names := make([]pg.TableName, 0, len(demo.Tables()))
	for _, s := range demo.Tables() {
		n, err := pg.ParseTableName(s)
		if err != nil {
			t.Fatalf("servertest: %v", err)
		}
		names = append(names, n)
	}
	secret := []byte(demo.Secret)
	nodeID := opts.NodeID
	if nodeID == "" {
		nodeID = t.Name()
	}
	cfg := node.Config{Pool: pool, Tables: names, Store: opts.StoreConfig, Auth: auth.Config{Secret: secret},
		MaxBodyBytes: opts.MaxBodyBytes, NATSURL: opts.NATSURL, NodeID: nodeID, ReconcileEvery: opts.ReconcileEvery,
		Push: opts.Push, HTTP: opts.HTTP, Logger: logger, Registry: prometheus.NewRegistry()}
	if !opts.LimitLoopback {
		cfg.HTTP.Exempt = append(slices.Clip(cfg.HTTP.Exempt), loopback...)
	}
	if opts.DevSignIn {
		cfg.DevSignIn = &httpapi.DevSignIn{Secret: secret}
	}
	if opts.V1 {
		cfg.V1Tables = demo.V1Tables()
		cfg.V1 = httpapi.V1Config{Watch: true, TestRoutes: true}
	}
	n, err := node.New(ctx, cfg)
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	t.Cleanup(n.Close)
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = n.HTTPServer()
	ts.Listener = n.LimitListener(ts.Listener)
	ts.Start()
	s := &Server{URL: ts.URL, DatabaseURL: dbURL, Pool: pool, Store: n.Store, V1Store: n.V1Store, Node: n, Secret: secret,
		Client: ts.Client(), Registry: cfg.Registry, http: ts, t: t}
	t.Cleanup(s.Stop)
	return s
}

// Stop shuts the server down as SIGTERM would: push sessions are told to reconnect (1012), the
// listener closes, in-flight requests finish. It is safe to call more than once.
func (s *Server) Stop() {
	s.Node.Shutdown()
	s.http.Close()
}

// Token returns a valid token for user's device, for an hour; it fails the test if minting
// fails (an empty user or device).
func (s *Server) Token(user, device string) string {
	s.t.Helper()
	token, err := auth.Mint(s.Secret, user, device, tokenTTL)
	if err != nil {
		s.t.Fatalf("servertest: %v", err)
	}
	return token
}
