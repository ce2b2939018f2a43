package httpapi

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// v1Metrics are the v1 protocol's own counters; its requests are counted and timed by the
// server's request metrics like every other route.
type v1Metrics struct {
	bundles   prometheus.Counter
	rows      prometheus.Counter
	conflicts prometheus.Counter
}

func newV1Metrics(registry prometheus.Registerer) (*v1Metrics, error) {
	m := &v1Metrics{
		bundles: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulsesync_v1_bundles_committed_total",
			Help: "v1 bundles committed through this node.",
		}),
		rows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulsesync_v1_rows_committed_total",
			Help: "Rows of the v1 bundles committed through this node (the bundles' real effects).",
		}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulsesync_v1_push_conflicts_total",
			Help: "v1 commits refused with push_conflict.",
		}),
	}
	for _, c := range []prometheus.Collector{m.bundles, m.rows, m.conflicts} {
		if err := registry.Register(c); err != nil {
			return nil, fmt.Errorf("register v1 metrics: %w", err)
		}
	}
	return m, nil
}
