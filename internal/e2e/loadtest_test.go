package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/pulsesync/pulsesync/internal/servertest"
	"github.com/pulsesync/pulsesync/loadtest"
	"github.com/pulsesync/pulsesync/loadtest/scenarios"
)

// TestLoadScenarios_RunAgainstTheServer keeps the load generator's protocol scenarios honest:
// short runs of each against a real server must pass their checks and move real data. The
// scenarios that expect a quiet stream (poll) run before those that write. A trend threshold
// such as push_latency max>=0 holds only if the trend recorded something: without samples the
// load generator fails it.
func TestLoadScenarios_RunAgainstTheServer(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	runLoad(t, srv, `{
	  "scenarios": {
	    "download": {"executor": "per-vu-iterations", "exec": "download", "vus": 2, "iterations": 2, "params": {"users": 2, "prefill_rows": 500, "limit": 100}},
	    "poll":     {"executor": "per-vu-iterations", "exec": "poll", "vus": 2, "iterations": 20, "params": {"users": 2, "prefill_rows": 20}}
	  },
	  "thresholds": {"checks": ["rate==1"], "http_req_failed": ["rate==0"], "changes_downloaded": ["count>0"]}
	}`)
	runLoad(t, srv, `{
	  "scenarios": {
	    "upload":    {"executor": "per-vu-iterations", "exec": "upload", "vus": 2, "iterations": 5, "params": {"batch": 10, "users": 2}},
	    "listeners": {"executor": "constant-vus", "exec": "push_listener", "vus": 4, "duration": "3s", "params": {"users": 2, "devices_per_user": 2}},
	    "uploaders": {"executor": "per-vu-iterations", "exec": "push_uploader", "startTime": "1s", "vus": 2, "iterations": 5, "params": {"users": 2}}
	  },
	  "thresholds": {"checks": ["rate==1"], "http_req_failed": ["rate==0"], "changes_uploaded": ["count==110"],
	                 "push_latency": ["max>=0"], "push_missed": ["count<1"]}
	}`)
}

// runLoad runs a k6-shaped options document against srv and fails the test on a failed threshold.
func runLoad(t *testing.T, srv *servertest.Server, options string) {
	t.Helper()
	opts, err := loadtest.ParseOptions([]byte(options))
	if err != nil {
		t.Fatal(err)
	}
	summary, err := loadtest.Run(context.Background(), opts, scenarios.Registry(scenarios.Params{URL: srv.URL}))
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if !summary.Passed() {
		var text strings.Builder
		_ = summary.WriteText(&text)
		t.Fatalf("thresholds failed:\n%s", text.String())
	}
}
