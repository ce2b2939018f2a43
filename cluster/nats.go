package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pulsesync/pulsesync/sequencer"
)

// shardCount is the number of NATS subjects users are spread over. Every node must agree on
// it and on shardOf: changing either is a protocol change.
const shardCount = 256

const subjectPrefix = "pulsesync.advance."

// NATS client settings. The client reconnects forever by itself; while it is away the node is
// unhealthy and leans on reconciliation.
const (
	natsReconnectWait   = 250 * time.Millisecond
	natsReconnectJitter = 250 * time.Millisecond
	// natsReconnectBuf holds advances published during a short outage (about 10,000), sent on
	// reconnect. Past it publishing fails fast; the other nodes' reconciliation covers those.
	natsReconnectBuf = 1 << 20
	natsPingInterval = 10 * time.Second // a silent broker is found dead after two missed pings
	natsConfirmWait  = 5 * time.Second  // one round trip confirming subscriptions
	natsCloseWait    = 5 * time.Second  // for the client's last callbacks after Close
)

// shardOf maps a user to a shard with 32-bit FNV-1a, which, unlike a seeded map hash, gives the
// same answer in every process.
func shardOf(user string) int {
	h := uint32(2166136261)
	for i := 0; i < len(user); i++ {
		h ^= uint32(user[i])
		h *= 16777619
	}
	return int(h % shardCount)
}

// natsTransport publishes each advance on its user's shard and subscribes to the shards this
// node's users fall in. The connection does not echo this node's own messages back.
type natsTransport struct {
	n        *Node
	nc       *nats.Conn
	writer   batchWriter
	subjects [shardCount]string
	closed   chan struct{} // closed by the client's last callback after Close
	wasUp    atomic.Bool   // the connection was up before: the next up is a reconnect

	mu     sync.Mutex
	gen    uint64 // bumped when the connection drops: confirmations of before are void
	shards [shardCount]natsShard
}

// natsShard is one shard's subscription. Guarded by natsTransport.mu.
type natsShard struct {
	sub       *nats.Subscription // nil while not subscribed
	confirmed bool               // the server has processed sub in the current connection
	lastWatch time.Time
}

// startNATS connects to NATS, or keeps trying in the background if it is down, and starts the
// sweeper of idle shards.
func startNATS(ctx context.Context, n *Node) (*natsTransport, error) {
	// A NATS message carries one advance, so the writer's size limit does not apply.
	t := &natsTransport{n: n, writer: newBatchWriter(n.origin, 0), closed: make(chan struct{})}
	for i := range t.subjects {
		t.subjects[i] = subjectPrefix + strconv.Itoa(i)
	}
	security, err := n.cfg.NATSSecurity.options()
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(n.cfg.NATSURL, append(security,
		nats.Name("pulsesync "+n.cfg.NodeID),
		nats.NoEcho(),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(natsReconnectWait),
		nats.ReconnectJitter(natsReconnectJitter, natsReconnectJitter),
		nats.ReconnectBufSize(natsReconnectBuf),
		nats.PingInterval(natsPingInterval),
		nats.ConnectHandler(t.up),
		nats.ReconnectHandler(t.up),
		nats.DisconnectErrHandler(t.down),
		nats.ClosedHandler(func(*nats.Conn) { close(t.closed) }),
		nats.ErrorHandler(t.asyncError),
	)...)
	if err != nil {
		if _, ok := errors.AsType[*url.Error](err); ok {
			return nil, errors.New("connect to NATS: invalid URL") // url.Error quotes the URL, credentials included
		}
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	t.nc = nc
	n.goRun(ctx, t.sweep)
	return t, nil
}

// NATSSecurity are the files a node authenticates to the NATS server with and checks the
// server's certificate against. The zero value adds nothing: the URL alone decides (user and
// password in it, tls:// for TLS against the system's roots). Every field is a file path, never
// a secret itself, so the settings can be logged; the files are read when the node starts.
type NATSSecurity struct {
	// CredsFile is a user credentials file (a user JWT and its NKey seed, as `nsc` writes
	// them) for a server in operator mode.
	CredsFile string
	// NKeyFile is a file holding a user NKey seed, for a server that lists the user's public
	// key among its authorized users.
	NKeyFile string
	// CAFile is a PEM bundle of the authorities the server's certificate must chain to; set,
	// it turns TLS on. "" trusts the system's roots.
	CAFile string
	// CertFile and KeyFile are this node's PEM certificate and key for a server that verifies
	// its clients (mutual TLS); both or neither. Set, they turn TLS on.
	CertFile, KeyFile string
}

// options turns s into the client's options. The NKey seed is read here, so a missing or bad
// seed fails the start rather than every reconnect.
func (s NATSSecurity) options() ([]nats.Option, error) {
	var opts []nats.Option
	if s.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(s.CredsFile))
	}
	if s.NKeyFile != "" {
		opt, err := nats.NkeyOptionFromSeed(s.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("read the NATS NKey seed: %w", err)
		}
		opts = append(opts, opt)
	}
	if s.CAFile != "" {
		opts = append(opts, nats.RootCAs(s.CAFile))
	}
	switch {
	case s.CertFile != "" && s.KeyFile != "":
		opts = append(opts, nats.ClientCert(s.CertFile, s.KeyFile))
	case s.CertFile != "" || s.KeyFile != "":
		return nil, errors.New("a NATS client certificate needs both its certificate and its key file")
	}
	return opts, nil
}

// up runs on the client's callback goroutine when a connection is established. The
// subscriptions the client (re)sent must be in place on the server before the node calls
// itself healthy and reconciliation reads the database, or an advance published in between
// could be missed: one round trip proves they are.
func (t *natsTransport) up(nc *nats.Conn) {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), natsConfirmWait)
		err := nc.FlushWithContext(ctx)
		cancel()
		if err == nil {
			break
		}
		if !nc.IsConnected() {
			return // dropped again; the next up will do
		}
		t.n.log.Warn("NATS server slow to confirm subscriptions; retrying", "err", err)
	}
	if t.wasUp.Swap(true) {
		t.n.m.reconnects.WithLabelValues(transportNATS).Inc()
	}
	t.n.streamUp(transportNATS)
}

// down runs on the client's callback goroutine when the connection drops, and after Close.
func (t *natsTransport) down(_ *nats.Conn, err error) {
	t.mu.Lock()
	t.gen++
	for i := range t.shards {
		t.shards[i].confirmed = false
	}
	t.mu.Unlock()
	t.n.streamDown(transportNATS, err)
}

// asyncError handles errors the client reports outside any call. A slow consumer means NATS
// dropped messages for this node: the stream has a gap though still connected.
func (t *natsTransport) asyncError(_ *nats.Conn, _ *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrSlowConsumer) {
		t.n.m.slowConsumer.Inc()
		t.n.streamGap()
	}
	t.n.log.Warn("NATS client error", "err", err)
}

// onMsg receives one message of a subscribed shard.
func (t *natsTransport) onMsg(m *nats.Msg) { t.n.receive(pathNATS, m.Data) }

// publish sends a on its user's shard. The client buffers it; it does not block on the network.
func (t *natsTransport) publish(a sequencer.Advance) {
	if err := t.nc.Publish(t.subjects[shardOf(a.User)], t.writer.one(a)); err != nil {
		t.n.m.publishFailures.WithLabelValues(transportNATS).Inc()
		if !t.nc.IsReconnecting() { // during an outage the health log says it all
			t.n.log.Warn("publish advance", "user", a.User, "seq", a.Seq, "err", err)
		}
		return
	}
	t.n.m.published.WithLabelValues(transportNATS).Inc()
}

// watch subscribes user's shard if needed and waits for the server to confirm it.
func (t *natsTransport) watch(ctx context.Context, user string) error {
	i := shardOf(user)
	t.mu.Lock()
	sh := &t.shards[i]
	sh.lastWatch = time.Now()
	if sh.sub == nil {
		sub, err := t.nc.Subscribe(t.subjects[i], t.onMsg)
		if err != nil {
			t.mu.Unlock()
			if errors.Is(err, nats.ErrConnectionClosed) {
				return ErrClosed
			}
			return fmt.Errorf("subscribe to advances of shard %d: %w", i, err)
		}
		sh.sub = sub
		t.n.m.natsShards.Inc()
	}
	if sh.confirmed {
		t.mu.Unlock()
		return nil
	}
	gen, sub := t.gen, sh.sub
	t.mu.Unlock()

	if !t.nc.IsConnected() {
		return nil // unhealthy: the reconnect confirms every subscription, then reconciles
	}
	if _, ok := ctx.Deadline(); !ok { // FlushWithContext insists on a deadline
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, natsConfirmWait)
		defer cancel()
	}
	if err := t.nc.FlushWithContext(ctx); err != nil {
		if ctx.Err() == nil && !t.nc.IsConnected() {
			return nil
		}
		return fmt.Errorf("confirm subscription to advances of shard %d: %w", i, err)
	}
	t.mu.Lock()
	if t.gen == gen && sh.sub == sub {
		sh.confirmed = true
	}
	t.mu.Unlock()
	return nil
}

// sweep unsubscribes, every quarter of IdleShardAfter, the shards that nobody watched for
// IdleShardAfter and no connected user of this node falls in.
func (t *natsTransport) sweep(ctx context.Context) {
	idle := t.n.cfg.IdleShardAfter
	tick := time.NewTicker(max(idle/4, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			var needed [shardCount]bool
			for _, u := range t.n.cfg.Hub.Users() {
				needed[shardOf(u)] = true
			}
			t.mu.Lock()
			for i := range t.shards {
				sh := &t.shards[i]
				if sh.sub == nil || needed[i] || now.Sub(sh.lastWatch) < idle {
					continue
				}
				if err := sh.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
					t.n.log.Warn("unsubscribe idle shard", "shard", i, "err", err)
				}
				*sh = natsShard{}
				t.n.m.natsShards.Dec()
			}
			t.mu.Unlock()
		}
	}
}

// close closes the connection, flushing what is buffered, and waits for the client's last
// callbacks, so none of them runs after Node.Close returns.
func (t *natsTransport) close() {
	t.nc.Close()
	select {
	case <-t.closed:
	case <-time.After(natsCloseWait):
		t.n.log.Warn("NATS client callbacks still running after close")
	}
}
