package e2e

import (
	"testing"

	"github.com/pulsesync/pulsesync/internal/servertest"
)

// TestLoadScenariosV1_RunAgainstTheServer keeps the load generator's v1 scenarios honest: short
// runs against a real server serving the v1 demo tables must pass every check (echoes, paging
// arithmetic, the bundle hashes recomputed from the rows read back) and move exactly the rows
// they say. Small pages (three bundles per pull, 70 rows per snapshot chunk) and bundles of 1,100
// rows (six chunks, two pages of committed rows) exercise every paging path.
func TestLoadScenariosV1_RunAgainstTheServer(t *testing.T) {
	srv := servertest.New(t, servertest.Options{V1: true})
	// Both scenarios take their users from one pool, and both setups commit 250 rows to each of
	// the two users, so every user holds 500 rows when the measured phase starts.
	runLoad(t, srv, `{
	  "scenarios": {
	    "pull":     {"executor": "per-vu-iterations", "exec": "v1_pull", "vus": 2, "iterations": 2,
	                 "params": {"users": 2, "user_pool": "v1", "prefill_rows": 500, "prefill_batch": 50, "limit": 3}},
	    "snapshot": {"executor": "per-vu-iterations", "exec": "v1_snapshot", "vus": 2, "iterations": 2,
	                 "params": {"users": 2, "user_pool": "v1", "prefill_rows": 500, "prefill_batch": 100, "limit": 70}}
	  },
	  "thresholds": {"checks": ["rate==1"], "http_req_failed": ["rate==0"],
	                 "rows_pulled": ["count==2000"], "rows_snapshotted": ["count==2000"]}
	}`)
	runLoad(t, srv, `{
	  "scenarios": {
	    "push":      {"executor": "per-vu-iterations", "exec": "v1_push", "vus": 2, "iterations": 2, "params": {"users": 2, "rows": 1100}},
	    "watchers":  {"executor": "constant-vus", "exec": "v1_watch", "vus": 4, "duration": "5s", "params": {"users": 2, "devices_per_user": 2}},
	    "uploaders": {"executor": "per-vu-iterations", "exec": "v1_watch_uploader", "startTime": "2s", "vus": 2, "iterations": 5,
	                  "params": {"users": 2, "rows": 1}}
	  },
	  "thresholds": {"checks": ["rate==1"], "http_req_failed": ["rate==0"], "rows_committed": ["count==4410"],
	                 "bundle_commit_duration": ["max>=0"], "watch_latency": ["max>=0"], "watch_missed": ["count<1"]}
	}`)
}
