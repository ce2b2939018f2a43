package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulsesync/pulsesync/sequencer"
)

const (
	listenConnectTimeout = 10 * time.Second      // one attempt to connect and LISTEN
	listenBackoffMin     = 50 * time.Millisecond // first wait after a failure
	listenBackoffMax     = 2 * time.Second       // longest wait between attempts
	listenStableAfter    = 10 * time.Second      // a connection that lived this long resets the backoff
	listenCloseTimeout   = 2 * time.Second       // saying goodbye to a connection that may be dead
	listenAppName        = "pulsesync-listen:"   // application_name prefix, before the node id
	listenSQL            = "LISTEN " + notifyChannel
)

// pgTransport is the LISTEN/NOTIFY transport: a coalescing notifier sends, a listener on a
// dedicated connection receives. Every node receives every advance, so Watch has nothing to do.
type pgTransport struct {
	notifier *notifier
}

// startPG starts the notifier and the listener on the node's context.
func startPG(ctx context.Context, n *Node) *pgTransport {
	t := &pgTransport{notifier: newNotifier(n)}
	cfg := n.cfg.Pool.Config().ConnConfig // a copy: Pool.Config copies
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = listenAppName + n.cfg.NodeID
	l := &listener{n: n, config: cfg}
	n.goRun(ctx, t.notifier.run)
	n.goRun(ctx, l.run)
	return t
}

func (t *pgTransport) publish(a sequencer.Advance)         { t.notifier.add(a) }
func (t *pgTransport) watch(context.Context, string) error { return nil }
func (t *pgTransport) close()                              {}

// listener holds the node's LISTEN connection. It is a connection of its own, never a pooled
// one: a pooled connection would stop listening when returned, and would be lent to queries
// while notifications wait on it.
type listener struct {
	n      *Node
	config *pgx.ConnConfig
}

// run keeps a LISTEN connection until ctx ends. Whenever the connection is lost the node is
// unhealthy until a new one listens; then it reconciles, since notifications sent in between
// reached nobody on this node.
func (l *listener) run(ctx context.Context) {
	var wait backoff
	connected := false
	for {
		conn, err := l.listen(ctx)
		switch {
		case err == nil:
			if connected {
				l.n.m.reconnects.WithLabelValues(transportListen).Inc()
			}
			connected = true
			up := time.Now()
			l.n.streamUp(transportListen)
			err = l.receive(ctx, conn)
			closeConn(conn)
			l.n.streamDown(transportListen, err)
			if time.Since(up) >= listenStableAfter {
				wait = backoff{}
			}
		case ctx.Err() == nil:
			level := slog.LevelDebug // the first failure of a streak deserves a warning, not every retry
			if wait.cur == 0 {
				level = slog.LevelWarn
			}
			l.n.log.Log(ctx, level, "cannot LISTEN for advances; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait.next()):
		}
	}
}

// listen opens the dedicated connection and starts listening. Once it returns, every
// notification committed afterwards reaches this node.
func (l *listener) listen(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, listenConnectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, l.config)
	if err != nil {
		return nil, fmt.Errorf("open LISTEN connection: %w", err)
	}
	if _, err := conn.Exec(ctx, listenSQL); err != nil {
		closeConn(conn)
		return nil, fmt.Errorf("listen for advances: %w", err)
	}
	return conn, nil
}

// receive delivers notifications until the connection fails or ctx ends.
func (l *listener) receive(ctx context.Context, conn *pgx.Conn) error {
	for {
		nt, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait for notification: %w", err)
		}
		l.n.receive(pathNotify, []byte(nt.Payload))
	}
}

// closeConn closes a connection that may already be dead, without waiting long for it.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), listenCloseTimeout)
	defer cancel()
	_ = conn.Close(ctx)
}

// backoff yields growing, jittered waits between reconnection attempts: the n-th wait is
// between half and all of min·2ⁿ, capped at listenBackoffMax. The zero value starts afresh.
type backoff struct{ cur time.Duration }

func (b *backoff) next() time.Duration {
	b.cur = min(max(2*b.cur, listenBackoffMin), listenBackoffMax)
	return b.cur/2 + rand.N(b.cur/2+1)
}
