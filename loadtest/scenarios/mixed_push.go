package scenarios

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/coder/websocket"
)

// errStormDrop ends a push session that the storm dropped.
var errStormDrop = errors.New("dropped by the reconnect storm")

// pushConn is a mixed device's push channel (docs/push.md): it keeps one
// connection of the device's kind open, hands every hint to the device, and
// after any end of a connection reconnects with jittered exponential
// backoff from the device's current cursor.
type pushConn struct {
	x     *mixedExec
	d     *mixedDevice
	cred  *credential // the channel's own: the device's belongs to its loop
	hints chan<- hint
	rand  *rand.Rand

	failures  int       // attempts since the channel was last up
	droppedAt time.Time // when the storm dropped it, until it is up again
}

// run holds the channel until ctx ends.
func (c *pushConn) run(ctx context.Context) {
	for {
		var err error
		switch c.d.kind {
		case kindWS:
			err = c.ws(ctx)
		case kindSSE:
			err = c.sse(ctx)
		default:
			err = c.longPoll(ctx)
		}
		if ctx.Err() != nil {
			return
		}
		if !errors.Is(err, errStormDrop) {
			c.x.env.Logger.Debug("mixed: push channel ended", "device", c.d.up.cred.device, "err", err)
		}
		wait := backoff(c.failures, c.x.m.BackoffBase.D(), c.x.m.BackoffMax.D(), c.rand)
		c.failures++
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// up records that the channel is open again: the backoff starts over, and
// a channel the storm dropped has reconnected.
func (c *pushConn) up(ctx context.Context, at time.Time) {
	c.failures = 0
	c.reconnected(ctx, at)
}

// reconnected records that a channel the storm dropped is back, and tells
// the device (an empty hint) in case it waits for that to finish its day.
func (c *pushConn) reconnected(ctx context.Context, at time.Time) {
	if !c.droppedAt.IsZero() {
		c.x.reconnect.AddDuration(at.Sub(c.droppedAt))
		c.droppedAt = time.Time{}
		c.d.down.Store(false)
		c.tell(ctx, hint{})
	}
}

// guard arranges for drop to end the session when the storm breaks; ended,
// called when the session is over, turns err into errStormDrop if the storm
// ended it.
func (c *pushConn) guard(drop func()) (ended func(err error) error) {
	stop := c.x.day.onStorm(drop)
	return func(err error) error {
		if dropped, at := stop(); dropped {
			c.x.dropped.Add(1)
			c.droppedAt = at
			c.d.down.Store(true)
			return errStormDrop
		}
		return err
	}
}

// tell hands a hint to the device, giving up when ctx ends.
func (c *pushConn) tell(ctx context.Context, h hint) {
	select {
	case c.hints <- h:
	case <-ctx.Done():
	}
}

// onFrame handles one push frame (docs/push.md §1): ready means the
// channel is up, changes is a hint.
func (c *pushConn) onFrame(ctx context.Context, data []byte, at time.Time) error {
	var f frame
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("decode push frame: %w", err)
	}
	switch f.Type {
	case "ready":
		c.up(ctx, at)
	case "changes":
		c.tell(ctx, hint{seq: f.Seq, at: at, wake: true})
	}
	return nil
}

// streamURL is the URL of a push stream resuming from the device's cursor.
func (c *pushConn) streamURL(path string) string {
	q := url.Values{"after": {strconv.FormatInt(c.d.cursor.Load(), 10)}, "schema": {c.x.p.Schema}}
	return c.x.p.URL + path + "?" + q.Encode()
}

// ws holds one WebSocket session.
func (c *pushConn) ws(ctx context.Context) error {
	bearer, err := c.cred.bearer(time.Now())
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, c.x.p.Timeout.D())
	start := time.Now()
	conn, _, err := websocket.Dial(dctx, c.streamURL("/sync/ws"), &websocket.DialOptions{
		HTTPClient: c.x.streams, HTTPHeader: http.Header{"Authorization": {bearer}},
	})
	cancel()
	c.x.ws.connected(start, err)
	if err != nil {
		return fmt.Errorf("open /sync/ws: %w", err)
	}
	defer c.x.ws.closed()
	defer conn.CloseNow()
	ended := c.guard(func() { conn.CloseNow() })
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return ended(fmt.Errorf("read /sync/ws: %w", err))
		}
		if err := c.onFrame(ctx, data, time.Now()); err != nil {
			return ended(err)
		}
	}
}

// sse holds one Server-Sent Events session.
func (c *pushConn) sse(ctx context.Context) error {
	bearer, err := c.cred.bearer(time.Now())
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, c.streamURL("/sync/events"), nil)
	if err != nil {
		return fmt.Errorf("build /sync/events request: %w", err)
	}
	req.Header.Set("Authorization", bearer)
	req.Header.Set("Accept", "text/event-stream")
	start := time.Now()
	handshake := time.AfterFunc(c.x.p.Timeout.D(), cancel)
	resp, err := c.x.streams.Do(req)
	handshake.Stop()
	if err == nil && resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	c.x.sse.connected(start, err)
	if err != nil {
		return fmt.Errorf("open /sync/events: %w", err)
	}
	defer c.x.sse.closed()
	defer resp.Body.Close()
	ended := c.guard(cancel)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		// Every event's data line is the WebSocket's frame (docs/push.md §2).
		data, ok := bytes.CutPrefix(sc.Bytes(), []byte("data:"))
		if !ok {
			continue
		}
		if err := c.onFrame(ctx, bytes.TrimSpace(data), time.Now()); err != nil {
			return ended(err)
		}
	}
	if err := sc.Err(); err != nil {
		return ended(fmt.Errorf("read /sync/events: %w", err))
	}
	return ended(errors.New("read /sync/events: server ended the stream"))
}

// longPoll runs long-polls (docs/push.md §3) back to back: each answer with
// something after the cursor goes to the device as a hint carrying its page,
// and the next long-poll waits until the device has handled it, so it
// resumes from the new cursor.
func (c *pushConn) longPoll(ctx context.Context) error {
	wait := url.Values{"wait": {strconv.Itoa(c.x.m.LongPollWait)}}
	bound := time.Duration(c.x.m.LongPollWait)*time.Second + c.x.p.Timeout.D()
	for {
		bearer, err := c.cred.bearer(time.Now())
		if err != nil {
			return err
		}
		after := c.d.cursor.Load()
		rctx, cancel := context.WithTimeout(ctx, bound)
		ended := c.guard(cancel)
		// A long-poll has no open state: the channel is back when one is
		// asked again; the backoff starts over only once one is answered.
		c.reconnected(ctx, time.Now())
		page, _, err := getDownloadQuery(rctx, c.x.longPoll, c.x.p, bearer, after, c.x.p.Limit, wait)
		at := time.Now()
		err = ended(err)
		cancel()
		if err != nil {
			return err
		}
		c.failures = 0
		if page.WindowUntil <= after && len(page.Changes) == 0 {
			continue
		}
		done := make(chan struct{})
		c.tell(ctx, hint{seq: max(page.WindowUntil, page.NextAfter), at: at, wake: len(page.Changes) > 0, after: after, page: &page, done: done})
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
