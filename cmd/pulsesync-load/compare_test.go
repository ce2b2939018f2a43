package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/loadtest"
	"github.com/pulsesync/pulsesync/loadtest/scenarios"
)

func TestCompareScenario_ShapeFromFlags(t *testing.T) {
	var c cli
	set := map[string]bool{}
	fs := newFlags(&c, io.Discard)
	if err := fs.Parse([]string{"--scenario", "compare-polling", "--vus", "40", "--duration", "12s", "--rate", "3", "--devices-per-user", "4"}); err != nil {
		t.Fatal(err)
	}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	opts, err := c.options(set)
	if err != nil {
		t.Fatal(err)
	}
	want, err := scenarios.ComparePolling{Devices: 40, DevicesPerUser: 4, Rate: 3, Window: 12 * time.Second,
		WarmUp: compareWarmUp, PushTimeout: comparePushTimeout}.Scenarios()
	if err != nil {
		t.Fatal(err)
	}
	if len(opts.Scenarios) != len(want) {
		t.Fatalf("got scenarios %v, want the %d of the layout", opts.Scenarios, len(want))
	}
	for name, w := range want {
		g := opts.Scenarios[name]
		if g.Exec != w.Exec || g.VUs != w.VUs || g.Rate != w.Rate || g.StartTime != w.StartTime || g.Duration != w.Duration || !bytes.Equal(g.Params, w.Params) {
			t.Errorf("%s: got %+v, want %+v", name, g, w)
		}
	}
	if err := loadtest.Validate(opts, scenarios.Registry(scenarios.Params{})); err != nil {
		t.Errorf("the preset does not validate: %v", err)
	}
}

func TestCompareScenario_RefusesShapeFlagsAndASecondDatabase(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--scenario", "compare-polling", "--executor", "constant-vus"}, "--executor does not apply"},
		{[]string{"--scenario", "compare-polling", "--max-vus", "5"}, "--max-vus does not apply"},
		{[]string{"--embedded", "--scenario", "storm", "--database-url", "postgres://x"}, "drop --url, --secret and --database-url"},
	} {
		var stderr bytes.Buffer
		if code := run(context.Background(), tc.args, io.Discard, &stderr, os.Getenv); code != exitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr.String(), exitUsage, tc.want)
		}
	}
}

// compare-polling's two phases and then a storm, in one run against an embedded deployment:
// the headline table has both modes with every figure measured (the embedded target passes its
// database), and the storm's devices each read their user's stream once, from the database.
func TestEmbedded_ComparePollingThenStorm(t *testing.T) {
	const stormDevices, perUser = 20, 5
	sc, err := scenarios.ComparePolling{Devices: 16, DevicesPerUser: 2, Rate: 10, Window: time.Second,
		WarmUp: time.Second, PushTimeout: 2 * time.Second}.Scenarios()
	if err != nil {
		t.Fatal(err)
	}
	var end loadtest.Duration // the phases' last scenario's end
	for _, s := range sc {
		end = max(end, s.StartTime+s.Duration+*s.GracefulStop)
	}
	sc["storm"] = loadtest.Scenario{Executor: loadtest.ConstantVUs, Exec: "storm", VUs: stormDevices, StartTime: end,
		Duration: loadtest.Duration(2 * time.Second),
		Params: json.RawMessage(fmt.Sprintf(`{"users": %d, "devices_per_user": %d, "prefill_rows": 40, "source_ips": 2}`,
			stormDevices/perUser, perUser))}
	config, err := json.Marshal(map[string]any{"scenarios": sc, "thresholds": map[string][]string{
		"storm_caught_up": {"rate>0.999"}, "ws_connect_failed": {"rate<0.01"}, "http_req_failed": {"rate<0.01"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg, out := filepath.Join(dir, "c.json"), filepath.Join(dir, "s.json")
	if err := os.WriteFile(cfg, config, 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runProcess(t, "--embedded", "--config", cfg, "--log-level", "warn", "--summary-export", out)
	if code != exitOK {
		t.Fatalf("exit code = %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var sum loadtest.Summary
	if err := json.Unmarshal(data, &sum); err != nil {
		t.Fatal(err)
	}
	table := map[string]string{}
	for _, n := range sum.Notes {
		if label, _, ok := strings.Cut(n, "  "); ok {
			table[label] = n
		}
	}
	for label, want := range map[string]string{
		"compare-polling (why push)": "poll", "devices": "16", "server CPU-s per min per 1k devices": ".",
		"PostgreSQL CPU-s per min per 1k devices": ".", "DB transactions per min per 1k devices": "",
		"freshness p50 (ms, answer → device has it)": ".",
	} {
		row, ok := table[label]
		if !ok || strings.Contains(row, "–") || !strings.Contains(row, want) || len(strings.Fields(strings.TrimPrefix(row, label))) != 2 {
			t.Errorf("table row %q = %q, want both modes measured\nnotes:\n%s", label, row, strings.Join(sum.Notes, "\n"))
		}
	}
	if reads := sum.Metrics["storm_db_reads_per_user"].Values["value"]; reads != perUser {
		t.Errorf("storm_db_reads_per_user = %v, want %d: one page for each of a user's devices", reads, perUser)
	}
	if caught := sum.Metrics["storm_all_caught_up"].Values["value"]; caught <= 0 {
		t.Errorf("storm_all_caught_up = %v ms, want the time the storm took", caught)
	}
}
