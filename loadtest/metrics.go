package loadtest

import (
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MetricType is one of k6's four metric types.
type MetricType int

// The metric types.
const (
	CounterType MetricType = iota
	GaugeType
	RateType
	TrendType
)

// String returns the k6 name of the type.
func (t MetricType) String() string {
	return [...]string{"counter", "gauge", "rate", "trend"}[t]
}

func parseMetricType(s string) (MetricType, error) {
	for t := CounterType; t <= TrendType; t++ {
		if t.String() == s {
			return t, nil
		}
	}
	return 0, fmt.Errorf("unknown metric type %q", s)
}

// Contains says what a metric's values measure, which sets how they are shown.
type Contains int

// The value kinds.
const (
	Default Contains = iota // plain numbers
	Time                    // milliseconds
	Data                    // bytes
)

// String returns "default", "time" or "data".
func (c Contains) String() string {
	return [...]string{"default", "time", "data"}[c]
}

func parseContains(s string) (Contains, error) {
	for c := Default; c <= Data; c++ {
		if c.String() == s {
			return c, nil
		}
	}
	return 0, fmt.Errorf("unknown metric contents %q", s)
}

// Tags sub-key a metric: samples recorded through a handle with tags count in
// the metric itself and in the series for exactly those tags, which thresholds
// and the summary address as name{key:value,...}.
//
// Tags come from two places. The handle's own tags (endpoint:upload,
// check:…) are shown in the summary as series of their own. A view's tags
// (Metrics.WithTags: the scenario's name and its configured tags) and the
// tags the HTTP client adds per request (status, method, name,
// expected_response) are carried by every sample too, so thresholds can
// select them, as in k6, but the summary does not list a series for each.
type Tags map[string]string

// merge returns t with o's tags on top; nil when both are empty.
func (t Tags) merge(o Tags) Tags {
	if len(t)+len(o) == 0 {
		return nil
	}
	out := make(Tags, len(t)+len(o))
	maps.Copy(out, t)
	maps.Copy(out, o)
	return out
}

// key is the canonical "k:v,k:v" form, sorted by key; "" for no tags.
func (t Tags) key() string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte(':')
		b.WriteString(t[k])
	}
	return b.String()
}

// contains reports whether every tag of sel is in t with the same value.
func (t Tags) contains(sel Tags) bool {
	for k, v := range sel {
		if tv, ok := t[k]; !ok || tv != v {
			return false
		}
	}
	return true
}

var metricNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]{0,127}$`)

// Metrics holds every metric of one test run, or is a view of them whose
// handles add tags of their own (WithTags). Handles returned by its methods
// are safe for concurrent use and record without locks; resolve them once
// (when an exec is built) rather than per sample.
type Metrics struct {
	set  *metricSet
	tags Tags // added to every handle's samples, not shown in the summary
}

// metricSet is the run's metrics by name, shared by every view.
type metricSet struct {
	mu     sync.Mutex
	byName map[string]*metric
	out    *sampleOut // every sample as a JSON line; nil: none
}

// NewMetrics returns an empty metric set.
func NewMetrics() *Metrics {
	return &Metrics{set: &metricSet{byName: map[string]*metric{}}}
}

// WithTags returns a view of the same metrics whose handles tag every sample
// with tags as well (on top of the view's own). The engine gives each
// scenario such a view with its name and configured tags, as k6 tags every
// sample of a scenario.
func (m *Metrics) WithTags(tags Tags) *Metrics {
	return &Metrics{set: m.set, tags: m.tags.merge(tags)}
}

type metric struct {
	name     string
	typ      MetricType
	contains Contains
	mu       sync.Mutex
	series   map[string]*series // by all tags' key and the shown tags' key; "" is the whole metric
}

// series is the sink of one metric and tag set. Only the fields of its
// metric's type are used.
type series struct {
	tags  Tags         // every tag its samples carry
	shown string       // key of the handle's own tags: the summary's series
	n     atomic.Int64 // samples recorded

	sum atomicFloat // counter total, trend sum

	last    atomicFloat  // gauge value
	lastSet atomic.Int64 // gauge: unix ns of the last Set, to merge series
	min     atomicFloat  // gauge, trend
	max     atomicFloat  // gauge, trend

	trues atomic.Int64 // rate

	hist histogram // trend
}

func newSeries(tags Tags, shown string) *series {
	s := &series{tags: tags, shown: shown}
	s.min.store(math.Inf(1))
	s.max.store(math.Inf(-1))
	return s
}

// sinks are where one handle's samples go: series and the sample output.
type sinks struct {
	s   []*series
	out *pointWriter // nil without a sample output
}

// handleSinks returns the sinks a handle with tags records into: the metric
// itself, the tagged series when there are tags, and the sample output. It
// panics when name is invalid or already registered with another type or
// contents; that is a programming error in an exec, found at the first run.
func (m *Metrics) handleSinks(name string, typ MetricType, c Contains, tags Tags) sinks {
	mt := m.metric(name, typ, c)
	if mt == nil {
		panic(fmt.Sprintf("loadtest: invalid metric name %q", name))
	}
	if mt.typ != typ || mt.contains != c {
		panic(fmt.Sprintf("loadtest: metric %q is a %s of %s values, not a %s of %s values",
			name, mt.typ, mt.contains, typ, c))
	}
	all := m.tags.merge(tags)
	out := sinks{s: []*series{mt.get(nil, "")}, out: m.set.out.points(name, all)}
	if len(all) > 0 {
		out.s = append(out.s, mt.get(all, tags.key()))
	}
	return out
}

// metric returns the named metric, creating it with typ and c if new; nil if
// the name is invalid.
func (m *Metrics) metric(name string, typ MetricType, c Contains) *metric {
	if !metricNameRE.MatchString(name) {
		return nil
	}
	m.set.mu.Lock()
	defer m.set.mu.Unlock()
	mt := m.set.byName[name]
	if mt == nil {
		mt = &metric{name: name, typ: typ, contains: c, series: map[string]*series{}}
		m.set.byName[name] = mt
		if m.set.out != nil {
			m.set.out.metric(name, typ, c)
		}
	}
	return mt
}

func (m *Metrics) lookup(name string) *metric {
	m.set.mu.Lock()
	defer m.set.mu.Unlock()
	return m.set.byName[name]
}

// all returns every metric.
func (m *Metrics) all() []*metric {
	m.set.mu.Lock()
	defer m.set.mu.Unlock()
	return slices.Collect(maps.Values(m.set.byName))
}

// get returns the series for tags, of which those keyed shown are the
// handle's own; nil tags is the whole metric.
func (mt *metric) get(tags Tags, shown string) *series {
	key := ""
	if len(tags) > 0 {
		key = tags.key() + "|" + shown
	}
	mt.mu.Lock()
	defer mt.mu.Unlock()
	s := mt.series[key]
	if s == nil {
		s = newSeries(maps.Clone(tags), shown)
		mt.series[key] = s
	}
	return s
}

// Counter handles add to a cumulative total; its rate is total per second of
// the measured phase.
type Counter struct{ sinks }

// Counter returns a handle on the named counter, tagged with tags.
func (m *Metrics) Counter(name string, c Contains, tags Tags) *Counter {
	return &Counter{m.handleSinks(name, CounterType, c, tags)}
}

// Add adds v to the counter.
func (h *Counter) Add(v float64) {
	for _, s := range h.s {
		s.n.Add(1)
		s.sum.add(v)
	}
	h.out.point(v)
}

// Gauge handles keep the last value set and the extremes.
type Gauge struct{ sinks }

// Gauge returns a handle on the named gauge, tagged with tags.
func (m *Metrics) Gauge(name string, c Contains, tags Tags) *Gauge {
	return &Gauge{m.handleSinks(name, GaugeType, c, tags)}
}

// Set records v as the gauge's current value.
func (h *Gauge) Set(v float64) {
	now := time.Now().UnixNano()
	for _, s := range h.s {
		s.n.Add(1)
		s.last.store(v)
		s.lastSet.Store(now)
		s.min.min(v)
		s.max.max(v)
	}
	h.out.point(v)
}

// Rate handles count the fraction of true samples.
type Rate struct{ sinks }

// Rate returns a handle on the named rate, tagged with tags.
func (m *Metrics) Rate(name string, tags Tags) *Rate {
	return &Rate{m.handleSinks(name, RateType, Default, tags)}
}

// Check returns a handle on k6's checks rate for the named check.
func (m *Metrics) Check(name string) *Rate {
	return m.Rate("checks", Tags{"check": name})
}

// Add records one sample.
func (h *Rate) Add(ok bool) {
	for _, s := range h.s {
		s.n.Add(1)
		if ok {
			s.trues.Add(1)
		}
	}
	if ok {
		h.out.point(1)
	} else {
		h.out.point(0)
	}
}

// Trend handles record a distribution; the summary shows avg, min, med,
// p(90), p(95), p(99) and max. Values are taken as non-negative: a negative
// sample counts as 0 in percentiles (min and avg keep it).
type Trend struct{ sinks }

// Trend returns a handle on the named trend, tagged with tags.
func (m *Metrics) Trend(name string, c Contains, tags Tags) *Trend {
	return &Trend{m.handleSinks(name, TrendType, c, tags)}
}

// Add records v (milliseconds for a Time trend).
func (h *Trend) Add(v float64) {
	for _, s := range h.s {
		s.n.Add(1)
		s.sum.add(v)
		s.min.min(v)
		s.max.max(v)
		s.hist.record(v)
	}
	h.out.point(v)
}

// AddDuration records d in milliseconds, the unit of Time trends.
func (h *Trend) AddDuration(d time.Duration) {
	h.Add(float64(d) / float64(time.Millisecond))
}

// atomicFloat is a float64 updated with compare-and-swap.
type atomicFloat struct{ bits atomic.Uint64 }

func (a *atomicFloat) load() float64   { return math.Float64frombits(a.bits.Load()) }
func (a *atomicFloat) store(v float64) { a.bits.Store(math.Float64bits(v)) }

func (a *atomicFloat) add(v float64) {
	for {
		old := a.bits.Load()
		if a.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

func (a *atomicFloat) min(v float64) {
	for {
		old := a.bits.Load()
		if math.Float64frombits(old) <= v || a.bits.CompareAndSwap(old, math.Float64bits(v)) {
			return
		}
	}
}

func (a *atomicFloat) max(v float64) {
	for {
		old := a.bits.Load()
		if math.Float64frombits(old) >= v || a.bits.CompareAndSwap(old, math.Float64bits(v)) {
			return
		}
	}
}
