package scenarios

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pulsesync/pulsesync/loadtest"
)

// stormExec: every VU is a device that connects at once with the others (run
// it with constant-vus: the VUs start together), from 127.0.0.(2 + n %
// source_ips), with after=0 while setup has put prefill_rows changes in the
// users' streams, so every device is behind. A device is caught up when it
// has been told its user's seq (docs/push.md §1), downloaded to it and found
// nothing more; it then holds its connection until the VU drains.
//
// Metrics: ws_connecting (connect time; its p(99) is the storm's connect
// p99), storm_catchup (dial → caught up, per device), storm_caught_up (rate
// of devices caught up by the end), storm_all_caught_up (gauge: first dial
// of the storm → last device caught up), and from the server's GET /metrics
// before the first dial and after the storm, pulsesync_downloads_total by answered_from:
// storm_db_reads_per_user and storm_db_reads_per_device (downloads the
// database answered; one page is one read), storm_memory_answers.
type stormExec struct {
	p        Params
	env      *loadtest.Env
	clients  []*http.Client
	eps      []*loadtest.Endpoint // download, per client
	sessions *sessions

	catchup      *loadtest.Trend
	caughtUp     *loadtest.Rate
	allCaughtUp  *loadtest.Gauge
	readsPerUser *loadtest.Gauge
	readsPerDev  *loadtest.Gauge
	fromMemory   *loadtest.Gauge

	mu      sync.Mutex
	start   time.Time // the storm's first dial
	caught  int
	metrics string // the server's /metrics URL

	begin     sync.Once // the first device reads the counters; the others wait for it
	before    downloadCounts
	beforeErr error
}

// stormDevice is a storm VU's state.
type stormDevice struct {
	syncDevice
	dialed time.Time // first dial
	caught bool
}

func newStormExec(env *loadtest.Env, raw json.RawMessage, o Params) (loadtest.Exec, error) {
	p, err := decodeParams(raw, o, "source_ips", "limit", "prefill_rows", "prefill_batch", "prefill_concurrency")
	if err != nil {
		return nil, err
	}
	noTimeout := p
	noTimeout.Timeout = 0 // sockets live for the whole storm; handshakes are bounded per dial
	x := &stormExec{
		p: p, env: env, clients: clients(noTimeout, 64), sessions: newSessions(env, "ws"),
		metrics: p.URL + "/metrics",
	}
	for _, c := range x.clients {
		x.eps = append(x.eps, loadtest.NewHTTP(env.Metrics, c).Endpoint(loadtest.Tags{"endpoint": "download"}))
	}
	m := env.Metrics
	x.catchup = m.Trend("storm_catchup", loadtest.Time, nil)
	x.caughtUp = m.Rate("storm_caught_up", nil)
	x.allCaughtUp = m.Gauge("storm_all_caught_up", loadtest.Time, nil)
	x.readsPerUser = m.Gauge("storm_db_reads_per_user", loadtest.Default, nil)
	x.readsPerDev = m.Gauge("storm_db_reads_per_device", loadtest.Default, nil)
	x.fromMemory = m.Gauge("storm_memory_answers", loadtest.Default, nil)
	return x, nil
}

// Setup raises RLIMIT_NOFILE and fills the users' streams (not measured).
func (x *stormExec) Setup(ctx context.Context) error {
	fds := 2 * x.env.MaxVUs // a socket and a download connection per device
	if x.p.ServerInProcess {
		fds *= 2 // and the server's ends of both
	}
	noteNoFile(x.env, fds)
	return prefill(ctx, x.p, x.clients[0])
}

// Iterate connects the device, catches it up and holds its connection until
// the VU drains; after a failure it backs off and the next iteration
// reconnects from the cursor. The storm's first iteration reads the server's
// download counters before any device dials, so that only the storm's own
// downloads count, whatever else the run did before.
func (x *stormExec) Iterate(ctx context.Context, vu *loadtest.VU) error {
	x.begin.Do(func() { x.before, x.beforeErr = readDownloadCounts(ctx, x.clients[0], x.metrics) })
	if x.beforeErr != nil {
		<-vu.Draining().Done() // one failure is enough; no retry loop
		return x.beforeErr
	}
	d, ok := vu.Data.(*stormDevice)
	if !ok {
		d = &stormDevice{syncDevice: syncDevice{cred: newCredential(x.p, x.p.userOf(vu.IDInScenario-1), x.p.device(vu.ID, ""))}}
		vu.Data = d
	}
	n := (vu.IDInScenario - 1) % len(x.clients)
	if d.dialed.IsZero() {
		d.dialed = x.dialing(time.Now())
	}
	conn, err := dialHinted(ctx, x.p, x.clients[n], x.sessions, &d.syncDevice)
	if err == nil {
		defer x.sessions.closed()
		err = readHints(ctx, vu, conn, func(seq int64) error {
			if seq > d.cursor {
				if err := d.downloadWindow(ctx, x.eps[n], x.p); err != nil {
					return err
				}
			}
			if !d.caught && d.cursor >= seq {
				d.caught = true
				x.caughtUpAt(d, time.Now())
			}
			return nil
		})
	}
	if vu.Draining().Err() != nil {
		x.caughtUp.Add(d.caught) // the VU's last iteration
	}
	if err != nil {
		if ip := sourceIP(n, x.p.SourceIPs); ip != nil {
			err = fmt.Errorf("from %s: %w", ip, err)
		}
		waitReconnect(vu)
	}
	return err
}

// dialing records a device's first dial at t and returns t.
func (x *stormExec) dialing(t time.Time) time.Time {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.start.IsZero() || t.Before(x.start) {
		x.start = t
	}
	return t
}

// caughtUpAt records device d caught up at t; the last device sets
// storm_all_caught_up.
func (x *stormExec) caughtUpAt(d *stormDevice, t time.Time) {
	x.catchup.AddDuration(t.Sub(d.dialed))
	x.mu.Lock()
	defer x.mu.Unlock()
	x.caught++
	if x.caught == x.env.MaxVUs {
		x.allCaughtUp.Set(float64(t.Sub(x.start)) / float64(time.Millisecond))
	}
}

// Teardown reads the server's download counters again and sets the reads per
// user and per device, with a note.
func (x *stormExec) Teardown(ctx context.Context) error {
	defer closeIdle(x.clients...)
	x.mu.Lock()
	started, caught := !x.start.IsZero(), x.caught
	x.mu.Unlock()
	if x.beforeErr != nil || !started {
		return nil // no storm to report on
	}
	after, err := readDownloadCounts(ctx, x.clients[0], x.metrics)
	if err != nil {
		return err
	}
	devices := x.env.MaxVUs
	users := stormUsers(x.p, devices)
	db := after.database - x.before.database
	x.readsPerUser.Set(db / float64(users))
	x.readsPerDev.Set(db / float64(devices))
	x.fromMemory.Set(after.memory - x.before.memory)
	x.env.Note("%d devices of %d users, %d caught up; %.0f downloads answered by the database (%.2f per user, %.2f per device) and %.0f from memory, by the server's pulsesync_downloads_total",
		devices, users, caught, db, db/float64(users), db/float64(devices), after.memory-x.before.memory)
	return nil
}

// stormUsers is how many users devices devices cover.
func stormUsers(p Params, devices int) int {
	return min(p.Users, (devices+p.DevicesPerUser-1)/p.DevicesPerUser)
}

// downloadCounts are pulsesync_downloads_total's series: plain downloads by
// where their answer came from.
type downloadCounts struct{ memory, database float64 }

// readDownloadCounts reads the download counters from the server's /metrics.
func readDownloadCounts(ctx context.Context, client *http.Client, url string) (downloadCounts, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return downloadCounts{}, fmt.Errorf("build metrics request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return downloadCounts{}, fmt.Errorf("read server metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return downloadCounts{}, fmt.Errorf("read server metrics: GET %s: status %d", url, resp.StatusCode)
	}
	return parseDownloadCounts(resp.Body)
}

// parseDownloadCounts sums pulsesync_downloads_total's samples by their
// answered_from label in Prometheus' text format; other labels (a node's,
// added by a scraper) are summed over.
func parseDownloadCounts(r io.Reader) (downloadCounts, error) {
	const name = "pulsesync_downloads_total{"
	var c downloadCounts
	found := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), name)
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			return c, fmt.Errorf("parse server metrics: %q", sc.Text())
		}
		fields := strings.Fields(value) // the value, perhaps a timestamp
		if len(fields) == 0 {
			return c, fmt.Errorf("parse server metrics: no value in %q", sc.Text())
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return c, fmt.Errorf("parse server metrics: %q: %w", sc.Text(), err)
		}
		switch {
		case strings.Contains(labels, `answered_from="memory"`):
			c.memory += v
		case strings.Contains(labels, `answered_from="database"`):
			c.database += v
		}
		found = true
	}
	if err := sc.Err(); err != nil {
		return c, fmt.Errorf("read server metrics: %w", err)
	}
	if !found {
		return c, fmt.Errorf("server metrics have no pulsesync_downloads_total")
	}
	return c, nil
}
