package deploytest

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/pulsesync/pulsesync/internal/pushtest"
)

// dashboard is the part of a Grafana dashboard the test checks.
type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// TestDashboard_PanelsQueryExportedMetrics reads deploy/grafana/pulsesync.json as Grafana
// would import it: panels with unique ids, each querying the dashboard's Prometheus data
// source variable, and checks every selector of every query (and of the node variable)
// against a node that has served an upload, a notification and a reconciliation round.
func TestDashboard_PanelsQueryExportedMetrics(t *testing.T) {
	data, err := os.ReadFile(deployFile(t, "grafana/pulsesync.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("deploy/grafana/pulsesync.json: %v", err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard uid %q, title %q: want both", d.UID, d.Title)
	}
	var exprs []string
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if q, ok := v.Query.(map[string]any); ok {
			if s, ok := q["query"].(string); ok {
				exprs = append(exprs, s)
			}
		}
	}
	if !vars["datasource"] || !vars["instance"] {
		t.Errorf("dashboard variables %v, want datasource and instance", vars)
	}
	ids := map[int]bool{}
	queries := 0
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Title == "" || len(p.Targets) == 0 || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %d %q: %d queries on data source %q, want a title and queries on ${datasource}", p.ID, p.Title, len(p.Targets), p.Datasource.UID)
		}
		for _, q := range p.Targets {
			exprs = append(exprs, q.Expr)
			queries++
		}
	}
	if queries == 0 {
		t.Fatal("dashboard has no queries")
	}

	srv := metricsNode(t)
	notifyOnce(t, srv)
	// A round with a connected user is timed; rounds run every reconcileEvery.
	pushtest.WaitFor(t, func() bool { return len(scrape(t, srv)["pulsesync_cluster_reconcile_duration_seconds_bucket"]) > 0 })
	if missing := scrape(t, srv).missing(exprs); len(missing) > 0 {
		t.Errorf("no series for these selectors of deploy/grafana/pulsesync.json: %q", missing)
	}
}
