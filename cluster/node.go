package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsesync/pulsesync/push"
	"github.com/pulsesync/pulsesync/sequencer"
)

// ErrClosed is returned by Watch after Close.
var ErrClosed = errors.New("cluster: node closed")

// Config configures a Node. The zero value of each optional field means its documented default.
type Config struct {
	// Pool serves reconciliation queries and NOTIFY flushes, and lends its connection settings
	// to the dedicated LISTEN connection. Required; it must outlive the node.
	Pool *pgxpool.Pool
	// NATSURL selects NATS as the transport; "" selects LISTEN/NOTIFY. It may carry
	// credentials, and is never logged.
	NATSURL string
	// NATSSecurity are the credential and TLS files of the NATS connection; the zero value
	// leaves the URL alone in charge.
	NATSSecurity NATSSecurity
	// NodeID names this node in logs, in its NATS client name and in the application_name of
	// its LISTEN connection ("pulsesync-listen:<NodeID>"), where operators find it in
	// pg_stat_activity.
	NodeID string
	// Hub and Watermarks are this node's sinks of advances. Required.
	Hub        *push.Hub
	Watermarks *sequencer.Watermarks
	// ReconcileEvery is the period of reconciliation, which bounds how late a device hears of
	// an advance the stream lost; 0 = 5 s. Each round costs one query per 10,000 connected users.
	ReconcileEvery time.Duration
	// FlushEvery is how long the NOTIFY coalescer gathers advances before sending them;
	// 0 = 2 ms.
	FlushEvery time.Duration
	// IdleShardAfter is how long a NATS shard stays subscribed after its last Watch while no
	// connected user of this node falls in it; 0 = 2 min. It must exceed the Watermarks'
	// MaxAge, which relies on the subscription while an entry is trusted.
	IdleShardAfter time.Duration
	// Logger receives state changes and errors; nil discards them.
	Logger *slog.Logger
	// Registry receives the pulsesync_cluster_* metrics; nil = no metrics.
	Registry prometheus.Registerer
}

func (c Config) withDefaults() Config {
	if c.ReconcileEvery <= 0 {
		c.ReconcileEvery = 5 * time.Second
	}
	if c.FlushEvery <= 0 {
		c.FlushEvery = 2 * time.Millisecond
	}
	if c.IdleShardAfter <= 0 {
		c.IdleShardAfter = 2 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// transport carries advances to and from the other nodes. Its goroutines run on the node's
// context; close releases what outlives that context.
type transport interface {
	publish(a sequencer.Advance)
	watch(ctx context.Context, user string) error
	close()
}

// Node is one pulsesync node's end of the fan-out. It is safe for concurrent use.
type Node struct {
	cfg    Config
	log    *slog.Logger
	m      *metrics
	origin string // random per node: tells this node's NOTIFY payloads from the others'
	tr     transport
	rec    *reconciler

	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
	once   sync.Once

	healthMu sync.Mutex // orders health changes, so the node and its Watermarks agree
	healthy  atomic.Bool
}

// Start starts a node: it connects its transport in the background and returns at once, so a
// broker or database that is down does not stop the node from serving. The node starts
// unhealthy (its Watermarks trust nothing) and turns healthy once its stream is connected.
// ctx bounds nothing after Start returns; the node runs until Close.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Pool == nil || cfg.Hub == nil || cfg.Watermarks == nil {
		return nil, errors.New("cluster: Config needs Pool, Hub and Watermarks")
	}
	cfg = cfg.withDefaults()
	n := &Node{cfg: cfg, log: cfg.Logger.With("node", cfg.NodeID), m: newMetrics(), origin: newOrigin()}
	n.m.exportZeros(cfg.NATSURL != "")
	if cfg.Registry != nil {
		if err := n.m.register(cfg.Registry); err != nil {
			return nil, err
		}
	}
	cfg.Watermarks.SetHealthy(false)
	n.rec = newReconciler(n)

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.cancel = cancel
	if cfg.NATSURL != "" {
		t, err := startNATS(runCtx, n)
		if err != nil {
			cancel()
			return nil, err
		}
		n.tr = t
	} else {
		n.tr = startPG(runCtx, n)
	}
	n.goRun(runCtx, n.rec.run)
	return n, nil
}

// goRun runs f on a goroutine that Close waits for.
func (n *Node) goRun(ctx context.Context, f func(context.Context)) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f(ctx)
	}()
}

// Announce tells the cluster that a commit made on this node advanced a.User to a.Seq. Call it
// after the commit, never inside the transaction. The local hub and watermarks get it at once;
// the other nodes get it through the transport, at most once (reconciliation repairs a loss).
// It does not block on the network. A zero a.At is stamped with the current time. After Close it
// only delivers locally.
func (n *Node) Announce(a sequencer.Advance) {
	if a.At.IsZero() {
		a.At = time.Now()
	}
	n.m.announced.Inc()
	n.deliverLocal(a)
	if n.closed.Load() {
		return
	}
	n.tr.publish(a)
}

// Watch makes sure this node receives user's advances from now on. Call it after subscribing
// the user's connection to the hub (or Watermarks.Begin) and before reading the user's seq from
// the database: once Watch returns, any advance published after that read reaches this node,
// so none can fall between the read and the stream.
//
// With NATS it subscribes the user's shard, if needed, and waits until the server has
// confirmed the subscription. With LISTEN/NOTIFY every node receives every advance and it
// returns at once. While the stream is down it returns at once as well: the node is then
// unhealthy, and reconnecting reconciles every connected user. It fails with ctx's error, or
// ErrClosed after Close.
func (n *Node) Watch(ctx context.Context, user string) error {
	if n.closed.Load() {
		return ErrClosed
	}
	return n.tr.watch(ctx, user)
}

// Healthy reports whether the advance stream is connected, so that advances of other nodes
// arrive within milliseconds rather than within the reconciliation interval.
func (n *Node) Healthy() bool { return n.healthy.Load() }

// Close stops the node and every goroutine it started, after sending the advances still waiting
// in the NOTIFY coalescer (waiting at most 5 s for the database) and in the NATS client's
// buffer. The node and its Watermarks are unhealthy afterwards. Close the node before its Pool.
// Calling Close again does nothing.
func (n *Node) Close() {
	n.once.Do(func() {
		n.closed.Store(true)
		n.cancel()
		n.wg.Wait()
		n.tr.close()
		n.setHealthy(false)
	})
}

// deliverLocal hands an advance to this node's sinks.
func (n *Node) deliverLocal(a sequencer.Advance) {
	n.cfg.Hub.Advance(a)
	n.cfg.Watermarks.Advance(a)
	n.rec.note(a.User, a.Seq)
}

// deliver hands an advance that came from elsewhere to this node's sinks.
func (n *Node) deliver(path string, a sequencer.Advance) {
	n.m.received[path].Inc()
	n.deliverLocal(a)
}

// receive decodes one message from the transport and delivers its advances. A malformed
// message is counted and dropped: reconciliation repairs what it carried.
func (n *Node) receive(path string, data []byte) {
	origin, advances, err := decodeBatch(data)
	if err != nil {
		n.m.malformed.WithLabelValues(path).Inc()
		n.log.Warn("dropped a malformed advance message", "path", path, "bytes", len(data), "err", err)
		return
	}
	if origin == n.origin {
		return // our own NOTIFY, already delivered by Announce
	}
	for _, a := range advances {
		n.deliver(path, a)
	}
}

// streamUp records that the transport is connected and every subscription is in place on the
// server, and reconciles: advances sent while it was down are lost to this node.
func (n *Node) streamUp(transport string) {
	n.setHealthy(true)
	n.rec.kick()
	n.log.Info("advance stream up", "transport", transport)
}

// streamDown records that advances may be missed from now on.
func (n *Node) streamDown(transport string, err error) {
	n.setHealthy(false)
	if !n.closed.Load() {
		n.log.Warn("advance stream down; relying on reconciliation until it is back", "transport", transport, "err", err)
	}
}

// streamGap records that the stream lost advances while staying connected: every cached
// watermark is void, and reconciliation runs at once.
func (n *Node) streamGap() {
	n.healthMu.Lock()
	if n.healthy.Load() {
		n.cfg.Watermarks.SetHealthy(false)
		n.cfg.Watermarks.SetHealthy(true)
	}
	n.healthMu.Unlock()
	n.rec.kick()
}

// setHealthy changes the node's health and its Watermarks' together. A closed node never turns
// healthy again, whatever late callback of its transport says.
func (n *Node) setHealthy(healthy bool) {
	n.healthMu.Lock()
	defer n.healthMu.Unlock()
	if healthy && n.closed.Load() {
		return
	}
	if n.healthy.Load() == healthy {
		return
	}
	n.healthy.Store(healthy)
	n.cfg.Watermarks.SetHealthy(healthy)
	if healthy {
		n.m.healthy.Set(1)
	} else {
		n.m.healthy.Set(0)
	}
}

// newOrigin returns a random id for one node's messages.
func newOrigin() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}
