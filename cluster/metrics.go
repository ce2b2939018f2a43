package cluster

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Paths an advance reaches a node by, the values of the "path" label.
const (
	pathNATS      = "nats"
	pathNotify    = "notify"
	pathReconcile = "reconcile"
)

// Transports between nodes, the values of the "transport" label. NOTIFY sends, LISTEN receives.
const (
	transportNATS   = "nats"
	transportNotify = "notify"
	transportListen = "listen"
)

// metrics are a node's Prometheus collectors. They exist whether or not they are registered, so
// the code that counts never checks.
type metrics struct {
	announced       prometheus.Counter
	published       *prometheus.CounterVec // by transport
	publishFailures *prometheus.CounterVec // by transport
	received        map[string]prometheus.Counter
	receivedVec     *prometheus.CounterVec // by path
	malformed       *prometheus.CounterVec // by path
	notifyFlushes   prometheus.Counter
	notifications   prometheus.Counter
	reconnects      *prometheus.CounterVec // by transport
	slowConsumer    prometheus.Counter
	repairs         prometheus.Counter
	reconcileErrors prometheus.Counter
	reconcileTime   prometheus.Histogram
	healthy         prometheus.Gauge
	natsShards      prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		announced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulsesync_cluster_advances_announced_total",
			Help: "Advances of commits made on this node, announced after commit.",
		}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulsesync_cluster_advances_published_total",
			Help: "Advances sent to the other nodes, after NOTIFY coalescing.",
		}, []string{"transport"}),
		publishFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulsesync_cluster_publish_failures_total",
			Help: "Advances that could not be sent to the other nodes (broker or database error, too large); reconciliation repairs them.",
		}, []string{"transport"}),
		receivedVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulsesync_cluster_advances_received_total",
			Help: "Advances handed to this node's hub and watermarks, by the path they came by.",
		}, []string{"path"}),
		malformed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulsesync_cluster_malformed_messages_total",
			Help: "Messages dropped because they could not be decoded.",
		}, []string{"path"}),
		notifyFlushes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulsesync_cluster_notify_flushes_total",
			Help: "Statements the NOTIFY coalescer sent, each carrying one or more notifications.",
		}),
		notifications: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulsesync_cluster_notifications_total",
			Help: "pg_notify payloads sent, each under 8000 bytes.",
		}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulsesync_cluster_reconnects_total",
			Help: "Times the advance stream came back after being lost.",
		}, []string{"transport"}),
		slowConsumer: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulsesync_cluster_nats_slow_consumer_total",
			Help: "Times NATS dropped messages because this node did not keep up.",
		}),
		repairs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulsesync_cluster_reconcile_repairs_total",
			Help: "Users for whom reconciliation found a seq above every advance this node had delivered since the previous round (lost, or still in flight).",
		}),
		reconcileErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulsesync_cluster_reconcile_errors_total",
			Help: "Reconciliation rounds that failed to read the database.",
		}),
		reconcileTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pulsesync_cluster_reconcile_duration_seconds",
			Help:    "Time one reconciliation round took, query and delivery; rounds without connected users or that failed are not observed.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8),
		}),
		healthy: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pulsesync_cluster_stream_healthy",
			Help: "1 while this node's advance stream (NATS or LISTEN) is connected, else 0.",
		}),
		natsShards: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pulsesync_cluster_nats_shards",
			Help: "NATS subject shards this node is subscribed to.",
		}),
	}
	m.received = map[string]prometheus.Counter{}
	for _, p := range []string{pathNATS, pathNotify, pathReconcile} {
		m.received[p] = m.receivedVec.WithLabelValues(p)
	}
	return m
}

// exportZeros creates the series of the node's transports at zero, so that an alert on the
// rate of publish failures or reconnects sees the first one.
func (m *metrics) exportZeros(nats bool) {
	send, receive := transportNotify, transportListen
	if nats {
		send, receive = transportNATS, transportNATS
	}
	m.published.WithLabelValues(send)
	m.publishFailures.WithLabelValues(send)
	m.reconnects.WithLabelValues(receive)
}

// register adds every collector to reg.
func (m *metrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.announced, m.published, m.publishFailures, m.receivedVec,
		m.malformed, m.notifyFlushes, m.notifications, m.reconnects, m.slowConsumer, m.repairs,
		m.reconcileErrors, m.reconcileTime, m.healthy, m.natsShards} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register cluster metrics: %w", err)
		}
	}
	return nil
}
