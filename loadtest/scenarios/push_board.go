package scenarios

import (
	"sync"
	"time"

	"github.com/pulsesync/pulsesync/loadtest"
)

// arrivalsKept is how many recent frames a listener remembers, to match
// uploads whose response (and so whose publication here) came after the frame.
const arrivalsKept = 16

// board is where push uploaders publish "user U reached seq S; the request
// started at t_sent and its response came at t_resp" and push listeners
// report "I was told seq N at t". It pairs every upload with every listener of
// the user that was ready before the upload started, and records, for each
// pair, the time from t_sent (and from t_resp) to the first frame with
// seq ≥ S. Either side may come first: a push can beat the HTTP response.
// A pair still unmatched timeout after t_sent counts in push_missed. The v1
// watch test uses the same board: there an "upload" is a bundle's commit
// request and a "frame" a watch event (metrics watch_*).
//
// State is per user and bounded: a listener keeps its last arrivalsKept
// frames, and an upload is dropped once every listener it waits for has
// seen it, left, or timed out.
type board struct {
	timeout time.Duration

	latency     *loadtest.Trend
	afterResp   *loadtest.Trend
	beforeResp  *loadtest.Counter
	missed      *loadtest.Counter
	frames      *loadtest.Counter
	readyGauge  *loadtest.Gauge
	listenersMu sync.Mutex
	ready       int

	mu    sync.Mutex
	users map[string]*userBoard
}

type userBoard struct {
	mu        sync.Mutex
	listeners map[*listener]struct{}
	uploads   []*published
}

// listener is one connected device waiting for frames.
type listener struct {
	user     string
	readyAt  time.Time
	lastSeq  int64
	arrivals [arrivalsKept]arrival
	next     int // ring position of the next arrival
}

type arrival struct {
	seq int64
	at  time.Time
}

// published is an upload that some listener has not seen yet.
type published struct {
	seq        int64
	sent, resp time.Time
	waiting    map[*listener]struct{}
}

// newBoard returns a board recording <prefix>_latency,
// <prefix>_latency_after_response, <prefix>_before_response,
// <prefix>_missed, <prefix>_frames and <prefix>_listeners_ready: prefix is
// "push" for the v0 push channel, "watch" for the v1 watch stream.
func newBoard(m *loadtest.Metrics, prefix string, timeout time.Duration) *board {
	return &board{
		timeout:    timeout,
		latency:    m.Trend(prefix+"_latency", loadtest.Time, nil),
		afterResp:  m.Trend(prefix+"_latency_after_response", loadtest.Time, nil),
		beforeResp: m.Counter(prefix+"_before_response", loadtest.Default, nil),
		missed:     m.Counter(prefix+"_missed", loadtest.Default, nil),
		frames:     m.Counter(prefix+"_frames", loadtest.Default, nil),
		readyGauge: m.Gauge(prefix+"_listeners_ready", loadtest.Default, nil),
		users:      map[string]*userBoard{},
	}
}

// sharedBoard returns the run's board named p.Board with the metric prefix,
// creating it on first use.
func sharedBoard(env *loadtest.Env, p Params, prefix string) *board {
	return env.Shared("scenarios.board."+prefix+"."+p.Board, func() any {
		return newBoard(env.Metrics, prefix, p.PushTimeout.D())
	}).(*board)
}

func (b *board) user(u string) *userBoard {
	b.mu.Lock()
	defer b.mu.Unlock()
	ub := b.users[u]
	if ub == nil {
		ub = &userBoard{listeners: map[*listener]struct{}{}}
		b.users[u] = ub
	}
	return ub
}

func (b *board) setReady(delta int) {
	b.listenersMu.Lock()
	defer b.listenersMu.Unlock()
	b.ready += delta
	b.readyGauge.Set(float64(b.ready))
}

// join registers a listener of user that was told seq at time at (its
// "ready" frame); uploads that started before at are not expected of it.
func (b *board) join(user string, seq int64, at time.Time) *listener {
	l := &listener{user: user, readyAt: at, lastSeq: seq}
	ub := b.user(user)
	ub.mu.Lock()
	ub.listeners[l] = struct{}{}
	ub.mu.Unlock()
	b.setReady(1)
	return l
}

// frame records that l was told seq at time at.
func (b *board) frame(l *listener, seq int64, at time.Time) {
	b.frames.Add(1)
	ub := b.user(l.user)
	ub.mu.Lock()
	defer ub.mu.Unlock()
	if seq <= l.lastSeq {
		return
	}
	l.lastSeq = seq
	l.arrivals[l.next%arrivalsKept] = arrival{seq, at}
	l.next++
	for _, u := range ub.uploads {
		if _, ok := u.waiting[l]; ok && u.seq <= seq {
			b.record(u, at)
			delete(u.waiting, l)
		}
	}
	b.prune(ub, at)
}

// publish records that an upload for user, sent at sent and answered at
// resp, brought the user to seq.
func (b *board) publish(user string, seq int64, sent, resp time.Time) {
	ub := b.user(user)
	ub.mu.Lock()
	defer ub.mu.Unlock()
	u := &published{seq: seq, sent: sent, resp: resp, waiting: map[*listener]struct{}{}}
	for l := range ub.listeners {
		if !l.readyAt.Before(sent) {
			continue
		}
		if at, ok := l.firstArrival(seq); ok {
			b.record(u, at)
			continue
		}
		u.waiting[l] = struct{}{}
	}
	if len(u.waiting) > 0 {
		ub.uploads = append(ub.uploads, u)
	}
	b.prune(ub, resp)
}

// leave unregisters l; uploads it still waited for count as missed only if
// they had already timed out.
func (b *board) leave(l *listener, at time.Time) {
	ub := b.user(l.user)
	ub.mu.Lock()
	delete(ub.listeners, l)
	for _, u := range ub.uploads {
		if _, ok := u.waiting[l]; ok {
			if at.Sub(u.sent) > b.timeout {
				b.missed.Add(1)
			}
			delete(u.waiting, l)
		}
	}
	b.prune(ub, at)
	ub.mu.Unlock()
	b.setReady(-1)
}

// firstArrival is when l was first told a seq ≥ seq. When the frame has
// already left the ring, the oldest remembered frame stands in: a later
// time, so the latency is overstated, never understated.
func (l *listener) firstArrival(seq int64) (time.Time, bool) {
	if l.lastSeq < seq {
		return time.Time{}, false
	}
	var best time.Time
	for i := range min(l.next, arrivalsKept) {
		a := l.arrivals[(l.next-1-i)%arrivalsKept] // newest first
		if a.seq < seq {
			break
		}
		best = a.at
	}
	return best, !best.IsZero()
}

// record adds one matched (upload, listener) pair.
func (b *board) record(u *published, at time.Time) {
	b.latency.AddDuration(at.Sub(u.sent))
	d := at.Sub(u.resp)
	if d < 0 {
		b.beforeResp.Add(1)
		d = 0
	}
	b.afterResp.AddDuration(d)
}

// prune drops uploads nobody waits for any more, counting pairs that timed out.
func (b *board) prune(ub *userBoard, now time.Time) {
	kept := ub.uploads[:0]
	for _, u := range ub.uploads {
		if len(u.waiting) > 0 && now.Sub(u.sent) > b.timeout {
			b.missed.Add(float64(len(u.waiting)))
			continue
		}
		if len(u.waiting) > 0 {
			kept = append(kept, u)
		}
	}
	clear(ub.uploads[len(kept):])
	ub.uploads = kept
}

// sweep counts every pair that timed out by now, for the end of the test.
func (b *board) sweep(now time.Time) {
	b.mu.Lock()
	users := make([]*userBoard, 0, len(b.users))
	for _, ub := range b.users {
		users = append(users, ub)
	}
	b.mu.Unlock()
	for _, ub := range users {
		ub.mu.Lock()
		b.prune(ub, now)
		ub.mu.Unlock()
	}
}
