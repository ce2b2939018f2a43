package loadtarget

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pulsesync/pulsesync/httpapi"
	"github.com/pulsesync/pulsesync/httpapi/auth"
	"github.com/pulsesync/pulsesync/internal/demo"
	"github.com/pulsesync/pulsesync/internal/natsembed"
	"github.com/pulsesync/pulsesync/internal/node"
	"github.com/pulsesync/pulsesync/internal/pgcluster"
	"github.com/pulsesync/pulsesync/pg"
	"github.com/pulsesync/pulsesync/pgv1"
)

// Defaults of Config.
const (
	// DefaultPoolConns is each node's connection pool size: enough for 16 concurrent writers
	// and the fan-out's own connections, and 4 nodes stay within the cluster's 400 connections.
	DefaultPoolConns = 32
	// shutdownTimeout bounds each node's graceful HTTP shutdown in Close.
	shutdownTimeout = 10 * time.Second
)

// loopback is where the load generator's sockets come from (127.0.0.0/8 for source_ips).
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// Config describes the deployment. The zero value is one node with the defaults.
type Config struct {
	// Nodes is the number of pulsesync nodes sharing the database; 0 means 1. With more than
	// one, the nodes fan out over an in-process NATS server, as a production cluster would.
	Nodes int
	// PoolConns is each node's database pool size; 0 means DefaultPoolConns.
	PoolConns int32
	// Logger receives the deployment's start and stop events and the nodes' warnings; nil
	// discards them.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Nodes == 0 {
		c.Nodes = 1
	}
	if c.PoolConns == 0 {
		c.PoolConns = DefaultPoolConns
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Target is a running deployment. Its URLs serve the v0 protocol on the demo schema "business"
// and the v1 protocol (with /sync/watch) on "app", and accept tokens signed with Secret.
type Target struct {
	// URLs are the nodes' base URLs, http://127.0.0.1:<port>, in node order.
	URLs []string
	// Secret is the HS256 secret the nodes verify tokens with (the dev secret).
	Secret string
	// DatabaseURL is the nodes' database, for measurements beside the load
	// (transactions, PostgreSQL's processes).
	DatabaseURL string

	cfg       Config
	pgVersion string
	cluster   *pgcluster.Cluster
	nats      *natsembed.Server
	nodes     []*servingNode
}

// servingNode is one node with its pool and HTTP server.
type servingNode struct {
	pool   *pgxpool.Pool
	node   *node.Node
	server *http.Server
	addr   string
	served chan error // Serve's result, once the server has stopped
}

// Start brings the deployment up and returns once every node accepts requests. On failure
// everything started so far is torn down again.
func Start(ctx context.Context, cfg Config) (t *Target, err error) {
	cfg = cfg.withDefaults()
	if cfg.Nodes < 1 || cfg.PoolConns < 1 {
		return nil, fmt.Errorf("embedded target: nodes and pool connections must be at least 1")
	}
	t = &Target{Secret: demo.Secret, cfg: cfg}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	log := cfg.Logger
	if t.cluster, err = pgcluster.Start(ctx, pgcluster.Config{Logger: log}); err != nil {
		return nil, fmt.Errorf("start throwaway PostgreSQL: %w", err)
	}
	dbURL := t.cluster.URL("postgres")
	t.DatabaseURL = dbURL
	if t.pgVersion, err = prepareDatabase(ctx, dbURL); err != nil {
		return nil, err
	}
	var natsURL string
	if cfg.Nodes > 1 {
		if t.nats, err = natsembed.Start(natsembed.Config{Logger: log}); err != nil {
			return nil, fmt.Errorf("start in-process NATS: %w", err)
		}
		natsURL = t.nats.URL()
	}
	tables, err := demoTables()
	if err != nil {
		return nil, err
	}
	for i := range cfg.Nodes {
		sn, err := startNode(ctx, cfg, dbURL, natsURL, fmt.Sprintf("load-node-%d", i+1), tables)
		if err != nil {
			return nil, fmt.Errorf("start node %d: %w", i+1, err)
		}
		t.nodes = append(t.nodes, sn)
		t.URLs = append(t.URLs, "http://"+sn.addr)
	}
	log.Info("embedded target ready", "nodes", cfg.Nodes, "urls", strings.Join(t.URLs, ","))
	return t, nil
}

// versionSQL reads the server's version for Describe.
const versionSQL = `SHOW server_version`

// prepareDatabase migrates both sync schemas, creates the demo tables as `pulsesync dev` does,
// and returns the server's version.
func prepareDatabase(ctx context.Context, url string) (string, error) {
	pool, err := pg.Connect(ctx, pg.PoolConfig{URL: url, MaxConns: 2})
	if err != nil {
		return "", err
	}
	defer pool.Close()
	if _, err := pg.Migrate(ctx, pool); err != nil {
		return "", fmt.Errorf("migrate sync schema: %w", err)
	}
	if _, err := pgv1.Migrate(ctx, pool); err != nil {
		return "", fmt.Errorf("migrate v1 sync schema: %w", err)
	}
	if _, err := pool.Exec(ctx, demo.SchemaSQL+demo.V1SchemaSQL); err != nil {
		return "", fmt.Errorf("create demo tables: %w", err)
	}
	var version string
	if err := pool.QueryRow(ctx, versionSQL).Scan(&version); err != nil {
		return "", fmt.Errorf("read server version: %w", err)
	}
	return version, nil
}

// demoTables are the v0 demo tables as the node takes them.
func demoTables() ([]pg.TableName, error) {
	var names []pg.TableName
	for _, s := range demo.Tables() {
		n, err := pg.ParseTableName(s)
		if err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, nil
}

// startNode opens a pool, builds a node on it and serves it on a free loopback port.
func startNode(ctx context.Context, cfg Config, dbURL, natsURL, id string, tables []pg.TableName) (sn *servingNode, err error) {
	sn = &servingNode{served: make(chan error, 1)}
	if sn.pool, err = pg.Connect(ctx, pg.PoolConfig{URL: dbURL, MaxConns: cfg.PoolConns}); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			sn.close(cfg.Logger)
		}
	}()
	secret := []byte(demo.Secret)
	sn.node, err = node.New(ctx, node.Config{
		Pool: sn.pool, Tables: tables, V1Tables: demo.V1Tables(),
		V1:        httpapi.V1Config{Watch: true},
		Auth:      auth.Config{Secret: secret},
		DevSignIn: &httpapi.DevSignIn{Secret: secret},
		// Every load-generator socket comes from loopback: per-address limits would refuse
		// the test's own connections rather than protect anything.
		HTTP:    node.HTTPConfig{Exempt: loopback},
		NATSURL: natsURL, NodeID: id, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	ln, err := sn.node.Listen("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	sn.server = sn.node.HTTPServer()
	sn.addr = ln.Addr().String()
	go func() { sn.served <- sn.server.Serve(ln) }()
	return sn, nil
}

// close shuts the HTTP server down gracefully (push sessions are told to reconnect), then the
// node, then the pool. Each part may be missing when the start failed half-way.
func (sn *servingNode) close(log *slog.Logger) {
	if sn.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		if err := sn.server.Shutdown(ctx); err != nil {
			log.Warn("shut down embedded node", "err", err)
		}
		cancel()
		if err := <-sn.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("embedded node stopped serving", "err", err)
		}
	}
	if sn.node != nil {
		sn.node.Close()
	}
	if sn.pool != nil {
		sn.pool.Close()
	}
}

// Close stops the nodes, the NATS server and PostgreSQL, and removes the cluster's files. It is
// safe on a partly started Target.
func (t *Target) Close() {
	log := t.cfg.Logger
	for _, sn := range t.nodes {
		sn.close(log)
	}
	t.nodes = nil
	if t.nats != nil {
		t.nats.Stop()
		t.nats = nil
	}
	if t.cluster != nil {
		if err := t.cluster.Stop(); err != nil {
			log.Warn("stop throwaway PostgreSQL", "err", err)
		}
		t.cluster = nil
	}
}

// Describe says in one line what the load ran against, for the summary: the nodes, the
// database and its settings, the fan-out and the limits that differ from production.
func (t *Target) Describe() string {
	fanout := "Postgres LISTEN/NOTIFY"
	if t.cfg.Nodes > 1 {
		fanout = "in-process NATS"
	}
	nodes := "1 pulsesync node"
	if t.cfg.Nodes > 1 {
		nodes = fmt.Sprintf("%d pulsesync nodes", t.cfg.Nodes)
	}
	return fmt.Sprintf("embedded: %s (%s) in the load generator's process, fan-out %s, %d pool connections each, "+
		"per-address connection limits off for loopback; throwaway PostgreSQL %s on 127.0.0.1:%d "+
		"(fsync, synchronous_commit and full_page_writes off)",
		nodes, strings.Join(t.URLs, ", "), fanout, t.cfg.PoolConns, t.pgVersion, t.cluster.Port())
}
