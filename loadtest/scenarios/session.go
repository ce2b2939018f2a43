package scenarios

import (
	"sync"
	"time"

	"github.com/pulsesync/pulsesync/loadtest"
)

// sessions records the life of long-lived connections of one kind ("ws" or
// "sse"): <kind>_connecting (handshake duration), <kind>_sessions (opened),
// <kind>_connect_failed (rate) and <kind>_open (gauge of open connections,
// shared by every scenario of the run).
type sessions struct {
	connecting *loadtest.Trend
	opened     *loadtest.Counter
	failed     *loadtest.Rate
	open       *openCount
}

// openCount is the run-wide number of open connections of one kind.
type openCount struct {
	mu    sync.Mutex
	n     int
	gauge *loadtest.Gauge
}

func (o *openCount) add(d int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.n += d
	o.gauge.Set(float64(o.n))
}

func (o *openCount) load() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n
}

func newSessions(env *loadtest.Env, kind string) *sessions {
	m := env.Metrics
	return &sessions{
		connecting: m.Trend(kind+"_connecting", loadtest.Time, nil),
		opened:     m.Counter(kind+"_sessions", loadtest.Default, nil),
		failed:     m.Rate(kind+"_connect_failed", nil),
		open: env.Shared("scenarios.open."+kind, func() any {
			return &openCount{gauge: m.Gauge(kind+"_open", loadtest.Default, nil)}
		}).(*openCount),
	}
}

// connected records a handshake that started at start and ended now; err
// tells whether it failed. On success the caller must call closed later.
func (s *sessions) connected(start time.Time, err error) {
	s.failed.Add(err != nil)
	if err != nil {
		return
	}
	s.connecting.AddDuration(time.Since(start))
	s.opened.Add(1)
	s.open.add(1)
}

// closed records that a connection opened through connected has ended.
func (s *sessions) closed() { s.open.add(-1) }
