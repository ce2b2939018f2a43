package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
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

// countingListener counts the bytes the server's connections read and write.
type countingListener struct {
	net.Listener
	read, written *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &serverConn{Conn: c, l: l}, nil
}

type serverConn struct {
	net.Conn
	l countingListener
}

func (c *serverConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.l.read.Add(int64(n))
	return n, err
}

func (c *serverConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.l.written.Add(int64(n))
	return n, err
}

// Through a counting dialer, data_sent and data_received are what the server
// read and wrote on its sockets, headers included; every sample carries k6's
// per-request tags, which thresholds select, and the timing parts add up.
func TestHTTP_WireBytesRequestTagsAndTimings(t *testing.T) {
	var read, written atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("ok")) //nolint:errcheck // the client sees a short body
	}))
	srv.Listener = countingListener{Listener: srv.Listener, read: &read, written: &written}
	srv.Start()
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{DialContext: CountingDialer((&net.Dialer{}).DialContext)}}
	defer client.CloseIdleConnections()

	factory := func(env *Env, _ json.RawMessage) (Exec, error) {
		h := NewHTTP(env.Metrics, client)
		api, other := h.Endpoint(Tags{"endpoint": "api"}), h.Endpoint(nil)
		return ExecFunc(func(ctx context.Context, vu *VU) error {
			for _, c := range []struct {
				ep           *Endpoint
				method, path string
			}{{api, http.MethodPost, "/ok"}, {api, http.MethodGet, "/missing"}, {other, http.MethodGet, "/ok?x=1"}} {
				req, err := http.NewRequestWithContext(ctx, c.method, srv.URL+c.path, strings.NewReader("abc"))
				if err != nil {
					return err
				}
				if _, err := c.ep.Do(req); err != nil {
					return err
				}
			}
			return nil
		}), nil
	}
	th := map[string][]Threshold{
		"http_reqs{status:200}":                     {{Expr: "count==8"}},
		"http_reqs{method:GET,status:404}":          {{Expr: "count==4"}},
		"http_reqs{expected_response:false}":        {{Expr: "count==4"}},
		"http_reqs{method:POST,name:api}":           {{Expr: "count==4"}},
		"http_reqs{name:" + srv.URL + "/ok}":        {{Expr: "count==4"}}, // no endpoint tag: the URL without its query
		"http_reqs{scenario:web,team:sync}":         {{Expr: "count==12"}},
		"http_req_duration{expected_response:true}": {{Expr: "max<60000"}},
	}
	sum := run(t, Options{
		Scenarios: map[string]Scenario{"web": {Executor: PerVUIterations, VUs: 2, Iterations: 2, Exec: "web",
			Tags: Tags{"team": "sync"}}},
		Thresholds: th,
	}, Registry{"web": factory})
	for sel, ths := range th {
		for _, x := range ths {
			if r := sum.Metrics[sel].Thresholds[x.Expr]; !r.OK {
				t.Errorf("%s %s: %+v", sel, x.Expr, r)
			}
		}
	}
	if got, want := value(t, sum, "data_sent", "count"), float64(read.Load()); got != want {
		t.Errorf("data_sent = %v, want the %v bytes the server read", got, want)
	}
	if got, want := value(t, sum, "data_received", "count"), float64(written.Load()); got != want {
		t.Errorf("data_received = %v, want the %v bytes the server wrote", got, want)
	}
	if got := value(t, sum, "http_req_connecting", "count"); got != 12 {
		t.Errorf("http_req_connecting count = %v, want one per request", got)
	}
	// The parts of a request sum to its duration, so their averages do too.
	parts := value(t, sum, "http_req_sending", "avg") + value(t, sum, "http_req_waiting", "avg") + value(t, sum, "http_req_receiving", "avg")
	if d := value(t, sum, "http_req_duration", "avg"); math.Abs(parts-d) > 1e-6*d+1e-9 {
		t.Errorf("sending+waiting+receiving avg = %v, want http_req_duration avg %v", parts, d)
	}
	// Request tags do not add series to the summary: only the endpoint's own tags do.
	for k := range sum.Metrics {
		if strings.Contains(k, "status:") && sum.Metrics[k].Thresholds == nil {
			t.Errorf("summary lists the request-tag series %q", k)
		}
	}
}

func TestOptions_ShortcutsBecomeTheDefaultScenario(t *testing.T) {
	cases := []struct {
		doc, want string
	}{
		{`{"exec": "e", "vus": 3, "duration": "1s"}`, "constant-vus vus=3 dur=1s"},
		{`{"exec": "e", "vus": 2, "iterations": 10}`, "shared-iterations vus=2 its=10 max=10m0s"},
		{`{"exec": "e", "iterations": 10, "duration": "5s"}`, "shared-iterations vus=1 its=10 max=5s"},
		{`{"exec": "e", "vus": 4, "stages": [{"duration": "1s", "target": 9}]}`, "ramping-vus start=4 stages=1"},
		{`{"exec": "e"}`, "shared-iterations vus=1 its=1 max=10m0s"},
	}
	for _, tc := range cases {
		o, err := ParseOptions([]byte(tc.doc))
		if err != nil {
			t.Fatalf("%s: %v", tc.doc, err)
		}
		o, err = o.resolve()
		if err != nil {
			t.Fatalf("%s: %v", tc.doc, err)
		}
		sc, ok := o.Scenarios["default"]
		if !ok || len(o.Scenarios) != 1 {
			t.Fatalf("%s: scenarios = %v, want one named default", tc.doc, o.Scenarios)
		}
		var got string
		switch sc.Executor {
		case ConstantVUs:
			got = fmt.Sprintf("%s vus=%d dur=%s", sc.Executor, sc.VUs, sc.Duration)
		case SharedIterations:
			got = fmt.Sprintf("%s vus=%d its=%d max=%s", sc.Executor, sc.VUs, sc.Iterations, sc.MaxDuration)
		case RampingVUs:
			got = fmt.Sprintf("%s start=%d stages=%d", sc.Executor, *sc.StartVUs, len(sc.Stages))
		}
		if got != tc.want || sc.Exec != "e" {
			t.Errorf("%s → %s (exec %q), want %s", tc.doc, got, sc.Exec, tc.want)
		}
	}
	for _, bad := range []string{
		`{"exec": "e", "vus": 2, "scenarios": {"s": {"executor": "constant-vus", "exec": "e", "duration": "1s"}}}`,
		`{"exec": "e", "summaryTrendStats": ["avg", "p(99)", "mode"]}`,
	} {
		o, err := ParseOptions([]byte(bad))
		if err == nil {
			_, err = o.resolve()
		}
		if !errors.Is(err, ErrBadOptions) {
			t.Errorf("%s: error = %v, want bad options", bad, err)
		}
	}
}

func TestSummaryTrendStats_ChooseTheTrendValues(t *testing.T) {
	opts, reg := one(Scenario{Executor: PerVUIterations, VUs: 1, Iterations: 3}, func(context.Context, *VU) error { return nil })
	opts.SummaryTrendStats = []string{"p(99.9)", "avg", "count"}
	sum := run(t, opts, reg)
	got := sum.Metrics["iteration_duration"].Values
	if len(got) != 3 || got["count"] != 3 {
		t.Errorf("iteration_duration values = %v, want exactly p(99.9), avg and count", got)
	}
	var text bytes.Buffer
	if err := sum.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	line := ""
	for _, l := range strings.Split(text.String(), "\n") {
		if strings.Contains(l, "iteration_duration") {
			line = l
		}
	}
	if !strings.Contains(line, "p(99.9)=") || strings.Index(line, "p(99.9)=") > strings.Index(line, "avg=") || strings.Contains(line, "med=") {
		t.Errorf("summary line %q, want p(99.9) then avg and nothing else", line)
	}
}
