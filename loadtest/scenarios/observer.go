package scenarios

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/pulsesync/pulsesync/loadtest"
)

// rssObserver samples a server process's resident memory every second.
type rssObserver struct {
	pid     int
	rss     *loadtest.Gauge
	perConn *loadtest.Gauge

	mu       sync.Mutex
	base     uint64 // before any connection
	last     uint64
	peakOpen int
	atPeak   uint64 // RSS at the last sample with peakOpen connections open
}

func newRSSObserver(m *loadtest.Metrics, pid int) *rssObserver {
	return &rssObserver{
		pid:     pid,
		rss:     m.Gauge("server_rss_bytes", loadtest.Data, nil),
		perConn: m.Gauge("server_rss_per_conn_bytes", loadtest.Data, nil),
	}
}

// baseline samples the RSS before connections are opened.
func (o *rssObserver) baseline() error {
	v, err := readRSS(o.pid)
	if err != nil {
		return err
	}
	o.mu.Lock()
	o.base, o.last = v, v
	o.mu.Unlock()
	o.rss.Set(float64(v))
	return nil
}

// run samples until ctx is done. With n connections open, the growth over
// the baseline divided by n is recorded as server_rss_per_conn_bytes.
func (o *rssObserver) run(ctx context.Context, open *openCount) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		v, err := readRSS(o.pid)
		if err != nil {
			continue // the server may be restarting; the gauges keep their last value
		}
		n := open.load()
		o.rss.Set(float64(v))
		o.mu.Lock()
		o.last = v
		if n > 0 && n >= o.peakOpen {
			o.peakOpen, o.atPeak = n, v
			o.perConn.Set(float64(int64(v)-int64(o.base)) / float64(n))
		}
		o.mu.Unlock()
	}
}

// report notes the memory per connection at the most connections seen.
func (o *rssObserver) report(env *loadtest.Env) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.peakOpen == 0 {
		env.Note("server pid %d: no sample with open connections", o.pid)
		return
	}
	env.Note("server pid %d RSS %.1f MB with %d connections open, baseline %.1f MB: %.1f kB per connection",
		o.pid, float64(o.atPeak)/1e6, o.peakOpen, float64(o.base)/1e6,
		float64(int64(o.atPeak)-int64(o.base))/float64(o.peakOpen)/1e3)
}

// readRSS returns VmRSS of pid in bytes, from /proc/<pid>/status (Linux).
func readRSS(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read server memory: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest) // "123456 kB"
		if len(f) != 2 || string(f[1]) != "kB" {
			break
		}
		kb, err := strconv.ParseUint(string(f[0]), 10, 64)
		if err != nil {
			break
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("read server memory: no VmRSS line in /proc/%d/status", pid)
}
