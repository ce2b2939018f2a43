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
	"github.com/pulsesync/pulsesync/push"
	"github.com/pulsesync/pulsesync/sequencer"
)

// Config describes a node. Pool and Tables are required; the zero value of every other field
// means its documented default.
type Config struct {
	// Pool is the node's connection pool over a database whose sync schema is migrated. The
	// node does not close it.
	Pool *pgxpool.Pool
	// Tables are the registered business tables, discovered from the catalogue at New.
	Tables []pg.TableName
	// Store configures the upload limits; its Logger defaults to Logger.
	Store pg.StoreConfig
	// Auth configures token verification (a secret and/or a JWKS URL).
	Auth auth.Config
	// MaxBodyBytes caps request bodies; 0 = httpapi's default.
	MaxBodyBytes int64
	// DevSignIn mounts POST /dummy-signin; nil (the default) leaves it out.
	DevSignIn *httpapi.DevSignIn
	// NATSURL selects NATS for the fan-out between nodes; "" selects Postgres LISTEN/NOTIFY.
	NATSURL string
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

// Node is a running pulsesync node. Serve its Handler; on shutdown call Shutdown (before or
// with http.Server.Shutdown) and then Close.
type Node struct {
	Store    *pg.Store
	Hub      *push.Hub
	Cluster  *cluster.Node
	Push     *push.Service
	Registry *prometheus.Registry

	handler  http.Handler
	verifier *auth.Verifier
}

// New builds a node and starts its background work (the fan-out's connections and
// reconciliation). On error everything already started is stopped again.
func New(ctx context.Context, cfg Config) (n *Node, err error) {
	if cfg.Pool == nil || len(cfg.Tables) == 0 {
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
		return nil, err
	}
	storeCfg := cfg.Store
	if storeCfg.Logger == nil {
		storeCfg.Logger = log
	}
	n = &Node{Store: pg.NewStore(cfg.Pool, reg, storeCfg), Hub: push.NewHub(), Registry: registry}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	authCfg := cfg.Auth
	if authCfg.Logger == nil {
		authCfg.Logger = log
	}
	if n.verifier, err = auth.NewVerifier(ctx, authCfg); err != nil {
		return nil, fmt.Errorf("token verification: %w", err)
	}
	watermarks := sequencer.NewWatermarks(sequencer.WatermarksConfig{})
	n.Cluster, err = cluster.Start(ctx, cluster.Config{Pool: cfg.Pool, NATSURL: cfg.NATSURL, NodeID: cfg.NodeID,
		Hub: n.Hub, Watermarks: watermarks, ReconcileEvery: cfg.ReconcileEvery, Logger: log, Registry: registry})
	if err != nil {
		return nil, fmt.Errorf("start fan-out: %w", err)
	}
	pushCfg := cfg.Push
	pushCfg.Hub, pushCfg.CurrentSeq, pushCfg.Watch = n.Hub, n.Store.Watermark, n.Cluster.Watch
	pushCfg.Logger, pushCfg.Registry = log, registry
	if n.Push, err = push.NewService(pushCfg); err != nil {
		return nil, err
	}
	api, err := httpapi.New(httpapi.Config{Store: n.Store, Verifier: n.verifier, MaxBodyBytes: cfg.MaxBodyBytes,
		DevSignIn: cfg.DevSignIn, Logger: log, Registry: registry, Push: n.Push, Fanout: n.Cluster, Watermarks: watermarks})
	if err != nil {
		return nil, err
	}
	n.handler = api.Handler()
	return n, nil
}

// Handler serves the node's HTTP API.
func (n *Node) Handler() http.Handler { return n.handler }

// Shutdown ends the push sessions: WebSockets close with 1012 so that clients reconnect to
// another node, streams and long-polls end. Register it with http.Server.RegisterOnShutdown.
func (n *Node) Shutdown() {
	if n.Push != nil {
		n.Push.Shutdown()
	}
}

// Close ends the push sessions if Shutdown has not, and stops the fan-out and the verifier's key
// refresh. The pool stays open.
func (n *Node) Close() {
	n.Shutdown()
	if n.Cluster != nil {
		n.Cluster.Close()
	}
	if n.verifier != nil {
		n.verifier.Close()
	}
}
