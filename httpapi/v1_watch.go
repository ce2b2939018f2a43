package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"sync"

	"github.com/pulsesync/pulsesync/push"
	"github.com/pulsesync/pulsesync/sequencer"
)

// v1WatchFrames is the SSE dialect of GET /sync/watch (docs/protocol-v1.md §3.12): no ready
// event, one "bundle" event per wake-up carrying the newest bundle_seq (coalesced: latest
// wins), and ": heartbeat" comments.
var v1WatchFrames = &push.SSEFrames{
	Changes: func(seq int64) []byte {
		b := append(make([]byte, 0, 48), "event: bundle\ndata: {\"bundle_seq\":"...)
		b = strconv.AppendInt(b, seq, 10)
		return append(b, "}\n\n"...)
	},
	Heartbeat: []byte(": heartbeat\n\n"),
}

// Watch admission refusals. A user over the per-user cap gets 429 and should come back
// later; a full node, or one shutting down, gets 503 so the client's backoff (1 s doubling
// to 60 s, §3.12) spreads the retries, ideally to another node. Both send Retry-After.
const (
	watchUserRetrySeconds = 5
	watchNodeRetrySeconds = 5
)

// watch serves GET /sync/watch (§3.12): checks 1–5 in order, then the stream, which ends when
// the client goes, its token expires or the node shuts down. A watch is not an operation in
// the shutdown sense: it holds nothing, and shutdown ends it.
func (v *v1API) watch(w http.ResponseWriter, r *http.Request) {
	after, msg := queryInt(r.URL.Query(), "after_bundle_seq", 0)
	if msg == "" && after < 0 {
		msg = "after_bundle_seq must be at least 0"
	}
	if msg != "" {
		refuse(w, codeInvalidRequest, msg)
		return
	}
	if !v.cfg.Watch {
		refuse(w, "bundle_change_watch_disabled", "bundle change watch is disabled on this server")
		return
	}
	if v.closing.Load() {
		refuseShuttingDown(w)
		return
	}
	id := identityOf(r.Context())
	if err := v.store.CheckWatch(r.Context(), id.User); err != nil {
		v.storeFailed(w, r, "bundle_change_watch", err)
		return
	}
	stream := sequencer.BundleStream(id.User)
	ticket, err := v.s.cfg.Push.Admit(stream, "watch")
	if err != nil {
		v.refuseWatch(w, err)
		return
	}
	markHeld(r)
	v.watches.add(id.User, 1)
	defer v.watches.add(id.User, -1)
	err = v.s.cfg.Push.ServeSSE(w, r, push.SSERequest{
		Peer:   push.Peer{User: stream, Source: sourceOf(r.Context()), Expires: id.Expires},
		Ticket: ticket, After: after, Frames: v1WatchFrames,
	})
	switch {
	case errors.Is(err, push.ErrShuttingDown):
		refuseShuttingDown(w)
	case err != nil:
		v.storeFailed(w, r, "bundle_change_watch", err)
	}
}

// refuseWatch answers a watch the push caps do not admit.
func (v *v1API) refuseWatch(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, push.ErrUserLimit):
		writeV1Error(w, v1ErrorBody{Error: codeTooManyConnections, Message: err.Error()}, watchUserRetrySeconds)
	case errors.Is(err, push.ErrNodeLimit):
		writeV1Error(w, v1ErrorBody{Error: codeServiceUnavailable, Message: err.Error()}, watchNodeRetrySeconds)
	default:
		refuseShuttingDown(w)
	}
}

// watchCounts counts the open watch streams of each user of this process, for the test route
// GET /test/watch-subscribers (§3.14).
type watchCounts struct {
	mu     sync.Mutex
	byUser map[string]int
}

func newWatchCounts() *watchCounts { return &watchCounts{byUser: map[string]int{}} }

func (c *watchCounts) add(user string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byUser[user] += n; c.byUser[user] <= 0 {
		delete(c.byUser, user)
	}
}

func (c *watchCounts) count(user string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byUser[user]
}
