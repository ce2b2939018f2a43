package httpapi

import (
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsesync/pulsesync/pg"
)

// Values of pulsesync_downloads_total's answered_from label.
const (
	answeredFromMemory   = "memory"
	answeredFromDatabase = "database"
)

// metrics are the server's Prometheus instruments. Route labels are chi route patterns (or
// "unmatched"), never raw paths, so their number is bounded by the router.
type metrics struct {
	requests      *prometheus.CounterVec   // route, code
	duration      *prometheus.HistogramVec // route
	uploadChanges *prometheus.CounterVec   // status
	downloads     *prometheus.CounterVec   // answered_from: memory, database
}

// newMetrics creates the instruments and registers them, with a collector of store's pool
// statistics, in registry.
func newMetrics(registry prometheus.Registerer, store *pg.Store) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulsesync_http_requests_total",
			Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pulsesync_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		uploadChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulsesync_upload_changes_total",
			Help: "Uploaded changes, by outcome (applied, conflict, invalid).",
		}, []string{"status"}),
		downloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulsesync_downloads_total",
			Help: "Plain downloads by where the answer came from: memory (an empty poll the node could answer) or database.",
		}, []string{"answered_from"}),
	}
	for _, status := range []pg.Status{pg.StatusApplied, pg.StatusConflict, pg.StatusInvalid} {
		m.uploadChanges.WithLabelValues(string(status)) // export zeros before the first upload
	}
	for _, from := range []string{answeredFromMemory, answeredFromDatabase} {
		m.downloads.WithLabelValues(from)
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.uploadChanges, m.downloads, newPoolCollector(store), newBuildInfo()} {
		if err := registry.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

// exportServerErrors creates the 500 series of every route of r at zero, so that an alert on
// the rate of server errors sees the first one: a series that appears with the value 1 has no
// rate until it changes again. Other codes appear when they first happen.
func (m *metrics) exportServerErrors(r chi.Routes) error {
	err := chi.Walk(r, func(_, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		m.requests.WithLabelValues(route, strconv.Itoa(http.StatusInternalServerError))
		return nil
	})
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	return nil
}

// newBuildInfo returns pulsesync_build_info: 1, labelled with the module version, VCS revision
// and Go version of the running binary, so that a dashboard shows which build each node runs
// and a rollout that stalls halfway is visible.
func newBuildInfo() prometheus.Collector {
	version, revision, goVersion := "unknown", "unknown", runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "pulsesync_build_info",
		Help:        "Always 1; its labels name the running build (module version, VCS revision, Go version).",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "go_version": goVersion},
	})
	g.Set(1)
	return g
}

// observeRequest records one answered request; held requests are counted but not timed.
func (m *metrics) observeRequest(route string, status int, d time.Duration, held bool) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	if !held {
		m.duration.WithLabelValues(route).Observe(d.Seconds())
	}
}

// observePoll counts one plain download by where its answer came from.
func (m *metrics) observePoll(fromMemory bool) {
	from := answeredFromDatabase
	if fromMemory {
		from = answeredFromMemory
	}
	m.downloads.WithLabelValues(from).Inc()
}

// observeUpload counts the outcomes of one processed upload.
func (m *metrics) observeUpload(outcomes []pg.Outcome) {
	counts := make(map[pg.Status]int, 3)
	for _, o := range outcomes {
		counts[o.Status]++
	}
	for status, n := range counts {
		m.uploadChanges.WithLabelValues(string(status)).Add(float64(n))
	}
}

// poolCollector reports the store's connection pool statistics at scrape time, so the values
// are never stale and nothing polls the pool between scrapes.
type poolCollector struct {
	store *pg.Store

	conns, maxConns                                     *prometheus.Desc
	acquires, emptyAcquires, canceledAcquires, waitTime *prometheus.Desc
}

func newPoolCollector(store *pg.Store) *poolCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("pulsesync_pg_pool_"+name, help, labels, nil)
	}
	return &poolCollector{
		store:            store,
		conns:            d("connections", "Connections of the database pool, by state (acquired, idle, constructing).", "state"),
		maxConns:         d("max_connections", "The database pool's maximum size."),
		acquires:         d("acquires_total", "Connections acquired from the database pool."),
		emptyAcquires:    d("empty_acquires_total", "Acquires that had to wait for a connection or create one."),
		canceledAcquires: d("canceled_acquires_total", "Acquires canceled by their context."),
		waitTime:         d("acquire_wait_seconds_total", "Time spent waiting for a pool connection."),
	}
}

// Describe implements prometheus.Collector.
func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.conns, c.maxConns, c.acquires, c.emptyAcquires, c.canceledAcquires, c.waitTime} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.store.Stat()
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(st.AcquiredConns()), "acquired")
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(st.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(st.ConstructingConns()), "constructing")
	ch <- prometheus.MustNewConstMetric(c.maxConns, prometheus.GaugeValue, float64(st.MaxConns()))
	ch <- prometheus.MustNewConstMetric(c.acquires, prometheus.CounterValue, float64(st.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(c.emptyAcquires, prometheus.CounterValue, float64(st.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(c.canceledAcquires, prometheus.CounterValue, float64(st.CanceledAcquireCount()))
	ch <- prometheus.MustNewConstMetric(c.waitTime, prometheus.CounterValue, st.AcquireDuration().Seconds())
}
