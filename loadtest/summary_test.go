package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// httpTest runs 2 VUs × 5 iterations against a real local server; each
// iteration makes one request that succeeds and one that fails, and records
// a check on each.
func httpTest(t *testing.T, thresholds map[string][]Threshold) Summary {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			http.Error(w, "nope", http.StatusInternalServerError) // "nope\n"
			return
		}
		w.Write([]byte("ok")) //nolint:errcheck // the client sees a short body
	}))
	defer srv.Close()

	factory := func(env *Env, _ json.RawMessage) (Exec, error) {
		h := NewHTTP(env.Metrics, srv.Client())
		ok, fail := h.Endpoint(Tags{"endpoint": "ok"}), h.Endpoint(Tags{"endpoint": "fail"})
		okCheck, failCheck := env.Metrics.Check("ok is 200"), env.Metrics.Check("fail is 200")
		return ExecFunc(func(ctx context.Context, vu *VU) error {
			for _, c := range []struct {
				ep    *Endpoint
				path  string
				check *Rate
			}{{ok, "/ok", okCheck}, {fail, "/fail", failCheck}} {
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+c.path, strings.NewReader("abc"))
				if err != nil {
					return err
				}
				resp, err := c.ep.Do(req)
				if err != nil {
					return err
				}
				c.check.Add(resp.Status == http.StatusOK)
			}
			return nil
		}), nil
	}
	return run(t, Options{
		Scenarios:  map[string]Scenario{"web": {Executor: PerVUIterations, VUs: 2, Iterations: 5, Exec: "web"}},
		Thresholds: thresholds,
	}, Registry{"web": factory})
}

func TestHTTP_RecordsBuiltInMetricsByTag(t *testing.T) {
	sum := httpTest(t, nil)
	checks := []struct {
		series, stat string
		want         float64
	}{
		{"http_reqs", "count", 20},
		{"http_reqs{endpoint:ok}", "count", 10},
		{"http_req_failed", "rate", 0.5},
		{"http_req_failed{endpoint:fail}", "rate", 1},
		{"http_req_failed{endpoint:ok}", "rate", 0},
		{"http_req_duration{endpoint:ok}", "count", 10},
		{"data_sent", "count", 60},     // 20 × "abc"
		{"data_received", "count", 70}, // 10 × "ok" + 10 × "nope\n"
		{"checks", "rate", 0.5},
		{"checks{check:ok is 200}", "passes", 10},
		{"checks{check:fail is 200}", "fails", 10},
		{"iterations", "count", 10},
	}
	for _, c := range checks {
		if got := value(t, sum, c.series, c.stat); got != c.want {
			t.Errorf("%s %s = %v, want %v", c.series, c.stat, got, c.want)
		}
	}
}

func TestSummary_JSONExportRoundTrips(t *testing.T) {
	sum := httpTest(t, map[string][]Threshold{
		"http_req_duration{endpoint:ok}": {{Expr: "p(99)<60000"}},
		"http_req_failed":                {{Expr: "rate<0.01"}},
	})
	var buf bytes.Buffer
	if err := sum.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Summary
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatalf("decode export: %v\n%s", err, buf.String())
	}
	if !reflect.DeepEqual(back, sum) {
		t.Errorf("export did not round-trip:\nwrote %+v\nread  %+v", sum, back)
	}
	var raw struct {
		Metrics map[string]struct {
			Type       string                    `json:"type"`
			Contains   string                    `json:"contains"`
			Values     map[string]float64        `json:"values"`
			Thresholds map[string]map[string]any `json:"thresholds"`
		} `json:"metrics"`
	}
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	d := raw.Metrics["http_req_duration{endpoint:ok}"]
	if d.Type != "trend" || d.Contains != "time" || d.Thresholds["p(99)<60000"]["ok"] != true {
		t.Errorf("http_req_duration{endpoint:ok} exported as %+v", d)
	}
	if raw.Metrics["http_req_failed"].Thresholds["rate<0.01"]["ok"] != false {
		t.Error("failed threshold exported as ok")
	}
}

func TestSummary_TextShowsMetricsChecksAndThresholds(t *testing.T) {
	sum := httpTest(t, map[string][]Threshold{
		"http_req_duration{endpoint:ok}": {{Expr: "p(99)<60000"}},
		"http_req_failed":                {{Expr: "rate<0.01"}},
	})
	if sum.Passed() {
		t.Fatal("Passed() = true although http_req_failed rate is 0.5")
	}
	var buf bytes.Buffer
	if err := sum.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"✓ ok is 200",
		"✗ fail is 200",
		"✓ http_req_duration{endpoint:ok} p(99)<60000 (p(99)=",
		"✗ http_req_failed rate<0.01 (rate=50.00%)",
		"thresholds: 1 passed, 1 failed",
		"{ endpoint:ok }",
		"http_reqs......",
		"20         ",
		"avg=",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary text lacks %q:\n%s", want, out)
		}
	}
}
