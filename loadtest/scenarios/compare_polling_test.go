package scenarios

import (
	"encoding/json"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/loadtest"
)

func TestPerMinutePer1k_ScalesToOneMinuteAndAThousandDevices(t *testing.T) {
	for _, c := range []struct {
		amount  float64
		elapsed time.Duration
		devices int
		want    float64
	}{
		{amount: 6, elapsed: 30 * time.Second, devices: 500, want: 24},       // 12 per minute, for 500
		{amount: 90_000, elapsed: time.Minute, devices: 10_000, want: 9_000}, // a tenth of 10,000
		{amount: 1, elapsed: 2 * time.Minute, devices: 1000, want: 0.5},
		{amount: 5, elapsed: 0, devices: 1000, want: 0}, // nothing measured
		{amount: 5, elapsed: time.Minute, devices: 0, want: 0},
	} {
		if got := perMinutePer1k(c.amount, c.elapsed, c.devices); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("perMinutePer1k(%v, %v, %d) = %v, want %v", c.amount, c.elapsed, c.devices, got, c.want)
		}
	}
}

func TestParseProcStat_ReadsFieldsAfterAnAwkwardName(t *testing.T) {
	// The command name may hold spaces and parentheses; fields count from its last ')'.
	line := "4242 (postgres: a) b (c)) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 75 30 12 20 0 1 0 99 1000 10\n"
	st, err := parseProcStat(line)
	if err != nil {
		t.Fatal(err)
	}
	want := procStat{ppid: 17, utime: 250, stime: 75, cutime: 30, cstime: 12}
	if st != want {
		t.Fatalf("parsed %+v, want %+v", st, want)
	}
	if st.own() != 3.25 || st.reaped() != 0.42 {
		t.Errorf("own %v s, reaped %v s; want 3.25 and 0.42 at %d ticks a second", st.own(), st.reaped(), userHZ)
	}
	for _, bad := range []string{"no name here", "1 (x) S 2 3", "1 (x) S ppid 3 4 5 6 7 8 9 10 11 12 13 14 15"} {
		if _, err := parseProcStat(bad); err == nil {
			t.Errorf("parseProcStat(%q) accepted a malformed line", bad)
		}
	}
}

func TestReadProcStat_ThisProcessAndItsTree(t *testing.T) {
	st, err := readProcStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != os.Getppid() {
		t.Errorf("ppid %d, want %d", st.ppid, os.Getppid())
	}
	// Burn a little CPU so that the tree's time is measurably above zero.
	deadline := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	tree, err := treeCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if tree < st.own() || tree <= 0 {
		t.Errorf("tree CPU %v s, below the %v s the process had on its own before", tree, st.own())
	}
	if _, err := readProcStat(-1); err == nil {
		t.Error("readProcStat(-1) found a process")
	}
}

func TestSummaryNotes_ComparePollingTable(t *testing.T) {
	gauge := func(v float64) loadtest.MetricSummary {
		return loadtest.MetricSummary{Type: loadtest.GaugeType, Values: map[string]float64{"value": v, "min": v, "max": v}}
	}
	trend := func(med, p99 float64) loadtest.MetricSummary {
		return loadtest.MetricSummary{Type: loadtest.TrendType, Contains: loadtest.Time, Values: map[string]float64{"med": med, "p(99)": p99}}
	}
	s := loadtest.Summary{Metrics: map[string]loadtest.MetricSummary{
		"compare_devices{mode:push}":                   gauge(1000),
		"compare_devices{mode:poll}":                   gauge(1000),
		"server_cpu_s_per_min_1k_devices{mode:poll}":   gauge(12.5),
		"server_cpu_s_per_min_1k_devices{mode:push}":   gauge(1.25),
		"db_xact_per_min_1k_devices{mode:poll}":        gauge(60000),
		"db_xact_per_min_1k_devices{mode:push}":        gauge(2400),
		"fresh_poll_latency_after_response":            trend(500, 990),
		"fresh_push_latency_after_response":            trend(1.5, 9.25),
		"fresh_push_missed":                            {Type: loadtest.CounterType, Values: map[string]float64{"count": 2}},
		"server_cpu_s_per_min_1k_devices":              gauge(1.25), // the untagged whole metric is no mode
		"compare_devices{mode:poll,scenario:whatever}": gauge(7),    // a selector's series is no mode either
	}}
	got := SummaryNotes(s)
	want := []string{
		"compare-polling (why push)                    poll   push",
		"devices                                       1000   1000",
		"server CPU-s per min per 1k devices         12.500  1.250",
		"PostgreSQL CPU-s per min per 1k devices          –      –",
		"DB transactions per min per 1k devices       60000   2400",
		"freshness p50 (ms, answer → device has it)   500.0    1.5",
		"freshness p99 (ms)                           990.0    9.2",
		"changes not downloaded within push_timeout       0      2",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if notes := SummaryNotes(loadtest.Summary{Metrics: map[string]loadtest.MetricSummary{"http_reqs": {}}}); notes != nil {
		t.Errorf("a run without compare_meter got notes %q", notes)
	}
}

// TestComparePolling_ShippedConfigIsTheLayout keeps compare-polling.json and
// --scenario compare-polling the same test: the file is the layout's defaults.
func TestComparePolling_ShippedConfigIsTheLayout(t *testing.T) {
	data, err := os.ReadFile("compare-polling.json")
	if err != nil {
		t.Fatal(err)
	}
	opts, err := loadtest.ParseOptions(data)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ComparePolling{Devices: 1000, DevicesPerUser: 2, Rate: 20, Window: 30 * time.Second,
		WarmUp: 10 * time.Second, PushTimeout: 5 * time.Second}.Scenarios()
	if err != nil {
		t.Fatal(err)
	}
	if len(opts.Scenarios) != len(want) {
		t.Fatalf("file has scenarios %v, layout %v", slices.Sorted(mapsKeys(opts.Scenarios)), slices.Sorted(mapsKeys(want)))
	}
	for name, w := range want {
		g, ok := opts.Scenarios[name]
		if !ok {
			t.Errorf("file lacks scenario %s", name)
			continue
		}
		var gp, wp Params
		if err := json.Unmarshal(g.Params, &gp); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(w.Params, &wp); err != nil {
			t.Fatal(err)
		}
		if gp != wp {
			t.Errorf("%s params: file %+v, layout %+v", name, gp, wp)
		}
		g.Params, w.Params = nil, nil
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: file %+v, layout %+v", name, g, w)
		}
	}
	if _, err := (ComparePolling{Devices: 10}).Scenarios(); err == nil {
		t.Error("a layout without rate and window was accepted")
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
