package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5"

	"github.com/pulsesync/pulsesync/internal/natsembed"
	"github.com/pulsesync/pulsesync/internal/natstest"
	"github.com/pulsesync/pulsesync/internal/servertest"
)

// The chaos test runs three nodes on one database under mixed load (devices uploading batches,
// devices pulling their streams incrementally, devices listening on WebSockets) and injects
// one fault at a time on a schedule: the fan-out's connection (NATS restarted, or a LISTEN
// connection terminated), a node restarted, every pooled database connection terminated, an
// upload's connection cut. At the end nothing acknowledged may be lost, no pulling device may
// have skipped a change, no listening device may have heard of an acknowledged change later
// than the reconciliation interval (plus chaosGrace), no handler may have panicked, and the
// goroutines, descriptors and memory of the last minute must be those of the first.

// chaosReconcile is the nodes' reconciliation interval: the bound on a wake-up after a fault.
const chaosReconcile = time.Second

// chaosGrace is what a wake-up may take beyond chaosReconcile on a loaded two-core machine:
// the reconciliation's query, the frame's write, the listener's scheduling.
const chaosGrace = time.Second

// chaosCalm is the pause between the end of one fault (every node ready again) and the next.
const chaosCalm = time.Second

// chaosDuration is PULSESYNC_CHAOS_DURATION (a Go duration, split between the two fan-out
// transports), or 12 s for the normal suite.
func chaosDuration(t *testing.T) time.Duration {
	s := os.Getenv("PULSESYNC_CHAOS_DURATION")
	if s == "" {
		return 12 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 10*time.Second {
		t.Fatalf("PULSESYNC_CHAOS_DURATION=%q is not a duration of at least 10s", s)
	}
	return d
}

// TestChaos runs the chaos schedule over NATS and then over Postgres LISTEN/NOTIFY, half of
// PULSESYNC_CHAOS_DURATION each.
func TestChaos(t *testing.T) {
	d := chaosDuration(t) / 2
	t.Run("nats", func(t *testing.T) { runChaos(t, natstest.Start(t), d) })
	t.Run("listen", func(t *testing.T) { runChaos(t, nil, d) })
}

func runChaos(t *testing.T, nats *natsembed.Server, duration time.Duration) {
	logs := &countingHandler{}
	c := startChaosNodes(t, servertest.Options{ReconcileEvery: chaosReconcile, Logger: slog.New(logs)}, nats, 3)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(client.CloseIdleConnections)
	users := []string{"u0", "u1", "u2", "u3"}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var side sync.WaitGroup
	listeners := make([]*chaosListener, len(users))
	readers := make([]*chaosReader, len(users))
	for i, u := range users {
		listeners[i] = &chaosListener{user: u, token: faultToken(t, u, "listener")}
		readers[i] = &chaosReader{user: u, token: faultToken(t, u, "reader"), client: client}
		side.Go(func() { listeners[i].run(ctx, c.listenURLs) })
		side.Go(func() { readers[i].run(ctx, c.urls) })
	}
	ld := startLoad(t, client, c.uploadURLs, users, 2, 20)
	cutter := newDevice(t, client, "u0", "cutter")
	admin := adminConn(t, c.databaseURL)

	window := min(time.Minute, duration/4)
	began := time.Now()
	var first, last resources
	faults := map[string]int{}
	for round := 0; time.Since(began) < duration; round++ {
		name := c.fault(t, round, nats, admin, cutter, ld.ledger)
		faults[name]++
		c.waitAllReady(t, client)
		if first.goroutines == 0 && time.Since(began) >= window {
			first = sample()
		}
		time.Sleep(chaosCalm) // the schedule's pace, not a synchronisation
	}
	last = sample()
	ld.end(t)

	// Let the listeners and readers catch up with the last acknowledgement, then stop them.
	catchUp := time.Now().Add(30 * time.Second)
	for i, u := range users {
		for listeners[i].heardUpTo() < ld.ledger.highest(u) || readers[i].cursor.Load() < ld.ledger.highest(u) {
			if time.Now().After(catchUp) {
				t.Fatalf("%s: listener heard %d, reader at %d, want %d within 30 s of the end",
					u, listeners[i].heardUpTo(), readers[i].cursor.Load(), ld.ledger.highest(u))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	stop()
	side.Wait()

	url := c.urls()[0]
	acked := checkAll(t, client, url, ld.ledger)
	skipped, late, missed := 0, 0, 0
	var worst time.Duration
	for i, u := range users {
		stream := readStream(t, client, url, u)
		if r := readers[i]; r.skips > 0 || r.received != int64(len(stream)) {
			skipped += r.skips
			t.Errorf("%s: the pulling device skipped %d times and ends at %d, the server's stream at %d (I1)", u, r.skips, r.received, len(stream))
		}
		l, m, w := listeners[i].lateness(ld.ledger, u, chaosReconcile+chaosGrace)
		late, missed, worst = late+l, missed+m, max(worst, w)
	}
	byStatus, transport := ld.failures()
	t.Logf("chaos %v over %s: %d changes acknowledged, 0 lost, %d skipped; faults %v; failed upload attempts %v by status, %d without answer",
		duration.Round(time.Second), transportName(nats), acked, skipped, faults, byStatus, transport)
	t.Logf("wake-ups: %d later than %v, %d never, the latest after %v; panics %d",
		late, chaosReconcile+chaosGrace, missed, worst.Round(time.Millisecond), logs.panics.Load())
	t.Logf("resources after %v / at the end: goroutines %d / %d, descriptors %d / %d, RSS %d / %d MiB, heap %d / %d MiB",
		window, first.goroutines, last.goroutines, first.fds, last.fds, first.rss>>20, last.rss>>20, first.heap>>20, last.heap>>20)
	if late > 0 || missed > 0 {
		t.Errorf("%d wake-ups late, %d missed, want 0", late, missed)
	}
	if n := logs.panics.Load(); n > 0 {
		t.Errorf("%d handlers panicked, want 0", n)
	}
	if first.goroutines == 0 {
		t.Fatalf("no sample after the first %v", window)
	}
	first.checkGrowth(t, last)
}

func transportName(nats *natsembed.Server) string {
	if nats != nil {
		return "NATS"
	}
	return "LISTEN/NOTIFY"
}

// chaosNodes are the nodes of a chaos run; restart replaces one while the others serve.
type chaosNodes struct {
	opts        servertest.Options
	databaseURL string

	mu  sync.Mutex
	srv []*servertest.Server // nil while a node restarts
}

func startChaosNodes(t *testing.T, opts servertest.Options, nats *natsembed.Server, n int) *chaosNodes {
	if nats != nil {
		opts.NATSURL = nats.URL()
	}
	c := &chaosNodes{opts: opts}
	for i := range n {
		c.opts.NodeID = fmt.Sprintf("node-%d", i)
		s := servertest.New(t, c.opts)
		c.opts.DatabaseURL, c.databaseURL = s.DatabaseURL, s.DatabaseURL
		c.srv = append(c.srv, s)
	}
	return c
}

// urls lists the nodes that serve, in random order, so that devices spread over them.
func (c *chaosNodes) urls() []string { return c.serving(0, len(c.srv)) }

// uploadURLs are the nodes that take uploads: all but the last. listenURLs is the last one,
// where the listening devices connect: it hears of every change through the fan-out or the
// reconciliation, never from a local upload, which would mask a lost advance. While a
// restart takes the listeners' node away, they wait on the others.
func (c *chaosNodes) uploadURLs() []string { return c.serving(0, len(c.srv)-1) }

func (c *chaosNodes) listenURLs() []string {
	if urls := c.serving(len(c.srv)-1, len(c.srv)); len(urls) > 0 {
		return urls
	}
	return c.uploadURLs()
}

// serving lists the serving nodes among srv[from:to], in random order.
func (c *chaosNodes) serving(from, to int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, s := range c.srv[from:to] {
		if s != nil {
			out = append(out, s.URL)
		}
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// restart stops node i as SIGTERM would, releases everything it held and starts a new node
// in its place (on a new port).
func (c *chaosNodes) restart(t *testing.T, i int) {
	c.mu.Lock()
	old := c.srv[i]
	c.srv[i] = nil
	c.mu.Unlock()
	old.Stop()
	old.Node.Close()
	old.Pool.Close()
	opts := c.opts
	opts.NodeID = fmt.Sprintf("node-%d", i)
	s := servertest.New(t, opts)
	c.mu.Lock()
	c.srv[i] = s
	c.mu.Unlock()
}

func (c *chaosNodes) waitAllReady(t *testing.T, client *http.Client) {
	t.Helper()
	for _, url := range c.urls() {
		waitReady(t, client, url, http.StatusOK)
	}
}

// fault injects the fault of round's turn and returns its name. Each ends with the fault
// repaired; the caller waits for the nodes to be ready again.
func (c *chaosNodes) fault(t *testing.T, round int, nats *natsembed.Server, admin *pgx.Conn, cutter *device, l *ledger) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	switch round % 4 {
	case 0:
		if nats != nil {
			nats.Stop()
			time.Sleep(3 * chaosReconcile) // the outage: reconciliation must carry the wake-ups
			if err := nats.Restart(); err != nil {
				t.Fatal(err)
			}
			return "nats restarted"
		}
		node := "node-" + strconv.Itoa(len(c.srv)-1) // the listeners' node
		if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`,
			"pulsesync-listen:"+node); err != nil {
			t.Fatal(err)
		}
		return "listen killed"
	case 1:
		c.restart(t, round%len(c.srv))
		return "node restarted"
	case 2:
		if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name NOT LIKE 'pulsesync-listen:%'`); err != nil {
			t.Fatal(err)
		}
		return "pool connections killed"
	default:
		url := c.uploadURLs()[0]
		batch := cutter.nextBatch(100)
		linger := time.Duration(round%7) * time.Millisecond
		if err := cutUpload(mustHost(t, url), cutter.token, uploadBody(batch), func(int, int) int { return -1 }, linger); err != nil {
			t.Fatal(err)
		}
		if _, err := cutter.send(ctx, c.uploadURLs, batch, l); err != nil {
			t.Fatal(err)
		}
		return "upload cut"
	}
}

// adminConn is a connection of the test's own to the chaos database, for injecting faults.
func adminConn(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// chaosListener is a device on a WebSocket: it reconnects, to any serving node, with after set
// to the last seq it heard, whenever its connection ends.
type chaosListener struct {
	user, token string

	mu    sync.Mutex
	heard []ackTime // seq strictly increasing
}

func (l *chaosListener) run(ctx context.Context, urls targets) {
	for ctx.Err() == nil {
		l.listen(ctx, urls()[0])
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond): // a client's reconnect backoff
		}
	}
}

// listen holds one connection until it ends, recording what it is told.
func (l *chaosListener) listen(ctx context.Context, url string) {
	dialCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(dialCtx, "ws"+strings.TrimPrefix(url, "http")+"/sync/ws?after="+strconv.FormatInt(l.heardUpTo(), 10),
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + l.token}}})
	if err != nil {
		return
	}
	defer conn.CloseNow()
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return
		}
		var f struct {
			Seq int64 `json:"seq"`
		}
		if json.Unmarshal(data, &f) == nil {
			l.hear(f.Seq)
		}
	}
}

func (l *chaosListener) hear(seq int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.heard); n == 0 || seq > l.heard[n-1].seq {
		l.heard = append(l.heard, ackTime{seq, time.Now()})
	}
}

func (l *chaosListener) heardUpTo() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.heard) == 0 {
		return 0
	}
	return l.heard[len(l.heard)-1].seq
}

// lateness compares every acknowledgement of user with when the listener heard of its seq: it
// counts those heard later than bound after the acknowledgement and those never heard, and
// returns the longest wait.
func (l *chaosListener) lateness(led *ledger, user string, bound time.Duration) (late, missed int, worst time.Duration) {
	acks := led.acksOf(user)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range acks {
		i := sort.Search(len(l.heard), func(i int) bool { return l.heard[i].seq >= a.seq })
		if i == len(l.heard) {
			missed++
			continue
		}
		wait := max(l.heard[i].at.Sub(a.at), 0)
		worst = max(worst, wait)
		if wait > bound {
			late++
		}
	}
	return late, missed, worst
}

// chaosReader is a device that pulls its user's stream page by page, as the clients do. It
// checks as it goes that every entry follows the one before (server id one higher): a change
// skipped is one it would never apply.
type chaosReader struct {
	user, token string
	client      *http.Client
	cursor      atomic.Int64
	received    int64 // entries received, in order, each one above the one before
	skips       int   // entries that did not follow the one before
}

func (r *chaosReader) run(ctx context.Context, urls targets) {
	for ctx.Err() == nil {
		more, err := r.pull(ctx, urls()[0])
		if err != nil || !more {
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond): // the client's poll period
			}
		}
	}
}

// pull fetches the page after the cursor and reports whether there is more.
func (r *chaosReader) pull(ctx context.Context, url string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/sync/download?limit=100&after="+strconv.FormatInt(r.cursor.Load(), 10), nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := r.client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var page struct {
		Changes   []streamEntry `json:"changes"`
		HasMore   bool          `json:"has_more"`
		NextAfter int64         `json:"next_after"`
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return false, err
	}
	for _, e := range page.Changes {
		if e.ServerID != r.received+1 {
			r.skips++
		}
		r.received = e.ServerID
	}
	r.cursor.Store(page.NextAfter)
	return page.HasMore, nil
}

// resources is a sample of what the test process holds.
type resources struct {
	goroutines int
	fds        int
	rss, heap  uint64
}

func sample() resources {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	r := resources{goroutines: runtime.NumGoroutine(), heap: m.HeapInuse}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		r.fds = len(fds)
	}
	if statm, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(statm)); len(f) > 1 {
			pages, _ := strconv.ParseUint(f[1], 10, 64)
			r.rss = pages * uint64(os.Getpagesize())
		}
	}
	return r
}

// checkGrowth fails the test if last holds clearly more than r. Both are taken under the same
// load; the slack absorbs what the load itself has in flight at a given instant.
func (r resources) checkGrowth(t *testing.T, last resources) {
	t.Helper()
	if last.goroutines > r.goroutines+r.goroutines/4+50 {
		t.Errorf("goroutines grew from %d to %d", r.goroutines, last.goroutines)
	}
	if last.fds > r.fds+r.fds/4+20 {
		t.Errorf("descriptors grew from %d to %d", r.fds, last.fds)
	}
	if last.heap > r.heap+r.heap/2+32<<20 {
		t.Errorf("heap grew from %d to %d MiB", r.heap>>20, last.heap>>20)
	}
}

// countingHandler is the nodes' logger in a chaos run: it keeps nothing (a run logs every
// refused upload) but counts the handlers that panicked.
type countingHandler struct{ panics atomic.Int64 }

func (h *countingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		h.panics.Add(1)
	}
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }
