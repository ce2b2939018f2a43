package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/internal/loadtarget"
	"github.com/pulsesync/pulsesync/loadtest"
	"github.com/pulsesync/pulsesync/loadtest/scenarios"
)

// The smoke's shape: every shipped config squeezed into smokeLength with at most smokeVUs VUs
// per scenario, smokeParallel configs at a time against one embedded two-node target.
const (
	smokeLength   = 4 * time.Second
	smokeVUs      = 4
	smokeRate     = 20.0 // iterations per second of an arrival-rate scenario
	smokeParallel = 4
	smokeGrace    = 5 * time.Second // the most gracefulStop or gracefulRampDown
)

// smokeLengths are the configs that need longer than smokeLength: compare-polling's poll phase
// must span a few of its devices' 1 s poll intervals to measure a poller's freshness.
var smokeLengths = map[string]time.Duration{"compare-polling": 8 * time.Second}

// smokeParamCaps bound the params that size a test.
var smokeParamCaps = map[string]float64{"users": 8, "connections": 300, "prefill_rows": 1000}

// smokeScheduleParams are params that place events on the test's clock; they shrink with it.
var smokeScheduleParams = []string{"poll_interval", "upload_every", "storm_at"}

// Every shipped config (loadtest/scenarios/*.json, so new ones join by themselves) runs for a
// few seconds against one embedded deployment of two nodes, so push crosses NATS. The configs
// are scaled down and their throughput and latency thresholds are rewritten into "something was
// measured"; the correctness thresholds (checks, missed pushes, failed requests) stay as
// shipped, and every check must pass. The configs run concurrently (disjoint users: each has
// its own run tag), each reported in its own subtest.
func TestSmoke_EveryShippedConfig(t *testing.T) {
	configs, err := filepath.Glob("../../loadtest/scenarios/*.json")
	if err != nil || len(configs) == 0 {
		t.Fatalf("shipped configs: %v, %v", configs, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	target, err := loadtarget.Start(ctx, loadtarget.Config{Nodes: 2})
	if err != nil {
		t.Fatalf("embedded target: %v", err)
	}
	defer target.Close()

	// And one that must fail: a poller and an uploader put into one user pool, so the
	// uploads break the poller's "poll: empty" check, which the smoke must catch.
	clash := filepath.Join(t.TempDir(), "clash.json")
	if err := os.WriteFile(clash, []byte(`{"scenarios": {
		"poll": {"executor": "constant-vus", "exec": "poll", "vus": 2, "duration": "2s", "params": {"users": 2, "user_pool": "clash"}},
		"upload": {"executor": "constant-vus", "exec": "upload", "vus": 2, "duration": "2s", "params": {"users": 2, "batch": 10, "user_pool": "clash"}}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	configs = append(configs, clash)

	results := make([]chan error, len(configs))
	slots := make(chan struct{}, smokeParallel)
	for i, path := range configs {
		results[i] = make(chan error, 1)
		go func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			results[i] <- runSmoke(ctx, target, path, "smoke"+strconv.Itoa(i))
		}()
	}
	for i, path := range configs {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".json"), func(t *testing.T) {
			err := <-results[i]
			switch {
			case path == clash && (err == nil || !strings.Contains(err.Error(), "checks failed")):
				t.Errorf("a run whose checks fail passed the smoke: %v", err)
			case path != clash && err != nil:
				t.Error(err)
			}
		})
	}
}

// runSmoke runs one config, scaled down, and returns an error, with the summary and the
// warnings logged, unless it passed with every check.
func runSmoke(ctx context.Context, target *loadtarget.Target, path, runTag string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	opts, err := loadtest.ParseOptions(data)
	if err != nil {
		return err
	}
	length := smokeLength
	if l, ok := smokeLengths[strings.TrimSuffix(filepath.Base(path), ".json")]; ok {
		length = l
	}
	if err := shrink(&opts, length); err != nil {
		return err
	}
	var logs bytes.Buffer
	opts.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	overrides := scenarios.Params{Secret: target.Secret, RunTag: runTag, DatabaseURL: target.DatabaseURL, ServerInProcess: true}
	reg, _ := spreadOverNodes(slices.Collect(maps.Keys(opts.Scenarios)), overrides, target.URLs)
	sum, err := loadtest.Run(ctx, opts, reg)
	if err != nil {
		return fmt.Errorf("run: %w\nlogs:\n%s", err, logs.String())
	}
	var failed string
	checks, hasChecks := sum.Metrics["checks"]
	switch {
	case !sum.Passed():
		failed = "thresholds failed"
	case hasChecks && checks.Values["fails"] > 0:
		failed = fmt.Sprintf("%v checks failed", checks.Values["fails"])
	case sum.Metrics["iterations"].Values["count"] == 0:
		failed = "no iteration completed"
	default:
		return nil
	}
	var text bytes.Buffer
	if err := sum.WriteText(&text); err != nil {
		return err
	}
	return fmt.Errorf("%s\nsummary:\n%s\nlogs:\n%s", failed, text.String(), logs.String())
}

// shrink scales opts down to a smoke: the whole test into smokeLen, each scenario to at
// most smokeVUs VUs and smokeRate iterations per second, the params by smokeParamCaps, and
// the thresholds by smokeThreshold.
func shrink(opts *loadtest.Options, smokeLen time.Duration) error {
	var length time.Duration
	for _, sc := range opts.Scenarios {
		length = max(length, sc.StartTime.D()+scenarioLength(sc))
	}
	f := 1.0
	if length > smokeLen {
		f = float64(smokeLen) / float64(length)
	}
	scale := func(d loadtest.Duration) loadtest.Duration { return loadtest.Duration(float64(d) * f) }
	capGrace := func(d *loadtest.Duration) *loadtest.Duration {
		if d == nil || d.D() > smokeGrace {
			return new(loadtest.Duration(smokeGrace))
		}
		return d
	}
	for name, sc := range opts.Scenarios {
		sc.StartTime, sc.Duration = scale(sc.StartTime), scale(sc.Duration)
		sc.VUs, sc.MaxVUs = min(sc.VUs, smokeVUs), min(sc.MaxVUs, smokeVUs)
		sc.PreAllocatedVUs = min(sc.PreAllocatedVUs, 2)
		if sc.StartVUs != nil {
			sc.StartVUs = new(min(*sc.StartVUs, smokeVUs))
		}
		stages := make([]loadtest.Stage, len(sc.Stages))
		for i, st := range sc.Stages {
			stages[i] = loadtest.Stage{Duration: scale(st.Duration), Target: min(st.Target, smokeVUs)}
		}
		sc.Stages = stages
		if sc.Executor == loadtest.ConstantArrivalRate || sc.Executor == loadtest.RampingArrivalRate {
			unit := max(sc.TimeUnit.D(), time.Second).Seconds()
			sc.Rate, sc.StartRate = min(sc.Rate, smokeRate*unit), min(sc.StartRate, smokeRate*unit)
			for i := range sc.Stages {
				sc.Stages[i].Target = min(sc.Stages[i].Target, int(smokeRate*unit))
			}
		}
		if sc.Executor != loadtest.ExternallyControlled {
			sc.GracefulStop = capGrace(sc.GracefulStop)
		}
		if sc.GracefulRampDown != nil {
			sc.GracefulRampDown = capGrace(sc.GracefulRampDown)
		}
		params, err := shrinkParams(sc.Params, f)
		if err != nil {
			return fmt.Errorf("scenario %q: %w", name, err)
		}
		sc.Params = params
		opts.Scenarios[name] = sc
	}
	for sel, ths := range opts.Thresholds {
		for i := range ths {
			ths[i].Expr = smokeThreshold(ths[i].Expr)
			ths[i].AbortOnFail = false
		}
		opts.Thresholds[sel] = ths
	}
	return nil
}

// scenarioLength is how long a scenario's schedule runs (iteration-bounded ones: 0, they
// end when their iterations are done).
func scenarioLength(sc loadtest.Scenario) time.Duration {
	var total time.Duration
	for _, st := range sc.Stages {
		total += st.Duration.D()
	}
	return max(total, sc.Duration.D())
}

// shrinkParams caps the sizing params and scales the schedule params by f.
func shrinkParams(raw json.RawMessage, f float64) (json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return raw, nil
	}
	var params map[string]any
	if err := json.Unmarshal(raw, &params); err != nil {
		return nil, fmt.Errorf("params: %w", err)
	}
	for k, limit := range smokeParamCaps {
		if v, ok := params[k].(float64); ok {
			params[k] = min(v, limit)
		}
	}
	for _, k := range smokeScheduleParams {
		if s, ok := params[k].(string); ok {
			d, err := time.ParseDuration(s)
			if err != nil {
				return nil, fmt.Errorf("param %s: %w", k, err)
			}
			params[k] = time.Duration(float64(d) * f).String()
		}
	}
	return json.Marshal(params)
}

// thresholdExpr splits "p(99)<25" into its aggregation, operator and bound.
var thresholdExpr = regexp.MustCompile(`^\s*([a-z]+(?:\([0-9.]+\))?)\s*(<=|>=|===|==|!=|<|>)\s*([-+0-9.eE]+)\s*$`)

// smokeThreshold keeps an expression that states correctness — a fraction of a rate metric
// (checks, failed requests), a count (missed pushes), passes or fails — and turns one about
// speed or size, which a smoke on a loaded machine cannot reach, into "something was
// measured": a counter's per-second rate into count>0, a trend's or gauge's value into ≥ 0,
// which fails only when nothing was recorded.
func smokeThreshold(expr string) string {
	m := thresholdExpr.FindStringSubmatch(expr)
	if m == nil {
		return expr // the engine will name what is wrong with it
	}
	bound, err := strconv.ParseFloat(m[3], 64)
	switch agg := m[1]; {
	case err != nil, agg == "count", agg == "passes", agg == "fails":
		return expr
	case agg == "rate" && bound <= 1:
		return expr
	case agg == "rate":
		return "count>0"
	default:
		return agg + ">=0"
	}
}

func TestSmokeThreshold(t *testing.T) {
	for expr, want := range map[string]string{
		"rate<0.01": "rate<0.01", "rate>0.999": "rate>0.999", "count<1": "count<1", "count==0": "count==0",
		"rate>25000": "count>0", "p(99)<25": "p(99)>=0", "med<1": "med>=0", "max>=50000": "max>=0", "value<=20": "value>=0",
	} {
		if got := smokeThreshold(expr); got != want {
			t.Errorf("smokeThreshold(%q) = %q, want %q", expr, got, want)
		}
	}
}
