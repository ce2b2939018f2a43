package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/pulsesync/pulsesync/loadtest"
)

// idleWSExec holds p.Connections idle WebSockets on /sync/ws, shared out over
// the scenario's VUs (run it with constant-vus: each VU's single iteration
// opens its share, holds it until the VU drains, and closes it). Connection
// g is device load-dev-<vu>-<k> of user g/devices_per_user % users + 1, with
// source address 127.0.0.(2 + g % source_ips). Each connection costs the
// client one goroutine, blocked in Read so that pings are answered.
// Metrics: ws_connecting, ws_sessions, ws_connect_failed, ws_open; with
// server_pid also server_rss_bytes and server_rss_per_conn_bytes.
type idleWSExec struct {
	p        Params
	env      *loadtest.Env
	clients  []*http.Client
	sessions *sessions
	observer *rssObserver // nil without server_pid
	stop     context.CancelFunc
	wg       sync.WaitGroup
}

func newIdleWSExec(env *loadtest.Env, raw json.RawMessage, o Params) (loadtest.Exec, error) {
	p, err := decodeParams(raw, o, "connections", "source_ips", "server_pid")
	if err != nil {
		return nil, err
	}
	x := &idleWSExec{p: p, env: env, sessions: newSessions(env, "ws")}
	x.clients = clients(p, 0)
	if p.ServerPID > 0 {
		x.observer = newRSSObserver(env.Metrics, p.ServerPID)
	}
	return x, nil
}

// Setup raises RLIMIT_NOFILE to its hard limit (noting when that is below the
// connections asked for) and starts the server RSS observer.
func (x *idleWSExec) Setup(ctx context.Context) error {
	noteNoFile(x.env, x.p.Connections)
	if x.observer == nil {
		return nil
	}
	if err := x.observer.baseline(); err != nil {
		return err
	}
	octx, stop := context.WithCancel(context.WithoutCancel(ctx))
	x.stop = stop
	x.wg.Go(func() { x.observer.run(octx, x.sessions.open) })
	return nil
}

// Iterate opens the VU's share of connections and holds them until it drains.
func (x *idleWSExec) Iterate(ctx context.Context, vu *loadtest.VU) error {
	idx, vus := vu.IDInScenario-1, x.env.MaxVUs
	var conns []*websocket.Conn
	var readers sync.WaitGroup
	defer func() {
		for _, c := range conns {
			c.Close(websocket.StatusNormalClosure, "load test over")
		}
		readers.Wait()
	}()
	var firstErr error
	failed := 0
	for k, g := 0, idx; g < x.p.Connections && vu.Draining().Err() == nil; k, g = k+1, g+vus {
		c, err := x.dial(ctx, g, x.p.device(vu.ID, strconv.Itoa(k)))
		if err != nil {
			failed++
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		conns = append(conns, c)
		readers.Go(func() {
			defer x.sessions.closed()
			for {
				if _, _, err := c.Read(ctx); err != nil {
					return
				}
			}
		})
	}
	<-vu.Draining().Done()
	if firstErr != nil {
		return fmt.Errorf("%d of the VU's connections failed, the first: %w", failed, firstErr)
	}
	return nil
}

// dial opens connection g for device dev.
func (x *idleWSExec) dial(ctx context.Context, g int, dev string) (*websocket.Conn, error) {
	bearer, err := newCredential(x.p, x.p.userOf(g), dev).bearer(time.Now())
	if err != nil {
		return nil, err
	}
	start := time.Now()
	c, _, err := websocket.Dial(ctx, x.p.URL+"/sync/ws?after=0", &websocket.DialOptions{
		HTTPClient: x.clients[g%len(x.clients)],
		HTTPHeader: http.Header{"Authorization": {bearer}},
	})
	x.sessions.connected(start, err)
	if err != nil {
		if ip := sourceIP(g, x.p.SourceIPs); ip != nil {
			return nil, fmt.Errorf("open /sync/ws from %s: %w", ip, err)
		}
		return nil, fmt.Errorf("open /sync/ws: %w", err)
	}
	// Frames are tiny and rare; a small read limit keeps a hostile or buggy
	// server from making the client buffer much per connection.
	c.SetReadLimit(4096)
	return c, nil
}

// Teardown stops the observer and reports the server's memory per connection.
func (x *idleWSExec) Teardown(context.Context) error {
	if x.stop != nil {
		x.stop()
		x.wg.Wait()
		x.observer.report(x.env)
	}
	closeIdle(x.clients...)
	return nil
}
