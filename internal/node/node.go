// Package node assembles one complete pulsesync node: the store over a migrated database, the
// push hub and sessions, the cluster fan-out, the watermark cache and the HTTP API. The binary
// and the test harness build their nodes here, so tests run exactly what production runs.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pulsesync/pulsesync/cluster"
	"github.com/pulsesync/pulsesync/httpapi"
	"github.com/pulsesync/pulsesync/httpapi/auth"
	"github.com/pulsesync/pulsesync/pg"
	"github.com/pulsesync/pulsesync/pgv1"
	"github.com/pulsesync/pulsesync/push"
	"github.com/pulsesync/pulsesync/sequencer"
)

// The errors New wraps its start-up failures in, so that a caller can name the setting at fault
// (errors.Is).
var (
	ErrTables   = errors.New("v0 tables")
	ErrV1Tables = errors.New("v1 tables")
	ErrAuth     = errors.New("token verification")
	ErrFanout   = errors.New("start fan-out")
)

// Config describes a node. Pool and Tables are required; the zero value of every other field
// means its documented default.
type Config struct {
	// Pool is the node's connection pool over a database whose sync schema is migrated. The
	// node does not close it.
	Pool *pgxpool.Pool
	// Tables are the registered business tables of the v0 protocol, discovered from the
	// catalogue at New.
	Tables []pg.TableName
	// V1Tables are the registered tables of the v1 bundle protocol (docs/protocol-v1.md); none
	// leaves v1 out. At least one of Tables and V1Tables is required.
	V1Tables []pgv1.TableSpec
	// V1Store configures the v1 store; its Logger defaults to Logger.
	V1Store pgv1.Config
	// V1 configures the v1 routes (watch, CORS, test routes); its Store is set by New.
	V1 httpapi.V1Config
	// Store configures the upload limits; its Logger defaults to Logger.
	Store pg.StoreConfig
	// SchemaVersion is what GET /sync/schema-version reports (httpapi.Config); 0 means 1.
	SchemaVersion int
	// WatermarkCacheEntries caps the users whose last server id the node caches
	// (sequencer.WatermarksConfig.MaxEntries); 0 = 1,000,000, roughly 100 MB.
	WatermarkCacheEntries int
	// Auth configures token verification (a secret and/or a JWKS URL).
	Auth auth.Config
	// MaxBodyBytes caps request bodies; 0 = httpapi's default.
	MaxBodyBytes int64
	// HTTP bounds what one client can hold: connections, header, body and answer times.
	HTTP HTTPConfig
	// DevSignIn mounts POST /dummy-signin; nil (the default) leaves it out.
	DevSignIn *httpapi.DevSignIn
	// NATSURL selects NATS for the fan-out between nodes; "" selects Postgres LISTEN/NOTIFY.
	NATSURL string
	// NATSSecurity are the NATS connection's credential and TLS files (cluster.NATSSecurity).
	NATSSecurity cluster.NATSSecurity
	// NodeID names the node in logs, metrics and its NATS and LISTEN connections.
	NodeID string
	// ReconcileEvery bounds how late a device hears of an advance the fan-out lost; 0 = 5 s.
	ReconcileEvery time.Duration
	// Push tunes the push sessions (heartbeat, timeouts, caps); its Hub, CurrentSeq, Watch,
	// Logger and Registry are set by New.
	Push push.Config
	// Logger receives the node's logs; nil discards them.
	Logger *slog.Logger
	// Registry receives every metric and is what GET /metrics serves; nil = a new registry
	// with the Go and process collectors.
	Registry *prometheus.Registry
}

// Node is a running pulsesync node. Serve its HTTPServer on a listener from its Listen (or its
// Handler on a server of your own); on shutdown call Shutdown (HTTPServer's Shutdown does) and
// then Close.
type Node struct {
	Store    *pg.Store
	V1Store  *pgv1.Store // nil without Config.V1Tables
	Hub      *push.Hub
	Cluster  *cluster.Node
	Push     *push.Service
	Registry *prometheus.Registry

	handler  http.Handler
	api      *httpapi.Server
	verifier *auth.Verifier
	edge     httpEdge
	stopWork context.CancelFunc // ends the node's own background work (the v1 sweeper)
	workDone chan struct{}
}

// New builds a node and starts its background work (the fan-out's connections and
// reconciliation). On error everything already started is stopped again.
func New(ctx context.Context, cfg Config) (n *Node, err error) {
	if cfg.Pool == nil || len(cfg.Tables)+len(cfg.V1Tables) == 0 {
		return nil, errors.New("node config: a pool and at least one table are required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	registry := cfg.Registry
	if registry == nil {
		registry = prometheus.NewRegistry()
		registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	reg, err := pg.Discover(ctx, cfg.Pool, cfg.Tables)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTables, err)
	}
	storeCfg := cfg.Store
	if storeCfg.Logger == nil {
		storeCfg.Logger = log
	}
	n = &Node{Store: pg.NewStore(cfg.Pool, reg, storeCfg), Hub: push.NewHub(), Registry: registry}
	// A failing return sets the named result to nil, so the deferred clean-up holds its own
	// reference to what was started.
	started := n
	defer func() {
		if err != nil {
			started.Close()
		}
	}()
	authCfg := cfg.Auth
	if authCfg.Logger == nil {
		authCfg.Logger = log
	}
	if n.verifier, err = auth.NewVerifier(ctx, authCfg); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAuth, err)
	}
	watermarks := sequencer.NewWatermarks(sequencer.WatermarksConfig{MaxEntries: cfg.WatermarkCacheEntries})
	n.Cluster, err = cluster.Start(ctx, cluster.Config{Pool: cfg.Pool, NATSURL: cfg.NATSURL, NATSSecurity: cfg.NATSSecurity, NodeID: cfg.NodeID,
		Hub: n.Hub, Watermarks: watermarks, ReconcileEvery: cfg.ReconcileEvery, Logger: log, Registry: registry})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFanout, err)
	}
	pushCfg := cfg.Push
	pushCfg.Hub, pushCfg.CurrentSeq, pushCfg.Watch = n.Hub, n.Store.Watermark, n.Cluster.Watch
	pushCfg.Logger, pushCfg.Registry = log, registry
	if n.Push, err = push.NewService(pushCfg); err != nil {
		return nil, err
	}
	if n.edge, err = newHTTPEdge(cfg.HTTP, log, registry); err != nil {
		return nil, err
	}
	apiCfg := httpapi.Config{Store: n.Store, Verifier: n.verifier, MaxBodyBytes: cfg.MaxBodyBytes, SchemaVersion: cfg.SchemaVersion,
		DevSignIn: cfg.DevSignIn, Logger: log, Registry: registry, Push: n.Push, Fanout: n.Cluster, Watermarks: watermarks,
		Deadlines: n.edge.cfg.Deadlines}
	if len(cfg.V1Tables) > 0 {
		if apiCfg.V1, err = n.startV1(ctx, cfg, log); err != nil {
			return nil, err
		}
	}
	if n.api, err = httpapi.New(apiCfg); err != nil {
		return nil, err
	}
	n.handler = n.api.Handler()
	return n, nil
}

// v1SweepEvery is how often a node removes expired v1 state (snapshot sessions and their rows).
// Expiry itself is exact at read time; the sweep only frees space.
const v1SweepEvery = time.Minute

// startV1 discovers the v1 tables (installing their capture triggers), opens the v1 store and
// starts its sweeper, and returns the routes' configuration.
func (n *Node) startV1(ctx context.Context, cfg Config, log *slog.Logger) (*httpapi.V1Config, error) {
	reg, err := pgv1.Discover(ctx, cfg.Pool, cfg.V1Tables)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrV1Tables, err)
	}
	storeCfg := cfg.V1Store
	if storeCfg.Logger == nil {
		storeCfg.Logger = log
	}
	n.V1Store = pgv1.NewStore(cfg.Pool, reg, storeCfg)
	workCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	n.stopWork, n.workDone = stop, make(chan struct{})
	go func() {
		defer close(n.workDone)
		tick := time.NewTicker(v1SweepEvery)
		defer tick.Stop()
		for {
			select {
			case <-workCtx.Done():
				return
			case <-tick.C:
				if err := n.V1Store.Sweep(workCtx); err != nil && workCtx.Err() == nil {
					log.Warn("sweep expired v1 state; retrying at the next round", "err", err)
				}
			}
		}
	}()
	v1 := cfg.V1
	v1.Store = n.V1Store
	return &v1, nil
}

// Handler serves the node's HTTP API.
func (n *Node) Handler() http.Handler { return n.handler }

// Shutdown ends the push sessions: WebSockets close with 1012 so that clients reconnect to
// another node, streams and long-polls end; new v1 operations are refused with 503 while those
// in flight finish. Register it with http.Server.RegisterOnShutdown.
func (n *Node) Shutdown() {
	if n.api != nil {
		n.api.Shutdown()
	}
	if n.Push != nil {
		n.Push.Shutdown()
	}
}

// Close ends the push sessions if Shutdown has not, and stops the fan-out and the verifier's key
// refresh. The pool stays open.
func (n *Node) Close() {
	n.Shutdown()
	if n.stopWork != nil {
		n.stopWork()
		<-n.workDone
	}
	if n.Cluster != nil {
		n.Cluster.Close()
	}
	if n.verifier != nil {
		n.verifier.Close()
	}
}
