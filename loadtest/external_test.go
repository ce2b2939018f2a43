package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// controlled runs sc (externally-controlled) with exec e in the background, its Control
// served over real HTTP. done delivers Run's result.
type controlled struct {
	url  string
	ctl  *Control
	done chan controlledResult
}

type controlledResult struct {
	sum Summary
	err error
}

func startControlled(t *testing.T, sc Scenario, e ExecFunc) *controlled {
	t.Helper()
	opts, reg := one(sc, e)
	opts.Logger, opts.Control = quiet(), NewControl()
	srv := httptest.NewServer(ControlHandler(opts.Control))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	c := &controlled{url: srv.URL, ctl: opts.Control, done: make(chan controlledResult, 1)}
	go func() {
		defer cancel()
		sum, err := Run(ctx, opts, reg)
		c.done <- controlledResult{sum, err}
	}()
	t.Cleanup(func() {
		cancel()
		<-c.done
	})
	waitUntil(t, "the test runs", func() bool { return c.ctl.Status().Running })
	return c
}

// patch sends a PATCH of the status document with attrs and returns the status code and body.
func (c *controlled) patch(t *testing.T, attrs string) (int, string) {
	t.Helper()
	return request(t, http.MethodPatch, c.url+ControlPath, `{"data":{"type":"status","id":"default","attributes":`+attrs+`}}`)
}

func request(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(data)
}

// status GETs the status over HTTP.
func (c *controlled) status(t *testing.T) ControlStatus {
	t.Helper()
	code, body := request(t, http.MethodGet, c.url+ControlPath, "")
	if code != http.StatusOK {
		t.Fatalf("GET status = %d %s", code, body)
	}
	var doc ControlDocument[ControlStatus]
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("decode status %s: %v", body, err)
	}
	if doc.Data.Type != "status" || doc.Data.ID != "default" {
		t.Errorf("status document %s: want type status, id default", body)
	}
	return doc.Data.Attributes
}

// waitUntil polls cond until it holds, failing the test after 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestExternallyControlled_ScheduleFollowsPatches(t *testing.T) {
	c := newConcurrency()
	x := startControlled(t, Scenario{Executor: ExternallyControlled, VUs: 1, MaxVUs: 4}, c.untilDrained)
	waitUntil(t, "1 VU runs", func() bool { return c.now.Load() == 1 })

	for _, target := range []int{3, 4, 1, 0, 2} {
		code, body := x.patch(t, fmt.Sprintf(`{"vus":%d}`, target))
		if code != http.StatusOK {
			t.Fatalf("PATCH vus %d = %d %s", target, code, body)
		}
		waitUntil(t, fmt.Sprintf("%d VUs run", target), func() bool { return c.now.Load() == int64(target) })
		if st := x.status(t); st.VUs != target || st.VUsMax != 4 || !st.Running {
			t.Errorf("after PATCH vus %d: status %+v, want vus %d, vus-max 4, running", target, st, target)
		}
	}
	if p := c.peak.Load(); p != 4 {
		t.Errorf("peak VUs = %d, want 4 (the most asked for)", p)
	}
}

func TestExternallyControlled_RefusesVUsAboveMaxAndBadRequests(t *testing.T) {
	c := newConcurrency()
	x := startControlled(t, Scenario{Executor: ExternallyControlled, VUs: 2, MaxVUs: 3}, c.untilDrained)
	cases := []struct {
		name, method, body string
		want               int
	}{
		{"vus above maxVUs", http.MethodPatch, `{"data":{"attributes":{"vus":4}}}`, 400},
		{"negative vus", http.MethodPatch, `{"data":{"attributes":{"vus":-1}}}`, 400},
		{"vus-max changed", http.MethodPatch, `{"data":{"attributes":{"vus-max":9}}}`, 400},
		{"unknown attribute", http.MethodPatch, `{"data":{"attributes":{"vsu":1}}}`, 400},
		{"wrong type", http.MethodPatch, `{"data":{"type":"metric","attributes":{"vus":1}}}`, 400},
		{"not JSON", http.MethodPatch, `vus=1`, 400},
		{"vus as a string", http.MethodPatch, `{"data":{"attributes":{"vus":"2"}}}`, 400},
		{"restart", http.MethodPatch, `{"data":{"attributes":{"stopped":false,"vus":1}}}`, 200},
		{"method", http.MethodDelete, ``, 405},
		{"path", http.MethodGet, ``, 404},
	}
	for _, tc := range cases {
		url := x.url + ControlPath
		if tc.name == "path" {
			url = x.url + "/v1/metrics"
		}
		code, body := request(t, tc.method, url, tc.body)
		var errs ControlErrors
		if code != tc.want {
			t.Errorf("%s: status %d %s, want %d", tc.name, code, body, tc.want)
		} else if code != 200 && (json.Unmarshal([]byte(body), &errs) != nil || len(errs.Errors) != 1 || errs.Errors[0].Detail == "") {
			t.Errorf("%s: body %s, want one JSON:API error with a detail", tc.name, body)
		}
	}
	waitUntil(t, "the accepted PATCH's 1 VU runs", func() bool { return c.now.Load() == 1 })
	if p := c.peak.Load(); p > 3 {
		t.Errorf("peak VUs = %d: more than maxVUs ran", p)
	}
}

func TestExternallyControlled_PauseStopsStartingIterations(t *testing.T) {
	var started atomic.Int64
	x := startControlled(t, Scenario{Executor: ExternallyControlled, VUs: 2, MaxVUs: 2}, func(context.Context, *VU) error {
		started.Add(1)
		return nil
	})
	waitUntil(t, "iterations start", func() bool { return started.Load() > 10 })

	if code, body := x.patch(t, `{"paused":true}`); code != http.StatusOK || !x.status(t).Paused {
		t.Fatalf("PATCH paused = %d %s, want 200 and paused", code, body)
	}
	// Once both VUs wait at the pause, none can start an iteration until the resume.
	waitUntil(t, "both VUs wait for the resume", func() bool { return x.ctl.parked.Load() == 2 })
	n := started.Load()
	if code, body := x.patch(t, `{"vus":1}`); code != http.StatusOK { // a change while paused: still no iteration
		t.Fatalf("PATCH vus while paused = %d %s", code, body)
	}
	waitUntil(t, "the VU scaled away leaves the pause", func() bool { return x.ctl.parked.Load() == 1 })
	if got := started.Load(); got != n {
		t.Errorf("paused: %d iterations started, want none", got-n)
	}

	if code, body := x.patch(t, `{"paused":false}`); code != http.StatusOK || x.status(t).Paused {
		t.Fatalf("PATCH resume = %d %s", code, body)
	}
	waitUntil(t, "iterations start again", func() bool { return started.Load() > n+10 })
}

func TestExternallyControlled_StopEndsTheRun(t *testing.T) {
	c := newConcurrency()
	x := startControlled(t, Scenario{Executor: ExternallyControlled, VUs: 2}, c.untilDrained) // duration 0: until stopped
	waitUntil(t, "2 VUs run", func() bool { return c.now.Load() == 2 })
	if code, body := x.patch(t, `{"stopped":true}`); code != http.StatusOK {
		t.Fatalf("PATCH stopped = %d %s", code, body)
	}
	var res controlledResult
	select {
	case res = <-x.done:
		x.done <- res // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("the run did not end after PATCH stopped")
	}
	if res.err != nil {
		t.Fatalf("Run after a stop: %v, want no error", res.err)
	}
	if !strings.Contains(strings.Join(res.sum.Notes, "\n"), "stopped through the control API") {
		t.Errorf("summary notes %q lack the stop", res.sum.Notes)
	}
	if st := x.status(t); !st.Stopped || st.Running {
		t.Errorf("status after the stop = %+v, want stopped and not running", st)
	}
	if code, _ := x.patch(t, `{"vus":1}`); code != http.StatusConflict {
		t.Errorf("PATCH after the end = %d, want 409", code)
	}
}

func TestExternallyControlled_Validation(t *testing.T) {
	reg := Registry{"e": func(*Env, json.RawMessage) (Exec, error) {
		return ExecFunc(func(context.Context, *VU) error { return nil }), nil
	}}
	ext := Scenario{Executor: ExternallyControlled, Exec: "e", VUs: 2, MaxVUs: 4}
	cases := []struct {
		name string
		opts Options
	}{
		{"no control", Options{Scenarios: map[string]Scenario{"s": ext}}},
		{"two of them", Options{Control: NewControl(), Scenarios: map[string]Scenario{"a": ext, "b": ext}}},
		{"vus above maxVUs", Options{Control: NewControl(), Scenarios: map[string]Scenario{"s": {Executor: ExternallyControlled, Exec: "e", VUs: 5, MaxVUs: 4}}}},
		{"gracefulStop", Options{Control: NewControl(), Scenarios: map[string]Scenario{"s": {Executor: ExternallyControlled, Exec: "e", VUs: 1, GracefulStop: durPtr(time.Second)}}}},
		{"negative duration", Options{Control: NewControl(), Scenarios: map[string]Scenario{"s": {Executor: ExternallyControlled, Exec: "e", VUs: 1, Duration: dur(-time.Second)}}}},
	}
	for _, tc := range cases {
		if err := Validate(tc.opts, reg); !errors.Is(err, ErrBadOptions) {
			t.Errorf("%s: Validate = %v, want ErrBadOptions", tc.name, err)
		}
	}
	if err := Validate(Options{Control: NewControl(), Scenarios: map[string]Scenario{"s": ext}}, reg); err != nil {
		t.Errorf("valid externally-controlled scenario: %v", err)
	}
}

func TestExternallyControlled_DurationEndsTheScenario(t *testing.T) {
	c := newConcurrency()
	opts, reg := one(Scenario{Executor: ExternallyControlled, VUs: 3, Duration: dur(100 * time.Millisecond)}, c.untilDrained)
	opts.Control = NewControl()
	sum := run(t, opts, reg)
	if p := c.peak.Load(); p != 3 {
		t.Errorf("peak VUs = %d, want the 3 of vus", p)
	}
	if got := value(t, sum, "vus_max", "value"); got != 3 {
		t.Errorf("vus_max = %v, want 3 (maxVUs defaults to vus)", got)
	}
	if st := opts.Control.Status(); st.Running || st.Stopped {
		t.Errorf("status after the end = %+v, want not running, not stopped", st)
	}
}
