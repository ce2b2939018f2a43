package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/pulsesync/pulsesync/loadtest"
)

// The compare-polling test serves the same devices and the same writes two
// ways, one phase after the other: compare_poller devices download every
// poll_interval, compare_pusher devices hold a WebSocket and download only
// when told. compare_writer uploads for random users in both, and
// compare_meter measures each phase's cost (compare_meter.go). Everything of
// one phase meets under its board name ("poll", "push"), which also names
// its freshness metrics: fresh_<board>_latency_after_response is the time
// from an upload's answer to a device having downloaded the change.

// boardNameRE keeps board names usable inside metric names and tags.
var boardNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// phase is what the scenarios of one compare-polling phase share.
type phase struct {
	board *board

	mu      sync.Mutex
	devices int // the device scenarios' VUs, for the per-1,000 figures
}

// sharedPhase returns the run's phase named by p.Board, creating it with its
// freshness board on first use.
func sharedPhase(env *loadtest.Env, p Params) (*phase, error) {
	if !boardNameRE.MatchString(p.Board) {
		return nil, fmt.Errorf("board %q must match %s: it names metrics", p.Board, boardNameRE)
	}
	return env.Shared("scenarios.fresh."+p.Board, func() any {
		return &phase{board: newBoard(env.Metrics, "fresh_"+p.Board, p.PushTimeout.D())}
	}).(*phase), nil
}

func (ph *phase) addDevices(n int) {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	ph.devices += n
}

func (ph *phase) deviceCount() int {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	return ph.devices
}

// cursors remember where each device of the run stopped, so the second phase's
// devices carry on from the first's: the same devices, served another way.
type cursors struct {
	mu sync.Mutex
	at map[string]int64
}

func sharedCursors(env *loadtest.Env) *cursors {
	return env.Shared("scenarios.fresh.cursors", func() any { return &cursors{at: map[string]int64{}} }).(*cursors)
}

func (c *cursors) load(dev string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at[dev]
}

func (c *cursors) store(dev string, cursor int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at[dev] = cursor
}

// syncDevice is one device that downloads its user's stream: its credential
// and cursor. Owned by one VU.
type syncDevice struct {
	cred   *credential
	cursor int64
	l      *listener // on the phase's board once the first sync is done
	due    time.Time // a poller's next poll; zero before the first
}

// compareDevice is what both kinds of compare devices have: params, the
// phase, the download endpoint and the shared cursors.
type compareDevice struct {
	p       Params
	phase   *phase
	client  *http.Client
	ep      *loadtest.Endpoint
	cursors *cursors
	// devName is the device id of the n-th VU of a device scenario: the same
	// in both phases, so the cursors carry over.
	devName func(n int) string
}

func newCompareDevice(env *loadtest.Env, raw json.RawMessage, o Params, defaultBoard string, client *http.Client, extra ...string) (*compareDevice, error) {
	p, err := decodeParamsOver(Params{Board: defaultBoard}, raw, o, append([]string{"board", "push_timeout"}, extra...)...)
	if err != nil {
		return nil, err
	}
	if client == nil {
		client = newClient(nil, env.MaxVUs, p.Timeout.D())
	}
	ph, err := sharedPhase(env, p)
	if err != nil {
		return nil, err
	}
	ph.addDevices(env.MaxVUs)
	return &compareDevice{
		p: p, phase: ph, client: client, cursors: sharedCursors(env),
		ep:      loadtest.NewHTTP(env.Metrics, client).Endpoint(loadtest.Tags{"endpoint": "download"}),
		devName: func(n int) string { return p.writer("load-dev", n, "cmp") },
	}, nil
}

// device returns the VU's device, resuming at the cursor a device of the same
// number left in an earlier phase.
func (c *compareDevice) device(vu *loadtest.VU) *syncDevice {
	d, ok := vu.Data.(*syncDevice)
	if !ok {
		name := c.devName(vu.IDInScenario)
		d = &syncDevice{cred: newCredential(c.p, c.p.userOf(vu.IDInScenario-1), name), cursor: c.cursors.load(name)}
		vu.Data = d
	}
	return d
}

// catchUp downloads from the device's cursor until a page ends the window
// (docs/protocol-v0.md §4.2), moves the cursor to the window's end and
// reports that on the board: from now on the device has every change up to it.
func (c *compareDevice) catchUp(ctx context.Context, d *syncDevice) error {
	if err := d.downloadWindow(ctx, c.ep, c.p); err != nil {
		return err
	}
	at := time.Now()
	if d.l == nil {
		d.l = c.phase.board.join(d.cred.user, d.cursor, at)
	} else {
		c.phase.board.frame(d.l, d.cursor, at)
	}
	return nil
}

// downloadWindow pages from the device's cursor until a page ends the window
// and moves the cursor to the window's end (docs/protocol-v0.md §4.2).
func (d *syncDevice) downloadWindow(ctx context.Context, ep *loadtest.Endpoint, p Params) error {
	for {
		bearer, err := d.cred.bearer(time.Now())
		if err != nil {
			return err
		}
		page, _, err := getDownload(ctx, ep, p, bearer, d.cursor, p.Limit)
		if err != nil {
			return err
		}
		if !page.HasMore {
			d.cursor = max(d.cursor, page.NextAfter, page.WindowUntil)
			return nil
		}
		if page.NextAfter <= d.cursor {
			return fmt.Errorf("download after=%d: next_after %d does not advance", d.cursor, page.NextAfter)
		}
		d.cursor = page.NextAfter
	}
}

// leave takes the device off the board and keeps its cursor for the next phase.
func (c *compareDevice) leave(d *syncDevice) {
	if d.l != nil {
		c.phase.board.leave(d.l, time.Now())
		d.l = nil
	}
	c.cursors.store(d.cred.device, d.cursor)
}

// pollerExec: a device that downloads every poll_interval (default 1 s), the
// first time at a random point of the first interval so the devices' polls
// spread out. One iteration is one wait and one download.
type pollerExec struct{ *compareDevice }

func newComparePollerExec(env *loadtest.Env, raw json.RawMessage, o Params) (loadtest.Exec, error) {
	c, err := newCompareDevice(env, raw, o, "poll", nil, "poll_interval", "limit")
	if err != nil {
		return nil, err
	}
	return &pollerExec{c}, nil
}

// Setup does nothing.
func (x *pollerExec) Setup(context.Context) error { return nil }

// Iterate waits for the device's next poll and downloads what is new. A
// draining VU leaves the board and keeps its cursor for the next phase.
func (x *pollerExec) Iterate(ctx context.Context, vu *loadtest.VU) error {
	d := x.device(vu)
	interval := x.p.PollInterval.D()
	if d.due.IsZero() {
		d.due = time.Now().Add(time.Duration(vu.Rand.Int64N(int64(interval))))
	}
	t := time.NewTimer(time.Until(d.due))
	defer t.Stop()
	select {
	case <-t.C:
	case <-vu.Draining().Done():
		x.drain(d)
		return nil
	}
	err := x.catchUp(ctx, d)
	d.due = d.due.Add(interval)
	if now := time.Now(); d.due.Before(now) {
		d.due = now.Add(interval) // a slow download delays the schedule instead of bursting
	}
	if vu.Draining().Err() != nil {
		x.drain(d) // the engine calls no further iteration
	}
	return err
}

// drain takes a device out of the phase and lets its idle connection go, so
// that the next phase's devices do not share the file descriptor limit with
// this one's kept-alive connections.
func (x *pollerExec) drain(d *syncDevice) {
	x.leave(d)
	x.client.CloseIdleConnections()
}

// Teardown counts timed-out pairs and closes idle connections.
func (x *pollerExec) Teardown(context.Context) error {
	x.phase.board.sweep(time.Now())
	closeIdle(x.client)
	return nil
}

// pusherExec: a device that holds a WebSocket (docs/push.md §1) with after at
// its cursor and downloads whenever a frame tells a seq past it. The
// iteration holds the connection until the VU drains; after a failure it
// backs off 0.5–1.5 s, as listeners do.
type pusherExec struct {
	*compareDevice
	sessions *sessions
}

func newComparePusherExec(env *loadtest.Env, raw json.RawMessage, o Params) (loadtest.Exec, error) {
	noTimeout := newClient(nil, env.MaxVUs, 0) // the socket lives for the whole phase
	c, err := newCompareDevice(env, raw, o, "push", noTimeout, "limit")
	if err != nil {
		return nil, err
	}
	return &pusherExec{compareDevice: c, sessions: newSessions(env, "ws")}, nil
}

// Setup does nothing.
func (x *pusherExec) Setup(context.Context) error { return nil }

// Iterate holds the device's push connection until the VU drains.
func (x *pusherExec) Iterate(ctx context.Context, vu *loadtest.VU) error {
	d := x.device(vu)
	conn, err := dialHinted(ctx, x.p, x.client, x.sessions, d)
	if err == nil {
		err = x.hold(ctx, vu, conn, d)
	}
	if vu.Draining().Err() != nil {
		x.leave(d)
	}
	if err != nil {
		waitReconnect(vu)
	}
	return err
}

// hold downloads on every hint until the VU drains or the connection ends.
func (x *pusherExec) hold(ctx context.Context, vu *loadtest.VU, conn *websocket.Conn, d *syncDevice) error {
	defer x.sessions.closed()
	return readHints(ctx, vu, conn, func(seq int64) error {
		if seq <= d.cursor && d.l != nil {
			return nil
		}
		return x.catchUp(ctx, d)
	})
}

// Teardown counts timed-out pairs and closes idle connections.
func (x *pusherExec) Teardown(context.Context) error {
	x.phase.board.sweep(time.Now())
	closeIdle(x.client)
	return nil
}

// dialHinted opens /sync/ws?after=<cursor> for d through client.
func dialHinted(ctx context.Context, p Params, client *http.Client, s *sessions, d *syncDevice) (*websocket.Conn, error) {
	bearer, err := d.cred.bearer(time.Now())
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, p.Timeout.D())
	defer cancel()
	start := time.Now()
	conn, _, err := websocket.Dial(dctx, fmt.Sprintf("%s/sync/ws?after=%d", p.URL, d.cursor), &websocket.DialOptions{
		HTTPClient: client, HTTPHeader: http.Header{"Authorization": {bearer}},
	})
	s.connected(start, err)
	if err != nil {
		return nil, fmt.Errorf("open /sync/ws: %w", err)
	}
	conn.SetReadLimit(4096) // frames are tiny
	return conn, nil
}

// readHints calls hint with the seq of every frame (ready and changes) until
// the VU drains (then it closes politely and returns nil), the token expires
// (nil: the next iteration reconnects with a fresh one) or the connection
// fails. It closes conn.
func readHints(ctx context.Context, vu *loadtest.VU, conn *websocket.Conn, hint func(seq int64) error) error {
	defer conn.CloseNow()
	defer closeOnDrain(vu, conn)()
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			if vu.Draining().Err() != nil || websocket.CloseStatus(err) == statusTokenExpired {
				return nil
			}
			return fmt.Errorf("read /sync/ws: %w", err)
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			return fmt.Errorf("decode push frame: %w", err)
		}
		if err := hint(f.Seq); err != nil {
			return err
		}
	}
}

// waitReconnect waits a jittered 0.5–1.5 s, or until the VU drains, so that a
// failing server is not hammered by a reconnect loop.
func waitReconnect(vu *loadtest.VU) {
	t := time.NewTimer(time.Duration(500+vu.Rand.IntN(1000)) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-vu.Draining().Done():
	}
}

// newCompareWriterExec: push_uploader's writes (one INSERT for a random
// user, from the VU's own device) published to the phase's freshness board.
func newCompareWriterExec(env *loadtest.Env, raw json.RawMessage, o Params) (loadtest.Exec, error) {
	p, err := decodeParams(raw, o, "board", "push_timeout")
	if err != nil {
		return nil, err
	}
	ph, err := sharedPhase(env, p)
	if err != nil {
		return nil, err
	}
	client := newClient(nil, env.MaxVUs, p.Timeout.D())
	return &pushUploaderExec{p: p, client: client, up: newUploader(p, env.Metrics, client), board: ph.board}, nil
}
