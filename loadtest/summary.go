package loadtest

import (
	"encoding/json"
	"io"
	"slices"
	"strings"
	"time"
)

// Summary is the end-of-test report: every metric series' aggregates and the
// thresholds' outcomes. Its JSON form (WriteJSON) follows the shape of the
// data k6 hands to handleSummary.
type Summary struct {
	State State `json:"state"`
	// Metrics is keyed by series: "name" for the whole metric, "name{k:v}"
	// for a tagged series or a threshold's selector.
	Metrics map[string]MetricSummary `json:"metrics"`
	// Notes are lines the scenarios and the engine add (failed iterations,
	// resource limits, derived figures).
	Notes []string `json:"notes,omitempty"`

	trendStats []string // the order in which WriteText shows trend values; nil: the defaults
}

// State describes the run as a whole.
type State struct {
	// TestRunDurationMs is the measured phase: from the start of the first
	// scenario to the end of the last, without setup and teardown.
	TestRunDurationMs float64 `json:"testRunDurationMs"`
	// Aborted names the abortOnFail threshold that stopped the test early.
	Aborted string `json:"aborted,omitempty"`
	// Target is Options.Target: what the test ran against.
	Target string `json:"target,omitempty"`
	// Scenarios describes each scenario's executor and shape, by name.
	Scenarios map[string]string `json:"scenarios,omitempty"`
}

// MetricSummary holds one series' aggregates.
type MetricSummary struct {
	Type     MetricType `json:"type"`
	Contains Contains   `json:"contains"`
	// Values by aggregation: counter count, rate (per second); gauge value,
	// min, max; rate rate (fraction), passes, fails; trend avg, min, med,
	// p(90), p(95), p(99), max, count. Time values are milliseconds.
	Values map[string]float64 `json:"values"`
	// Thresholds on this series by expression.
	Thresholds map[string]ThresholdResult `json:"thresholds,omitempty"`
}

// ThresholdResult is one threshold's outcome.
type ThresholdResult struct {
	OK bool `json:"ok"`
	// Value is the aggregation the expression tested.
	Value float64 `json:"value"`
	// NoSamples: the series recorded nothing, which fails the threshold.
	NoSamples bool `json:"noSamples,omitempty"`
}

// Passed reports whether every threshold held.
func (s Summary) Passed() bool {
	for _, m := range s.Metrics {
		for _, r := range m.Thresholds {
			if !r.OK {
				return false
			}
		}
	}
	return true
}

// WriteJSON writes the summary as indented JSON, the --summary-export format.
func (s Summary) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// MarshalText writes the type's name ("counter", "trend", ...).
func (t MetricType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText reads a type's name.
func (t *MetricType) UnmarshalText(b []byte) error {
	v, err := parseMetricType(string(b))
	*t = v
	return err
}

// MarshalText writes "default", "time" or "data".
func (c Contains) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText reads "default", "time" or "data".
func (c *Contains) UnmarshalText(b []byte) error {
	v, err := parseContains(string(b))
	*c = v
	return err
}

// summary aggregates every series with samples, plus every threshold's selector.
func (p *plan) summary(elapsed time.Duration, aborted string) Summary {
	s := Summary{
		State: State{TestRunDurationMs: float64(elapsed) / float64(time.Millisecond), Aborted: aborted,
			Target: p.opts.Target, Scenarios: map[string]string{}},
		Metrics:    map[string]MetricSummary{},
		trendStats: p.opts.SummaryTrendStats,
	}
	for _, sr := range p.scenarios {
		s.State.Scenarios[sr.name] = sr.cfg.describe()
	}
	for _, mt := range p.metrics.all() {
		mt.mu.Lock()
		shown := map[string]bool{}
		whole := false
		for key, se := range mt.series {
			if se.n.Load() > 0 {
				whole = whole || key == ""
				if key != "" && se.shown != "" {
					shown[se.shown] = true
				}
			}
		}
		mt.mu.Unlock()
		if whole {
			s.Metrics[mt.name] = seriesSummary(mt.aggregate(nil), elapsed, p.opts.SummaryTrendStats)
		}
		for key := range shown {
			s.Metrics[mt.name+"{"+key+"}"] = seriesSummary(mt.aggregateShown(key), elapsed, p.opts.SummaryTrendStats)
		}
	}
	for _, th := range p.thresholds {
		ms, ok := s.Metrics[th.selector]
		if !ok {
			ms = seriesSummary(th.metric.aggregate(th.tags), elapsed, p.opts.SummaryTrendStats)
		}
		if ms.Thresholds == nil {
			ms.Thresholds = map[string]ThresholdResult{}
		}
		ms.Thresholds[th.Expr] = th.evaluate(elapsed)
		s.Metrics[th.selector] = ms
	}
	p.shared.mu.Lock()
	s.Notes = slices.Clone(p.shared.notes)
	p.shared.mu.Unlock()
	return s
}

func seriesSummary(a aggregate, elapsed time.Duration, trendStats []string) MetricSummary {
	return MetricSummary{Type: a.typ, Contains: a.contains, Values: a.values(elapsed, trendStats)}
}

// splitSeries splits a Summary.Metrics key into the metric name and the tag part.
func splitSeries(key string) (name, tags string) {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		return key[:i], key[i+1 : len(key)-1]
	}
	return key, ""
}
