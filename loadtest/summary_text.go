package loadtest

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// WriteText writes the summary in k6's end-of-test layout: checks, then one
// line per metric with dotted leaders (tagged series indented below their
// metric, a ✓ or ✗ in front of series that carry thresholds), then every
// threshold with the value it tested, then notes.
func (s Summary) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	s.writeHeader(bw)
	s.writeChecks(bw)
	s.writeMetrics(bw)
	s.writeThresholds(bw)
	if len(s.Notes) > 0 {
		fmt.Fprintln(bw, "\n  notes")
		for _, n := range s.Notes {
			fmt.Fprintf(bw, "     %s\n", n)
		}
	}
	dur := time.Duration(s.State.TestRunDurationMs * float64(time.Millisecond)).Round(time.Millisecond)
	fmt.Fprintf(bw, "\n  measured phase %s", dur)
	if s.State.Aborted != "" {
		fmt.Fprintf(bw, ", aborted by threshold %s", s.State.Aborted)
	}
	fmt.Fprintln(bw)
	return bw.Flush()
}

// writeHeader says what ran against what, as k6's header does before its summary.
func (s Summary) writeHeader(w io.Writer) {
	if s.State.Target != "" {
		fmt.Fprintf(w, "\n  target: %s\n", s.State.Target)
	}
	if len(s.State.Scenarios) == 0 {
		return
	}
	fmt.Fprintf(w, "\n  scenarios: %d\n", len(s.State.Scenarios))
	for _, name := range slices.Sorted(maps.Keys(s.State.Scenarios)) {
		fmt.Fprintf(w, "     * %s: %s\n", name, s.State.Scenarios[name])
	}
}

func (s Summary) sortedKeys() []string {
	keys := make([]string, 0, len(s.Metrics))
	for k := range s.Metrics {
		keys = append(keys, k)
	}
	// Sorting "name" before "name{...}" keeps tagged series under their metric.
	slices.SortFunc(keys, func(a, b string) int {
		an, at := splitSeries(a)
		bn, bt := splitSeries(b)
		if c := strings.Compare(an, bn); c != 0 {
			return c
		}
		return strings.Compare(at, bt)
	})
	return keys
}

func (s Summary) writeChecks(w io.Writer) {
	var lines []string
	for _, k := range s.sortedKeys() {
		name, tags := splitSeries(k)
		check, ok := strings.CutPrefix(tags, "check:")
		if name != "checks" || !ok || strings.Contains(check, ",") {
			continue
		}
		v := s.Metrics[k].Values
		if v["fails"] == 0 {
			lines = append(lines, fmt.Sprintf("     ✓ %s", check))
			continue
		}
		lines = append(lines, fmt.Sprintf("     ✗ %s\n      ↳  %s — ✓ %d / ✗ %d",
			check, percent(v["rate"]), int64(v["passes"]), int64(v["fails"])))
	}
	if len(lines) > 0 {
		fmt.Fprintf(w, "\n  checks\n%s\n", strings.Join(lines, "\n"))
	}
}

func (s Summary) writeMetrics(w io.Writer) {
	type row struct {
		mark, label, value string
	}
	tagged := map[string]int{}
	for k := range s.Metrics {
		if name, tags := splitSeries(k); tags != "" {
			tagged[name]++
		}
	}
	var rows []row
	for _, k := range s.sortedKeys() {
		name, tags := splitSeries(k)
		m := s.Metrics[k]
		if name == "checks" && tags != "" || tags != "" && tagged[name] == 1 && m.Thresholds == nil &&
			maps.Equal(m.Values, s.Metrics[name].Values) {
			// Checks have their own block; a lone tag set that holds every
			// sample (scenario:x in a one-scenario test) repeats its metric.
			continue
		}
		label := name
		if tags != "" {
			label = "  { " + strings.ReplaceAll(tags, ",", ", ") + " }"
		}
		mark := " "
		for _, r := range m.Thresholds {
			mark = "✓"
			if !r.OK {
				mark = "✗"
				break
			}
		}
		rows = append(rows, row{mark, label, m.format(s.trendStats)})
	}
	width := 30
	for _, r := range rows {
		width = max(width, len([]rune(r.label))+3)
	}
	fmt.Fprintln(w)
	for _, r := range rows {
		dots := strings.Repeat(".", width-len([]rune(r.label)))
		fmt.Fprintf(w, "   %s %s%s: %s\n", r.mark, r.label, dots, r.value)
	}
}

func (s Summary) writeThresholds(w io.Writer) {
	var lines []string
	failed := 0
	for _, k := range s.sortedKeys() {
		m := s.Metrics[k]
		exprs := make([]string, 0, len(m.Thresholds))
		for e := range m.Thresholds {
			exprs = append(exprs, e)
		}
		slices.Sort(exprs)
		for _, e := range exprs {
			r := m.Thresholds[e]
			mark, got := "✓", ""
			if !r.OK {
				mark = "✗"
				failed++
			}
			if r.NoSamples {
				got = "no samples"
			} else if x, err := parseThreshold(e); err == nil {
				got = x.label() + "=" + m.formatStat(x.agg, r.Value)
			}
			lines = append(lines, fmt.Sprintf("     %s %s %s (%s)", mark, k, e, got))
		}
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(w, "\n  thresholds: %d passed, %d failed\n%s\n", len(lines)-failed, failed, strings.Join(lines, "\n"))
}

// format renders a series' values the way k6 shows its type; trends show
// trendStats in order (nil: the defaults), without count.
func (m MetricSummary) format(trendStats []string) string {
	v := m.Values
	switch m.Type {
	case CounterType:
		return fmt.Sprintf("%-10s %s/s", m.formatValue(v["count"]), m.formatRate(v["rate"]))
	case GaugeType:
		return fmt.Sprintf("%-10s min=%s max=%s", m.formatValue(v["value"]), m.formatValue(v["min"]), m.formatValue(v["max"]))
	case RateType:
		return fmt.Sprintf("%-7s ✓ %-8d ✗ %d", percent(v["rate"]), int64(v["passes"]), int64(v["fails"]))
	default:
		var parts []string
		for _, st := range summaryStats(TrendType, trendStats) {
			if _, ok := v[st]; ok && st != "count" {
				parts = append(parts, fmt.Sprintf("%s=%-9s", st, m.formatValue(v[st])))
			}
		}
		return strings.TrimSpace(strings.Join(parts, " "))
	}
}

// formatStat renders the value an aggregation produced for a threshold line.
func (m MetricSummary) formatStat(agg string, v float64) string {
	switch {
	case m.Type == RateType && agg == "rate":
		return percent(v)
	case m.Type == CounterType && agg == "rate":
		return m.formatRate(v) + "/s"
	}
	return m.formatValue(v)
}

func (m MetricSummary) formatValue(v float64) string {
	switch m.Contains {
	case Time:
		return formatMillis(v)
	case Data:
		return formatBytes(v)
	}
	return formatNumber(v)
}

func (m MetricSummary) formatRate(v float64) string {
	if m.Contains == Data {
		return formatBytes(v)
	}
	return fmt.Sprintf("%.2f", v)
}

func percent(f float64) string { return fmt.Sprintf("%.2f%%", f*100) }

func formatNumber(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%d", int64(v))
	}
	if math.Abs(v) >= 1000 {
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.4g", v)
}

// formatMillis renders milliseconds with a unit chosen for the magnitude.
func formatMillis(ms float64) string {
	abs := math.Abs(ms)
	switch {
	case ms == 0:
		return "0s"
	case abs < 0.001:
		return fmt.Sprintf("%.0fns", ms*1e6)
	case abs < 1:
		return fmt.Sprintf("%.2fµs", ms*1e3)
	case abs < 1000:
		return fmt.Sprintf("%.2fms", ms)
	case abs < 60000:
		return fmt.Sprintf("%.2fs", ms/1000)
	}
	return time.Duration(ms * float64(time.Millisecond)).Round(100 * time.Millisecond).String()
}

// formatBytes renders bytes with decimal units, as k6 does.
func formatBytes(b float64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	i := 0
	for math.Abs(b) >= 1000 && i < len(units)-1 {
		b /= 1000
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f %s", b, units[i])
	}
	return fmt.Sprintf("%.1f %s", b, units[i])
}
