package scenarios

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pulsesync/pulsesync/loadtest"
)

// SummaryNotes returns the lines the scenarios derive from a finished run's
// metrics, for the summary's notes: the compare-polling table, each phase
// (mode) a column, when the run measured phases with compare_meter; nil
// otherwise. The binary appends them to the summary before printing and
// exporting it.
func SummaryNotes(s loadtest.Summary) []string {
	modes := compareModes(s)
	if len(modes) == 0 {
		return nil
	}
	rows := []struct {
		label  string
		value  func(mode string) (float64, bool)
		format string
	}{
		{"devices", func(m string) (float64, bool) { return gaugeOf(s, meterDevices, m) }, "%.0f"},
		{"server CPU-s per min per 1k devices", func(m string) (float64, bool) { return gaugeOf(s, meterServerCPU, m) }, "%.3f"},
		{"PostgreSQL CPU-s per min per 1k devices", func(m string) (float64, bool) { return gaugeOf(s, meterPGCPU, m) }, "%.3f"},
		{"DB transactions per min per 1k devices", func(m string) (float64, bool) { return gaugeOf(s, meterXact, m) }, "%.0f"},
		{"freshness p50 (ms, answer → device has it)", func(m string) (float64, bool) { return valueOf(s, freshness(m), "med") }, "%.1f"},
		{"freshness p99 (ms)", func(m string) (float64, bool) { return valueOf(s, freshness(m), "p(99)") }, "%.1f"},
		{"changes not downloaded within push_timeout", func(m string) (float64, bool) { return counterOf(s, "fresh_"+m+"_missed") }, "%.0f"},
	}
	cells := make([][]string, 0, len(rows)+1)
	cells = append(cells, append([]string{"compare-polling (why push)"}, modes...))
	for _, r := range rows {
		line := []string{r.label}
		for _, m := range modes {
			v, ok := r.value(m)
			if !ok {
				line = append(line, "–")
				continue
			}
			line = append(line, fmt.Sprintf(r.format, v))
		}
		cells = append(cells, line)
	}
	return alignColumns(cells)
}

// compareModes are the modes of the compare_devices gauges, in name order
// ("poll" before "push").
func compareModes(s loadtest.Summary) []string {
	var modes []string
	prefix := meterDevices + "{mode:"
	for key := range s.Metrics {
		if rest, ok := strings.CutPrefix(key, prefix); ok && strings.HasSuffix(rest, "}") && !strings.Contains(rest, ",") {
			modes = append(modes, strings.TrimSuffix(rest, "}"))
		}
	}
	slices.Sort(modes)
	return modes
}

// freshness is the trend of a mode's time from an upload's answer to a
// device having downloaded the change.
func freshness(mode string) string { return "fresh_" + mode + "_latency_after_response" }

func gaugeOf(s loadtest.Summary, name, mode string) (float64, bool) {
	return valueOf(s, name+"{mode:"+mode+"}", "value")
}

func counterOf(s loadtest.Summary, name string) (float64, bool) {
	if _, ok := s.Metrics[name]; !ok {
		return 0, true // a counter never added to stayed at zero
	}
	return valueOf(s, name, "count")
}

func valueOf(s loadtest.Summary, series, value string) (float64, bool) {
	m, ok := s.Metrics[series]
	if !ok {
		return 0, false
	}
	v, ok := m.Values[value]
	return v, ok
}

// alignColumns renders rows of cells as lines, the first column left-aligned
// and the others right-aligned, each as wide as its widest cell.
func alignColumns(rows [][]string) []string {
	var widths []int
	for _, r := range rows {
		for i, c := range r {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	out := make([]string, len(rows))
	for k, r := range rows {
		var b strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", widths[i]-len([]rune(c)))
			if i == 0 {
				b.WriteString(c + pad)
				continue
			}
			b.WriteString("  " + pad + c)
		}
		out[k] = b.String()
	}
	return out
}
