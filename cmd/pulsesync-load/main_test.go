package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/loadtest"
)

// The tests run the binary as a real process: the test executable re-runs
// itself with this variable set and then behaves as pulsesync-load.
const asMain = "PULSESYNC_LOAD_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMain) == "1" {
		main()
	}
	os.Exit(m.Run())
}

// runProcess runs pulsesync-load with args and returns its exit code and output.
func runProcess(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), asMain+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	case err != nil:
		t.Fatalf("run pulsesync-load: %v", err)
	}
	return 0, stdout.String(), stderr.String()
}

// emptyStreams answers every download with an empty page: enough for the
// poll scenario to run, which is all these tests need of a server (they test
// the binary, not the protocol).
func emptyStreams(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/sync/download" || !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"changes":[],"has_more":false,"next_after":0,"window_until":0}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestExitCodes(t *testing.T) {
	url := emptyStreams(t)
	poll := []string{"--scenario", "poll", "--vus", "2", "--iterations", "3", "--url", url, "--log-level", "error"}
	badConfig := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(badConfig, []byte(`{"scenarios": {"s": {"executor": "constant-vus", "exec": "nope", "duration": "1s"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	misspelt := filepath.Join(t.TempDir(), "misspelt.json")
	if err := os.WriteFile(misspelt, []byte(`{"scenarios": {"s": {"executor": "constant-vus", "exec": "poll", "durration": "1s"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want int
	}{
		{"thresholds pass", append(poll, "--threshold", "http_req_duration{endpoint:poll}=max<60000"), 0},
		{"threshold fails", append(poll, "--threshold", "http_req_duration{endpoint:poll}=max<0"), 99},
		{"unknown exec in config", []string{"--config", badConfig}, 104},
		{"bad threshold", append(poll, "--threshold", "http_reqs=p(99)<1"), 104},
		{"misspelt key in config", []string{"--config", misspelt}, 104},
		{"missing config file", []string{"--config", filepath.Join(t.TempDir(), "none.json")}, 104},
		{"invalid executor shape", append(poll, "--executor", "constant-arrival-rate"), 104},
		{"nodes without embedded", append(poll, "--nodes", "2"), 2},
		{"embedded with url", []string{"--embedded", "--scenario", "poll", "--url", url}, 2},
		{"push preset with executor", []string{"--embedded", "--scenario", "push", "--executor", "constant-vus"}, 2},
		{"shape flag with config", []string{"--config", badConfig, "--vus", "3"}, 2},
		{"neither config nor scenario", nil, 2},
		{"help", []string{"--help"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runProcess(t, tc.args...)
			if code != tc.want {
				t.Errorf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.want, stdout, stderr)
			}
		})
	}
}

func TestSummaryExport_WritesThresholdResults(t *testing.T) {
	url := emptyStreams(t)
	out := filepath.Join(t.TempDir(), "summary.json")
	code, stdout, stderr := runProcess(t, "--scenario", "poll", "--iterations", "2", "--url", url, "--log-level", "error",
		"--threshold", "checks=rate==1", "--summary-export", out)
	if code != 0 {
		t.Fatalf("exit code %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "✓ poll: empty") || !strings.Contains(stdout, "http_req_duration") {
		t.Errorf("summary on stdout lacks checks or metrics:\n%s", stdout)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var sum struct {
		Metrics map[string]struct {
			Values     map[string]float64           `json:"values"`
			Thresholds map[string]struct{ OK bool } `json:"thresholds"`
		} `json:"metrics"`
	}
	if err := json.Unmarshal(data, &sum); err != nil {
		t.Fatal(err)
	}
	if !sum.Metrics["checks"].Thresholds["rate==1"].OK {
		t.Errorf("exported checks = %+v, want threshold rate==1 ok", sum.Metrics["checks"])
	}
	// One head request and two polls per VU.
	if got := sum.Metrics["http_reqs{endpoint:poll}"].Values["count"]; got != 2 {
		t.Errorf("exported http_reqs{endpoint:poll} count = %v, want 2", got)
	}
}

func TestHelp_DocumentsEveryFlag(t *testing.T) {
	var c cli
	var help bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, io.Discard, &help, os.Getenv); code != 0 {
		t.Fatalf("--help exit code = %d", code)
	}
	newFlags(&c, io.Discard).VisitAll(func(f *flag.Flag) {
		if strings.TrimSpace(f.Usage) == "" || !strings.Contains(help.String(), "-"+f.Name+" ") && !strings.Contains(help.String(), "-"+f.Name+"\n") {
			t.Errorf("--help does not document -%s", f.Name)
		}
	})
}

func TestCLI_FlagScenarioShapes(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--scenario", "upload", "--vus", "16", "--duration", "30s"}, "constant-vus vus=16 dur=30s"},
		{[]string{"--scenario", "upload", "--iterations", "5"}, "shared-iterations vus=1 dur=0s its=5"},
		{[]string{"--scenario", "upload", "--executor", "per-vu-iterations", "--vus", "2", "--iterations", "5"}, "per-vu-iterations vus=2 dur=0s its=5"},
		{[]string{"--scenario", "upload", "--rate", "200", "--vus", "4", "--max-vus", "9"}, "constant-arrival-rate vus=0 dur=30s pre=4 max=9 rate=200"},
		{[]string{"--scenario", "upload", "--vus", "2", "--stage", "10s:20", "--stage", "5s:0"}, "ramping-vus vus=0 dur=0s start=2 stages=[{10s 20} {5s 0}]"},
		{[]string{"--scenario", "upload", "--executor", "ramping-arrival-rate", "--rate", "5", "--vus", "3", "--stage", "10s:50"},
			"ramping-arrival-rate vus=0 dur=0s pre=3 max=0 rate=5 stages=[{10s 50}]"},
	}
	for _, tc := range cases {
		var c cli
		if err := newFlags(&c, io.Discard).Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		sc := c.flagScenario()
		got := sc.Executor + " vus=" + strconv.Itoa(sc.VUs) + " dur=" + sc.Duration.String()
		switch sc.Executor {
		case "constant-arrival-rate", "ramping-arrival-rate":
			got += " pre=" + strconv.Itoa(sc.PreAllocatedVUs) + " max=" + strconv.Itoa(sc.MaxVUs) + " rate=" + strconv.Itoa(int(sc.Rate+sc.StartRate))
		case "shared-iterations", "per-vu-iterations":
			got += " its=" + strconv.Itoa(sc.Iterations)
		case "ramping-vus":
			got += " start=" + strconv.Itoa(*sc.StartVUs)
		}
		if len(sc.Stages) > 0 {
			got += fmt.Sprint(" stages=", sc.Stages)
		}
		if got != tc.want {
			t.Errorf("%v → %s, want %s", tc.args, got, tc.want)
		}
	}
}

// The push preset against an embedded two-node deployment: listeners on node 1, uploaders on
// node 2, so every push crosses the NATS fan-out. The summary shows push_latency and what it
// measured, the export holds its p(99), the run exits 0; an unmeetable threshold exits 99.
func TestEmbedded_PushPresetAcrossTwoNodes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra []string
		want  int
		shows []string
	}{
		{"passes", nil, exitOK, []string{"push_latency.", "p(99)="}},
		{"threshold fails", []string{"--threshold", "push_latency=p(99)<0.001"}, exitThresholdsFailed, []string{"✗ push_latency", "p(99)="}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "s.json")
			// A few listeners and 4.8 s of uploads after them: on a loaded machine a listener may
			// take seconds to be ready, and only uploads after that are timed.
			code, stdout, stderr := runProcess(t, append([]string{"--embedded", "--nodes", "2", "--scenario", "push", "--vus", "4",
				"--rate", "10", "--duration", "6s", "--log-level", "warn", "--summary-export", out}, tc.extra...)...)
			if code != tc.want {
				t.Fatalf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.want, stdout, stderr)
			}
			for _, want := range append([]string{"target: embedded: 2 pulsesync nodes", "in-process NATS", "listeners → node 1",
				"uploaders → node 2"}, tc.shows...) {
				if !strings.Contains(stdout, want) {
					t.Errorf("summary lacks %q:\n%s", want, stdout)
				}
			}
			checkPushExport(t, out)
		})
	}
}

// checkPushExport checks a push preset's --summary-export: push_latency with a p(99), no
// push_missed, and the embedded target.
func checkPushExport(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var sum struct {
		State struct {
			Target string `json:"target"`
		} `json:"state"`
		Metrics map[string]struct {
			Values map[string]float64 `json:"values"`
		} `json:"metrics"`
	}
	if err := json.Unmarshal(data, &sum); err != nil {
		t.Fatal(err)
	}
	lat := sum.Metrics["push_latency"].Values
	if lat["count"] < 1 || lat["p(99)"] <= 0 {
		t.Errorf("exported push_latency = %v, want samples and a p(99)", lat)
	}
	if missed := sum.Metrics["push_missed"].Values["count"]; missed != 0 {
		t.Errorf("push_missed = %v, want 0", missed)
	}
	if !strings.Contains(sum.State.Target, "embedded") {
		t.Errorf("exported target = %q, want the embedded deployment", sum.State.Target)
	}
}

// With stderr a pipe, as in CI, no progress line is written; --out json=FILE
// holds every sample.
func TestProgressOnlyOnATerminal_OutJSON(t *testing.T) {
	url := emptyStreams(t)
	out := filepath.Join(t.TempDir(), "samples.json")
	code, stdout, stderr := runProcess(t, "--scenario", "poll", "--vus", "2", "--iterations", "4", "--url", url,
		"--log-level", "error", "--out", "json="+out)
	if code != 0 {
		t.Fatalf("exit code %d\n%s\n%s", code, stdout, stderr)
	}
	if strings.Contains(stderr, "running (") || strings.Contains(stderr, "\r") {
		t.Errorf("stderr is a pipe but got a progress line: %q", stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	polls := 0
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var p struct {
			Type, Metric string
			Data         struct{ Tags map[string]string }
		}
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatalf("--out line %q: %v", line, err)
		}
		if p.Type == "Point" && p.Metric == "http_reqs" && p.Data.Tags["endpoint"] == "poll" {
			polls++
			if p.Data.Tags["status"] != "200" || p.Data.Tags["method"] != "GET" || p.Data.Tags["scenario"] != "poll" {
				t.Errorf("poll sample tags = %v, want status 200, method GET, scenario poll", p.Data.Tags)
			}
		}
	}
	if polls != 4 {
		t.Errorf("--out holds %d poll requests, want 4", polls)
	}
}

func TestIsTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) || isTerminal(&bytes.Buffer{}) {
		t.Error("a file or a buffer taken for a terminal")
	}
}

// A test with an externally-controlled scenario, steered by the verbs over its control API as
// k6's scale, pause, resume and status steer k6.
func TestVerbs_SteerAnExternallyControlledTest(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(os.Args[0], "--scenario", "poll", "--executor", "externally-controlled", "--vus", "1", "--max-vus", "3",
		"--duration", "0", "--url", emptyStreams(t), "--address", addr, "--log-level", "error")
	cmd.Env = append(os.Environ(), asMain+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})

	verb := func(args ...string) (int, loadtest.ControlStatus, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		code := run(context.Background(), append(args, "--address", addr), io.Discard, &errOut, os.Getenv)
		if code != exitOK {
			return code, loadtest.ControlStatus{}, errOut.String()
		}
		code = run(context.Background(), []string{"status", "--address", addr}, &out, &errOut, os.Getenv)
		var doc loadtest.ControlDocument[loadtest.ControlStatus]
		if err := json.Unmarshal(out.Bytes(), &doc); code != exitOK || err != nil {
			t.Fatalf("status = %d %q %q: %v", code, out.String(), errOut.String(), err)
		}
		return code, doc.Data.Attributes, errOut.String()
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, st, _ := verb("status"); code == exitOK && st.Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the test never answered status on %s\nstderr:\n%s", addr, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, st, msg := verb("scale", "--vus", "3"); code != exitOK || st.VUs != 3 || st.VUsMax != 3 {
		t.Errorf("scale --vus 3 = %d %+v %s, want vus 3 of 3", code, st, msg)
	}
	if code, _, msg := verb("scale", "--vus", "4"); code != exitError || !strings.Contains(msg, "maxVUs") {
		t.Errorf("scale --vus 4 = %d %q, want exit 1 naming maxVUs", code, msg)
	}
	if code, _, _ := verb("scale"); code != exitUsage {
		t.Errorf("scale without --vus = %d, want 2", code)
	}
	if code, st, msg := verb("pause"); code != exitOK || !st.Paused {
		t.Errorf("pause = %d %+v %s, want paused", code, st, msg)
	}
	if code, st, msg := verb("resume"); code != exitOK || st.Paused {
		t.Errorf("resume = %d %+v %s, want not paused", code, st, msg)
	}
	var stopErr bytes.Buffer
	if code := run(context.Background(), []string{"stop", "--address", addr}, io.Discard, &stopErr, os.Getenv); code != exitOK {
		t.Errorf("stop = %d %s", code, stopErr.String())
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("the stopped test exited with %v, want 0\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the test did not end after stop")
	}
	if !strings.Contains(stdout.String(), "stopped through the control API") || !strings.Contains(stdout.String(), "1-3 VUs set through the control API, until stopped") {
		t.Errorf("summary lacks the stop or the scenario's shape:\n%s", stdout.String())
	}
	if code, _, _ := verb("status"); code != exitError {
		t.Errorf("status after the end = %d, want 1 (nothing listens)", code)
	}
}

// --summary-trend-stats chooses the trend values of the summary, as k6's flag does.
func TestSummaryTrendStats_Flag(t *testing.T) {
	code, stdout, stderr := runProcess(t, "--scenario", "poll", "--iterations", "2", "--url", emptyStreams(t), "--log-level", "error",
		"--summary-trend-stats", "med, p(99.9)")
	if code != 0 {
		t.Fatalf("exit code %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "p(99.9)=") || !strings.Contains(stdout, "med=") || strings.Contains(stdout, "p(95)=") || strings.Contains(stdout, "avg=") {
		t.Errorf("summary does not show exactly med and p(99.9):\n%s", stdout)
	}
	if code, _, _ := runProcess(t, "--scenario", "poll", "--url", emptyStreams(t), "--summary-trend-stats", "mode"); code != exitInvalidConfig {
		t.Errorf("an unknown trend stat: exit %d, want 104", code)
	}
}
