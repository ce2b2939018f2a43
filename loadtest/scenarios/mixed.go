package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pulsesync/pulsesync/loadtest"
)

// mixedExec: a realistic day of v0 devices. Every VU is one device of a
// user (devices_per_user consecutive VUs share one) and runs one long
// iteration: it learns its user's head, then holds a push channel — a
// WebSocket, an SSE stream or a long-poll, by the shares — and downloads
// until caught up on every hint; pollers download every poll_interval
// instead. Now and then it uploads a burst and downloads after it, as a
// client's sync does. At storm_at every push connection is dropped at once
// and comes back with jittered exponential backoff, resuming from its
// cursor. When the schedule ends, uploads stop (in every mixed scenario of
// the board), each device is given catchup_timeout to reach its user's head,
// and the oracle compares its cursor and the entries it saw with what the
// server's download API holds for it.
//
// Metrics: sync_catchup_duration{transport} (hint received → download
// complete), missed_or_late_seq (devices that ended behind or with other
// entries than the server's), storm_dropped and storm_reconnect_duration
// (drop → channel up again), the "mixed: device in sync" check, the
// ws_/sse_ session metrics and the HTTP metrics (endpoint upload, download,
// head, longpoll, oracle, oracle_head).
type mixedExec struct {
	env *loadtest.Env
	p   Params
	m   mixedParams
	day *mixedDay

	client, streams *http.Client
	up              *uploader
	head, download  *loadtest.Endpoint
	longPoll        *loadtest.Endpoint
	ws, sse         *sessions

	latency   map[string]*loadtest.Trend // sync_catchup_duration by transport
	missed    *loadtest.Counter
	inSync    *loadtest.Rate
	dropped   *loadtest.Counter
	reconnect *loadtest.Trend
}

func newMixedExec(env *loadtest.Env, raw json.RawMessage, o Params) (loadtest.Exec, error) {
	p, mp, err := decodeMixedParams(raw, o)
	if err != nil {
		return nil, err
	}
	met := env.Metrics
	// Requests share a bounded pool: with thousands of devices on one
	// machine, a slow server would otherwise get a socket per waiting
	// request and run both sides out of file descriptors. A request that
	// waits for a connection shows in http_req_blocked.
	client := newClient(nil, min(env.MaxVUs, mixedPool), p.Timeout.D())
	client.Transport.(*http.Transport).MaxConnsPerHost = mixedPool
	// Streams must not be cut by a client timeout; every request on this
	// client bounds itself.
	streams := newClient(nil, env.MaxVUs, 0)
	h := loadtest.NewHTTP(met, client)
	x := &mixedExec{
		env: env, p: p, m: mp, client: client, streams: streams,
		up:        newUploader(p, met, client),
		head:      h.Endpoint(loadtest.Tags{"endpoint": "head"}),
		download:  h.Endpoint(loadtest.Tags{"endpoint": "download"}),
		longPoll:  loadtest.NewHTTP(met, streams).Endpoint(loadtest.Tags{"endpoint": "longpoll"}),
		ws:        newSessions(env, "ws"),
		sse:       newSessions(env, "sse"),
		latency:   map[string]*loadtest.Trend{},
		missed:    met.Counter("missed_or_late_seq", loadtest.Default, nil),
		inSync:    met.Check("mixed: device in sync"),
		dropped:   met.Counter("storm_dropped", loadtest.Default, nil),
		reconnect: met.Trend("storm_reconnect_duration", loadtest.Time, nil),
	}
	for _, k := range []string{kindWS, kindSSE, kindLongPoll} {
		x.latency[k] = met.Trend("sync_catchup_duration", loadtest.Time, loadtest.Tags{"transport": k})
	}
	x.day = env.Shared("scenarios.mixed."+p.Board, func() any {
		return &mixedDay{stormAfter: mp.StormAt.D(), oracle: newOracle(p, h)}
	}).(*mixedDay)
	return x, nil
}

// Setup raises the open-file limit for the push connections.
func (x *mixedExec) Setup(context.Context) error {
	noteNoFile(x.env, 2*x.env.MaxVUs)
	return nil
}

// Teardown notes the storm (or its absence) once per board and closes idle
// connections.
func (x *mixedExec) Teardown(context.Context) error {
	x.day.report(x.env)
	closeIdle(x.client, x.streams)
	return nil
}

// mixedPool bounds the connections of a mixed exec's requests (uploads,
// downloads, the oracle's); push channels have their own.
const mixedPool = 512

// mixedDay is what the devices of every mixed scenario of one board share:
// the storm, the gate that stops uploads at the end, and the oracle.
type mixedDay struct {
	stormAfter time.Duration
	oracle     *oracle

	startOnce sync.Once
	started   time.Time
	storm     context.Context // done when the storm breaks
	breakOut  context.CancelFunc
	timer     *time.Timer
	fireOnce  sync.Once
	stormedAt atomic.Int64 // unix nanoseconds; 0 before the storm
	drops     atomic.Int64

	// gate is held shared by every upload; closing takes it exclusively,
	// so once closed no upload is in flight and none starts.
	gate      sync.RWMutex
	closed    bool
	closeOnce sync.Once

	reportOnce sync.Once
	offenders  atomic.Int64 // devices found out of sync, for capping their notes
}

// maxOffendersNoted caps the summary's notes on devices out of sync; the
// counter missed_or_late_seq has them all.
const maxOffendersNoted = 10

// begin starts the day's clock at the first device: the storm is due
// stormAfter later.
func (day *mixedDay) begin() {
	day.startOnce.Do(func() {
		day.started = time.Now()
		day.storm, day.breakOut = context.WithCancel(context.Background())
		day.timer = time.AfterFunc(day.stormAfter, day.fire)
	})
}

// fire breaks the storm, once.
func (day *mixedDay) fire() {
	day.fireOnce.Do(func() {
		day.stormedAt.Store(time.Now().UnixNano())
		day.breakOut()
	})
}

// onStorm arranges for drop to run when the storm breaks, unless it has
// already broken: a connection opened after the storm is not dropped again.
// The returned function unregisters drop and reports whether it ran, and
// then when the storm broke.
func (day *mixedDay) onStorm(drop func()) func() (bool, time.Time) {
	if day.storm.Err() != nil {
		return func() (bool, time.Time) { return false, time.Time{} }
	}
	stop := context.AfterFunc(day.storm, drop)
	return func() (bool, time.Time) {
		if stop() {
			return false, time.Time{}
		}
		day.drops.Add(1)
		return true, time.Unix(0, day.stormedAt.Load())
	}
}

// uploadOpen runs upload unless uploads have been closed, holding the gate
// shared meanwhile; it reports whether upload ran.
func (day *mixedDay) uploadOpen(upload func()) bool {
	day.gate.RLock()
	defer day.gate.RUnlock()
	if day.closed {
		return false
	}
	upload()
	return true
}

// closeUploads stops uploads for good, returning once none is in flight.
// A storm still to come breaks now, so that a run shorter than storm_at
// (a smoke test) still drops and resumes every channel, while the devices
// catch up.
func (day *mixedDay) closeUploads() {
	day.closeOnce.Do(func() {
		day.gate.Lock()
		defer day.gate.Unlock()
		day.closed = true
	})
	day.fire()
}

// report notes when the storm broke and how many connections it dropped,
// and whether it came early, when uploads stopped; it also stops the
// storm's timer.
func (day *mixedDay) report(env *loadtest.Env) {
	day.reportOnce.Do(func() {
		if day.timer == nil {
			return
		}
		day.timer.Stop()
		if day.stormedAt.Load() == 0 {
			env.Note("no reconnect storm: the test ended before storm_at %s and before uploads stopped", day.stormAfter)
			return
		}
		at := time.Unix(0, day.stormedAt.Load()).Sub(day.started).Round(100 * time.Millisecond)
		if at < day.stormAfter {
			env.Note("the schedule ended before storm_at %s: the reconnect storm broke when uploads stopped, at %s, and dropped %d push connections",
				day.stormAfter, at, day.drops.Load())
			return
		}
		env.Note("reconnect storm at %s dropped %d push connections", at, day.drops.Load())
	})
}

// hint is what a push channel tells its device: the user's stream reached
// seq (received at at). A long-poll hint carries its answer, a page after
// after; wake says whether it brought other devices' changes (a frame always
// does). The device closes done, if set, when it has handled the hint.
type hint struct {
	seq   int64
	at    time.Time
	wake  bool
	after int64
	page  *downloadResponse
	done  chan struct{}
}

// mixedDevice is one VU's device: owned by its Iterate, except cursor,
// which its push channel reads to resume from.
type mixedDevice struct {
	kind    string
	latency *loadtest.Trend // sync_catchup_duration of its transport; nil for pollers
	up      *device
	cursor  atomic.Int64
	down    atomic.Bool // the storm dropped its channel, which is not up again yet
	start   int64       // the cursor learnt at the start: the oracle's window begins there
	seen    seqDigest   // every server id downloaded since start
	pending []hint      // hints not yet caught up with
}

// Iterate lives the device's day: until the schedule ends, then through the
// quiescence to the oracle's verdict.
func (x *mixedExec) Iterate(ctx context.Context, vu *loadtest.VU) error {
	x.day.begin()
	d, ok := vu.Data.(*mixedDevice)
	if !ok {
		user := x.p.userOf(vu.IDInScenario - 1)
		kind := x.m.kindOf(vu.IDInScenario - 1)
		d = &mixedDevice{kind: kind, latency: x.latency[kind], up: newDevice(x.p, user, x.p.device(vu.ID, ""), vu.Rand.Uint64())}
		bearer, err := d.up.cred.bearer(time.Now())
		if err != nil {
			return err
		}
		first, _, err := getDownload(ctx, x.head, x.p, bearer, 0, 1)
		if err != nil {
			return fmt.Errorf("learn head: %w", err)
		}
		d.start = first.WindowUntil
		d.cursor.Store(d.start)
		vu.Data = d
	}
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	hints := make(chan hint, 16)
	if d.kind != kindPoll {
		c := &pushConn{x: x, d: d, cred: newCredential(x.p, d.up.cred.user, d.up.cred.device),
			hints: hints, rand: rand.New(rand.NewPCG(vu.Rand.Uint64(), vu.Rand.Uint64()))}
		wg.Go(func() { c.run(cctx) })
	}
	return x.live(ctx, vu, d, hints)
}

// live is the device's loop: hints, bursts and polls until the schedule
// ends; then, with uploads closed, hints and polls until the cursor reaches
// the user's head or catchup_timeout passes, and the verdict.
func (x *mixedExec) live(ctx context.Context, vu *loadtest.VU, d *mixedDevice, hints <-chan hint) error {
	jittered := func(mean time.Duration) time.Duration {
		return mean/2 + time.Duration(vu.Rand.Int64N(int64(mean)+1))
	}
	// First bursts and polls are spread over a whole period, so devices
	// that start together do not write together.
	upload := time.NewTimer(time.Duration(vu.Rand.Int64N(int64(x.m.UploadEvery) + 1)))
	defer upload.Stop()
	var poll <-chan time.Time
	if d.kind == kindPoll {
		t := time.NewTicker(x.p.PollInterval.D())
		defer t.Stop()
		poll = t.C
	}
	var retry, deadline <-chan time.Time
	draining := vu.Draining().Done()
	uploads := upload.C
	head := int64(-1) // the user's final head, known once uploads are closed
	catchUp := func() {
		if err := x.catchUp(ctx, d); err != nil {
			x.env.Logger.Debug("mixed: download failed, retrying", "device", d.up.cred.device, "err", err)
			retry = time.After(x.m.BackoffBase.D())
		}
	}
	// Done once uploads are closed, the cursor is at the head and the
	// channel is up: a device dropped by a storm that broke late waits to
	// be reconnected, so every run shows the reconnect.
	for head < 0 || d.cursor.Load() < head || d.down.Load() {
		select {
		case <-ctx.Done():
			if head >= 0 { // cut off while catching up: as late as it gets
				x.inSync.Add(false)
				x.missed.Add(1)
			}
			return ctx.Err()
		case h := <-hints:
			if d.take(h) {
				catchUp()
			}
			if h.done != nil {
				close(h.done)
			}
		case <-uploads:
			if x.day.uploadOpen(func() { _, _, _ = x.up.upload(ctx, d.up, x.m.Burst) }) {
				catchUp()
			}
			upload.Reset(jittered(x.m.UploadEvery.D()))
		case <-poll:
			catchUp()
		case <-retry:
			retry = nil
			catchUp()
		case <-draining:
			draining, uploads = nil, nil
			x.day.closeUploads()
			h, err := x.day.oracle.userHead(ctx, d.up.cred)
			if err != nil {
				x.inSync.Add(false)
				return err
			}
			head, deadline = h, time.After(x.m.CatchUp.D())
		case <-deadline:
			return x.verdict(ctx, d, head)
		}
	}
	return x.verdict(ctx, d, head)
}

// take handles one hint and reports whether the device must download to
// catch up with it. A long-poll's answer that follows the cursor is applied
// as the page it is; a hint at or below the cursor needs nothing (the
// device's own upload, already downloaded after it).
func (d *mixedDevice) take(h hint) bool {
	if h.seq <= d.cursor.Load() {
		return false
	}
	if h.wake {
		d.pending = append(d.pending, h)
	}
	if h.page != nil && h.after == d.cursor.Load() && !d.apply(*h.page) {
		d.served(time.Now())
		return false
	}
	return true
}

// catchUp downloads from the cursor until a page says nothing more is in
// the window, then records the hints that download has answered.
func (x *mixedExec) catchUp(ctx context.Context, d *mixedDevice) error {
	for {
		bearer, err := d.up.cred.bearer(time.Now())
		if err != nil {
			return err
		}
		page, _, err := getDownload(ctx, x.download, x.p, bearer, d.cursor.Load(), x.p.Limit)
		if err != nil {
			return err
		}
		if !d.apply(page) {
			break
		}
	}
	d.served(time.Now())
	return nil
}

// apply takes one download page that follows the cursor and reports whether
// more is to be read. A last page moves the cursor to window_until: every
// entry for this device up to it has been returned (docs/protocol-v0.md
// §4.2), whatever the device's own entries above the last one returned.
func (d *mixedDevice) apply(page downloadResponse) bool {
	for _, c := range page.Changes {
		d.seen.add(c.ServerID)
	}
	if page.HasMore {
		d.cursor.Store(max(d.cursor.Load(), page.NextAfter))
		return true
	}
	d.cursor.Store(max(d.cursor.Load(), page.WindowUntil, page.NextAfter))
	return false
}

// served records, as of now, the catch-up time of every pending hint the
// cursor has reached.
func (d *mixedDevice) served(now time.Time) {
	cur := d.cursor.Load()
	kept := d.pending[:0]
	for _, h := range d.pending {
		if h.seq <= cur {
			d.latency.AddDuration(now.Sub(h.at))
			continue
		}
		kept = append(kept, h)
	}
	clear(d.pending[len(kept):])
	d.pending = kept
}

// verdict asks the oracle what the device should have and records the
// comparison.
func (x *mixedExec) verdict(ctx context.Context, d *mixedDevice, head int64) error {
	want, err := x.day.oracle.expected(ctx, d.up.cred, d.start, head)
	if err != nil {
		x.inSync.Add(false)
		return err
	}
	cursor := d.cursor.Load()
	v := judge(head, cursor, d.seen, want)
	x.inSync.Add(v == inSync)
	if v != inSync {
		x.missed.Add(1)
		if x.day.offenders.Add(1) > maxOffendersNoted {
			return nil
		}
		x.env.Note("%s (%s) of %s %s: cursor %d, head %d; saw %d entries, the server has %d",
			d.up.cred.device, d.kind, d.up.cred.user, v, cursor, head, d.seen.n, want.n)
	}
	return nil
}
