package push

import "github.com/prometheus/client_golang/prometheus"

// metrics are the push service's Prometheus metrics.
type metrics struct {
	connections *prometheus.GaugeVec     // live sessions by transport
	sent        *prometheus.CounterVec   // notifications written, by transport
	coalesced   *prometheus.CounterVec   // wakes folded into a notification already pending, by transport
	refused     *prometheus.CounterVec   // sessions refused by a cap, by cap
	stalled     *prometheus.CounterVec   // sessions ended because their peer stopped reading, by transport
	lag         *prometheus.HistogramVec // commit announced → notification written, by transport
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pulsesync_push_connections",
			Help: "Live push sessions by transport (ws, sse, longpoll)."}, []string{"transport"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pulsesync_push_notifications_sent_total",
			Help: "Change notifications written to devices, by transport."}, []string{"transport"}),
		coalesced: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pulsesync_push_notifications_coalesced_total",
			Help: "Advances that found a notification of the same connection already pending and joined it, by transport."}, []string{"transport"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pulsesync_push_connections_refused_total",
			Help: "Sessions refused because a connection cap was full, by cap (user, node)."}, []string{"cap"}),
		stalled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pulsesync_push_stalled_total",
			Help: "Sessions ended because their peer took no bytes for the write timeout while a notification waited, by transport."}, []string{"transport"}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "pulsesync_push_lag_seconds",
			Help:    "Time from a commit's announcement to the notification written to a device.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}, []string{"transport"}),
	}
	// Export zeros before the first refusal or stall, so that rate() sees it.
	for _, limit := range []string{"user", "node"} {
		m.refused.WithLabelValues(limit)
	}
	for _, transport := range []string{"ws", "sse"} {
		m.stalled.WithLabelValues(transport)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.connections, m.sent, m.coalesced, m.refused, m.stalled, m.lag} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
