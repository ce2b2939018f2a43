package scenarios

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/pulsesync/pulsesync/loadtest"
)

// statusTokenExpired is the close code the server sends when the token that
// opened the connection expires (docs/architecture.md, push protocol).
const statusTokenExpired websocket.StatusCode = 4001

// listenerExec: every iteration learns the user's head (a download with
// limit 1, tagged endpoint:head), opens /sync/ws (or /sync/events) with
// after=head, and reads frames until the VU drains, reporting them to the
// board that pairs them with push_uploader's uploads. A connection closed by
// the server ends the iteration; the next one reconnects.
type listenerExec struct {
	p        Params
	clients  []*http.Client
	head     *loadtest.Endpoint
	board    *board
	sessions *sessions
}

func newListenerExec(env *loadtest.Env, raw json.RawMessage, o Params) (loadtest.Exec, error) {
	p, err := decodeParams(raw, o, "transport", "board", "push_timeout", "source_ips")
	if err != nil {
		return nil, err
	}
	// Long-lived streams must not be cut by a client timeout; handshakes
	// are bounded per request below.
	noTimeout := p
	noTimeout.Timeout = 0
	cs := clients(noTimeout, 64)
	return &listenerExec{
		p: p, clients: cs,
		head:     loadtest.NewHTTP(env.Metrics, cs[0]).Endpoint(loadtest.Tags{"endpoint": "head"}),
		board:    sharedBoard(env, p, "push"),
		sessions: newSessions(env, p.Transport),
	}, nil
}

// Setup does nothing.
func (x *listenerExec) Setup(context.Context) error { return nil }

// Iterate holds one push connection until the VU drains. After a failure it
// waits a jittered 0.5–1.5 s before returning, as real clients back off, so
// a server refusing connections is not hammered by a reconnect loop.
func (x *listenerExec) Iterate(ctx context.Context, vu *loadtest.VU) error {
	err := x.listen(ctx, vu)
	if err != nil {
		t := time.NewTimer(time.Duration(500+vu.Rand.IntN(1000)) * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
		case <-vu.Draining().Done():
		}
	}
	return err
}

func (x *listenerExec) listen(ctx context.Context, vu *loadtest.VU) error {
	cred := vuCredential(x.p, vu)
	bearer, err := cred.bearer(time.Now())
	if err != nil {
		return err
	}
	hctx, cancel := context.WithTimeout(ctx, x.p.Timeout.D())
	first, _, err := getDownload(hctx, x.head, x.p, bearer, 0, 1)
	cancel()
	if err != nil {
		return fmt.Errorf("learn head: %w", err)
	}
	client := x.clients[(vu.IDInScenario-1)%len(x.clients)]
	rec := &frameRecorder{board: x.board, user: cred.user}
	defer rec.leave()
	if x.p.Transport == "sse" {
		return x.listenSSE(ctx, vu, client, bearer, first.WindowUntil, rec)
	}
	return x.listenWS(ctx, vu, client, bearer, first.WindowUntil, rec)
}

func (x *listenerExec) listenWS(ctx context.Context, vu *loadtest.VU, client *http.Client, bearer string, after int64, rec *frameRecorder) error {
	dctx, cancel := context.WithTimeout(ctx, x.p.Timeout.D())
	start := time.Now()
	conn, _, err := websocket.Dial(dctx, fmt.Sprintf("%s/sync/ws?after=%d", x.p.URL, after), &websocket.DialOptions{
		HTTPClient: client, HTTPHeader: http.Header{"Authorization": {bearer}},
	})
	cancel()
	x.sessions.connected(start, err)
	if err != nil {
		return fmt.Errorf("open /sync/ws: %w", err)
	}
	defer x.sessions.closed()
	defer conn.CloseNow()

	defer closeOnDrain(vu, conn)()
	for {
		_, data, err := conn.Read(ctx)
		at := time.Now()
		if err != nil {
			if vu.Draining().Err() != nil || websocket.CloseStatus(err) == statusTokenExpired {
				return nil
			}
			return fmt.Errorf("read /sync/ws: %w", err)
		}
		if err := rec.handle(data, at); err != nil {
			return err
		}
	}
}

func (x *listenerExec) listenSSE(ctx context.Context, vu *loadtest.VU, client *http.Client, bearer string, after int64, rec *frameRecorder) error {
	rctx, cancel := context.WithCancel(vu.Draining())
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, fmt.Sprintf("%s/sync/events?after=%d", x.p.URL, after), nil)
	if err != nil {
		return fmt.Errorf("build /sync/events request: %w", err)
	}
	req.Header.Set("Authorization", bearer)
	req.Header.Set("Accept", "text/event-stream")
	start := time.Now()
	handshake := time.AfterFunc(x.p.Timeout.D(), cancel)
	resp, err := client.Do(req)
	handshake.Stop()
	if err == nil && resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	x.sessions.connected(start, err)
	if err != nil {
		return fmt.Errorf("open /sync/events: %w", err)
	}
	defer x.sessions.closed()
	defer resp.Body.Close()

	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		// Every event's data line carries the same JSON frame as the
		// WebSocket; id: and event: lines add nothing the frame lacks.
		data, ok := bytes.CutPrefix(sc.Bytes(), []byte("data:"))
		if !ok {
			continue
		}
		if err := rec.handle(bytes.TrimSpace(data), time.Now()); err != nil {
			return err
		}
	}
	if vu.Draining().Err() != nil || ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read /sync/events: %w", err)
	}
	return errors.New("read /sync/events: server ended the stream")
}

// Teardown closes idle connections.
func (x *listenerExec) Teardown(context.Context) error {
	closeIdle(x.clients...)
	return nil
}

// frameRecorder turns one connection's frames into board events.
type frameRecorder struct {
	board *board
	user  string
	l     *listener
}

func (r *frameRecorder) handle(data []byte, at time.Time) error {
	var f frame
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("decode push frame: %w", err)
	}
	switch {
	case f.Type == "ready" && r.l == nil:
		r.l = r.board.join(r.user, f.Seq, at)
	case f.Type == "changes" && r.l != nil:
		r.board.frame(r.l, f.Seq, at)
	}
	return nil
}

func (r *frameRecorder) leave() {
	if r.l != nil {
		r.board.leave(r.l, time.Now())
	}
}

// pushUploaderExec: every iteration uploads one INSERT for a user chosen at
// random from the pool's users 1 … <users> (from this VU's own device,
// so every listener of that user is another device) and publishes the
// answer's highest_server_seq with the request's start and response times.
type pushUploaderExec struct {
	p      Params
	client *http.Client
	up     *uploader
	board  *board
}

func newPushUploaderExec(env *loadtest.Env, raw json.RawMessage, o Params) (loadtest.Exec, error) {
	p, err := decodeParams(raw, o, "board", "push_timeout")
	if err != nil {
		return nil, err
	}
	client := newClient(nil, env.MaxVUs, p.Timeout.D())
	return &pushUploaderExec{p: p, client: client, up: newUploader(p, env.Metrics, client), board: sharedBoard(env, p, "push")}, nil
}

// Setup does nothing.
func (x *pushUploaderExec) Setup(context.Context) error { return nil }

// Iterate uploads one change and publishes it.
func (x *pushUploaderExec) Iterate(ctx context.Context, vu *loadtest.VU) error {
	devices, ok := vu.Data.(map[string]*device)
	if !ok {
		devices = map[string]*device{}
		vu.Data = devices
	}
	user := x.p.user(vu.Rand.IntN(x.p.Users))
	d := devices[user]
	if d == nil {
		d = newDevice(x.p, user, x.p.device(vu.ID, ""), vu.Rand.Uint64())
		devices[user] = d
	}
	out, resp, err := x.up.upload(ctx, d, 1)
	if err != nil {
		return err
	}
	x.board.publish(user, out.HighestServerSeq, resp.Start, resp.End)
	return nil
}

// Teardown counts pairs still unmatched as missed once they have timed out.
func (x *pushUploaderExec) Teardown(context.Context) error {
	x.board.sweep(time.Now())
	closeIdle(x.client)
	return nil
}
