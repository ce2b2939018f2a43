package loadtest

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// aggregate is the merged state of the series a selector picks.
type aggregate struct {
	typ      MetricType
	contains Contains
	n        int64
	sum      float64
	last     float64
	lastSet  int64
	min, max float64
	trues    int64
	hist     histSnapshot
}

// aggregate merges the series that sel picks: the whole metric for no tags,
// otherwise every tagged series whose tags include sel.
func (mt *metric) aggregate(sel Tags) aggregate {
	if len(sel) == 0 {
		return mt.aggregateWhere(func(key string, _ *series) bool { return key == "" })
	}
	return mt.aggregateWhere(func(key string, s *series) bool { return key != "" && s.tags.contains(sel) })
}

// aggregateShown merges the series whose handles had exactly the tags keyed
// shown: one series of the summary.
func (mt *metric) aggregateShown(shown string) aggregate {
	return mt.aggregateWhere(func(key string, s *series) bool { return key != "" && s.shown == shown })
}

func (mt *metric) aggregateWhere(pick func(string, *series) bool) aggregate {
	a := aggregate{typ: mt.typ, contains: mt.contains, min: math.Inf(1), max: math.Inf(-1)}
	mt.mu.Lock()
	defer mt.mu.Unlock()
	for key, s := range mt.series {
		if pick(key, s) {
			a.fold(s)
		}
	}
	return a
}

func (a *aggregate) fold(s *series) {
	a.n += s.n.Load()
	a.sum += s.sum.load()
	a.min = math.Min(a.min, s.min.load())
	a.max = math.Max(a.max, s.max.load())
	a.trues += s.trues.Load()
	if t := s.lastSet.Load(); t > a.lastSet {
		a.lastSet, a.last = t, s.last.load()
	}
	if a.typ == TrendType {
		a.hist.merge(s.hist.snapshot())
	}
}

// stat returns one aggregation of a: "count", "rate", "value", "avg", "min",
// "max", "med", "passes", "fails" or, with agg "p", the p-th percentile.
// Aggregations over no samples are 0, never NaN.
func (a aggregate) stat(agg string, p float64, elapsed time.Duration) float64 {
	if a.n == 0 {
		return 0
	}
	switch agg {
	case "count":
		if a.typ == CounterType {
			return a.sum
		}
		return float64(a.n)
	case "rate":
		if a.typ == RateType {
			return float64(a.trues) / float64(a.n)
		}
		if elapsed <= 0 {
			return 0
		}
		return a.sum / elapsed.Seconds()
	case "value":
		return a.last
	case "avg":
		return a.sum / float64(a.n)
	case "min":
		return a.min
	case "max":
		return a.max
	case "med":
		return a.percentile(50)
	case "p":
		return a.percentile(p)
	case "passes":
		return float64(a.trues)
	case "fails":
		return float64(a.n - a.trues)
	}
	return 0
}

func (a aggregate) percentile(p float64) float64 {
	switch {
	case p <= 0:
		return a.min
	case p >= 100:
		return a.max
	}
	v := a.hist.quantile(p/100, a.n)
	return math.Min(math.Max(v, a.min), a.max)
}

// defaultTrendStats are the trend values the summary shows unless
// Options.SummaryTrendStats names others; k6's defaults with p(99) and count.
var defaultTrendStats = []string{"avg", "min", "med", "p(90)", "p(95)", "p(99)", "max", "count"}

// checkTrendStats refuses a summaryTrendStats entry that is no trend aggregation.
func checkTrendStats(stats []string) error {
	for _, st := range stats {
		agg, _, err := parseAggregation(st)
		if err != nil || agg != "count" && !slices.Contains(aggregations(TrendType), agg) {
			return fmt.Errorf("summaryTrendStats: %q is not one of avg, min, med, max, count, p(N)", st)
		}
	}
	return nil
}

// summaryStats lists the values the summary shows for a type, in order;
// trends show trendStats (nil: the defaults).
func summaryStats(t MetricType, trendStats []string) []string {
	switch t {
	case CounterType:
		return []string{"count", "rate"}
	case GaugeType:
		return []string{"value", "min", "max"}
	case RateType:
		return []string{"rate", "passes", "fails"}
	default:
		if trendStats != nil {
			return trendStats
		}
		return defaultTrendStats
	}
}

// values returns the summary values of a by display name, trends' being
// trendStats (nil: the defaults).
func (a aggregate) values(elapsed time.Duration, trendStats []string) map[string]float64 {
	out := map[string]float64{}
	for _, name := range summaryStats(a.typ, trendStats) {
		agg, p, _ := parseAggregation(name)
		out[name] = a.stat(agg, p, elapsed)
	}
	return out
}

// Values returns the summary values (see MetricSummary.Values) of the series
// that selector picks, "name" or "name{k:v,...}", with counter rates taken
// over elapsed. It is how a Go test reads a metric while or after it is
// recorded.
func (m *Metrics) Values(selector string, elapsed time.Duration) (map[string]float64, error) {
	name, tags, err := parseSelector(selector)
	if err != nil {
		return nil, err
	}
	mt := m.lookup(name)
	if mt == nil {
		return nil, fmt.Errorf("no metric named %q", name)
	}
	return mt.aggregate(tags).values(elapsed, nil), nil
}

// parseSelector splits "name{k:v,k2:v2}" into the name and tags.
func parseSelector(sel string) (string, Tags, error) {
	sel = strings.TrimSpace(sel)
	open := strings.IndexByte(sel, '{')
	if open < 0 {
		if !metricNameRE.MatchString(sel) {
			return "", nil, fmt.Errorf("invalid metric name %q", sel)
		}
		return sel, nil, nil
	}
	name := strings.TrimSpace(sel[:open])
	if !metricNameRE.MatchString(name) {
		return "", nil, fmt.Errorf("invalid metric name %q", name)
	}
	if !strings.HasSuffix(sel, "}") {
		return "", nil, fmt.Errorf("selector %q: missing closing brace", sel)
	}
	tags := Tags{}
	for _, kv := range strings.Split(sel[open+1:len(sel)-1], ",") {
		k, v, ok := strings.Cut(kv, ":")
		k = strings.TrimSpace(k)
		v = strings.Trim(strings.TrimSpace(v), `"'`)
		if !ok || k == "" || v == "" {
			return "", nil, fmt.Errorf("selector %q: tag %q is not key:value", sel, strings.TrimSpace(kv))
		}
		tags[k] = v
	}
	return name, tags, nil
}

// selectorName is the display name of a series: name or name{k:v,...}.
func selectorName(name string, tags Tags) string {
	if len(tags) == 0 {
		return name
	}
	return name + "{" + tags.key() + "}"
}
