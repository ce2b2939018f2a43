package scenarios

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/pulsesync/pulsesync/loadtest"
)

// v1WatchExec: every VU is one source of one user (devices_per_user sources
// per user) holding a watch stream (docs/protocol-v1.md §3.12). Every
// iteration attaches the source once, learns the user's head
// (stable_bundle_seq of a one-bundle pull, tagged endpoint:v1_pull), opens
// GET /sync/watch?after_bundle_seq=<head> and reads events until the VU
// drains, reporting them to the board (metrics watch_*) that pairs them with
// v1_watch_uploader's commits. The listener counts as ready when the 200
// arrives, the server having registered it before answering. A stream the
// server ends ends the iteration; the next one reconnects.
// Connection metrics: watch_connecting, watch_sessions,
// watch_connect_failed, watch_open.
type v1WatchExec struct {
	p        Params
	env      *loadtest.Env
	clients  []*http.Client
	c        *v1Client
	board    *board
	sessions *sessions
}

func newV1WatchExec(env *loadtest.Env, raw json.RawMessage, o Params) (loadtest.Exec, error) {
	p, err := decodeV1Params(raw, o, "board", "push_timeout", "source_ips")
	if err != nil {
		return nil, err
	}
	// Streams must not be cut by a client timeout; requests are bounded
	// per call below.
	noTimeout := p
	noTimeout.Timeout = 0
	cs := clients(noTimeout, 64)
	return &v1WatchExec{
		p: p, env: env, clients: cs,
		c:        newV1Client(p, env.Metrics, v1Connected(env), cs[0]),
		board:    sharedBoard(env, p, "watch"),
		sessions: newSessions(env, "watch"),
	}, nil
}

// Setup raises the open-file limit for the scenario's streams.
func (x *v1WatchExec) Setup(context.Context) error {
	noteNoFile(x.env, x.env.MaxVUs)
	return nil
}

// Iterate holds one watch stream until the VU drains. After a failure it
// waits a jittered 0.5–1.5 s before returning, so a server refusing streams
// is not hammered by a reconnect loop.
func (x *v1WatchExec) Iterate(ctx context.Context, vu *loadtest.VU) error {
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

func (x *v1WatchExec) listen(ctx context.Context, vu *loadtest.VU) error {
	src := vuSource(x.p, vu)
	hctx, cancel := context.WithTimeout(ctx, x.p.Timeout.D())
	err := x.c.attach(hctx, src)
	var head v1PullPage
	if err == nil {
		head, err = x.c.pull(hctx, src, 0, 1, 0)
	}
	cancel()
	if err != nil {
		return fmt.Errorf("learn head: %w", err)
	}

	var l *listener
	defer func() {
		if l != nil {
			x.sessions.closed()
			x.board.leave(l, time.Now())
		}
	}()
	start := time.Now()
	client := x.clients[(vu.IDInScenario-1)%len(x.clients)]
	err = x.c.watch(vu.Draining(), client, src, head.StableBundleSeq, x.p.Timeout.D(),
		func(at time.Time) {
			x.sessions.connected(start, nil)
			l = x.board.join(src.user(), head.StableBundleSeq, at)
		},
		func(ev watchEvent, at time.Time) error {
			x.board.frame(l, ev.BundleSeq, at)
			return nil
		})
	switch {
	case l == nil && vu.Draining().Err() != nil:
		return nil // the handshake was cut by the end of the test
	case l == nil:
		x.sessions.connected(start, err)
		return err
	case vu.Draining().Err() != nil:
		return nil
	case err == nil:
		return errors.New("read /sync/watch: server ended the stream")
	}
	return err
}

// Teardown closes idle connections.
func (x *v1WatchExec) Teardown(context.Context) error {
	closeIdle(x.clients...)
	return nil
}

// v1WatchUploaderExec: every iteration pushes one bundle of p.Rows new rows
// for a user chosen at random from the pool's users 1 … <users> (v1Pusher,
// from this VU's own source, so every watcher of that user is another
// source) and publishes its bundle_seq to the board with the times its
// commit request was sent and answered: watch_latency runs from the commit
// request's start to the event, an upper bound of commit → event.
type v1WatchUploaderExec struct {
	p      Params
	client *http.Client
	up     *v1Pusher
	board  *board
}

func newV1WatchUploaderExec(env *loadtest.Env, raw json.RawMessage, o Params) (loadtest.Exec, error) {
	p, err := decodeV1Params(raw, o, "rows", "board", "push_timeout")
	if err != nil {
		return nil, err
	}
	client := newClient(nil, env.MaxVUs, p.Timeout.D())
	return &v1WatchUploaderExec{p: p, client: client, up: newV1Pusher(p, env, client), board: sharedBoard(env, p, "watch")}, nil
}

// Setup does nothing.
func (x *v1WatchUploaderExec) Setup(context.Context) error { return nil }

// Iterate commits one bundle and publishes it.
func (x *v1WatchUploaderExec) Iterate(ctx context.Context, vu *loadtest.VU) error {
	sources, ok := vu.Data.(map[string]*v1Source)
	if !ok {
		sources = map[string]*v1Source{}
		vu.Data = sources
	}
	user := x.p.user(vu.Rand.IntN(x.p.Users))
	src := sources[user]
	if src == nil {
		// One source id for every user: source_bundle_id counts per
		// (user, source).
		src = newV1Source(x.p, user, x.p.source(vu.ID, ""), vu.Rand.Uint64())
		sources[user] = src
	}
	res, err := x.up.push(ctx, src, x.p.Rows)
	// A bundle found already committed was committed by an earlier
	// iteration whose answer was lost: its commit time is unknown.
	if res.Bundle.BundleSeq > 0 && res.Bundle.Status != "already_committed" {
		x.board.publish(user, res.Bundle.BundleSeq, res.CommitSent, res.CommitDone)
	}
	return err
}

// Teardown counts pairs still unmatched as missed once they have timed out.
func (x *v1WatchUploaderExec) Teardown(context.Context) error {
	x.board.sweep(time.Now())
	closeIdle(x.client)
	return nil
}
