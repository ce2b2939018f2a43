package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// concurrency tracks how many iterations run at once and which VUs ran.
type concurrency struct {
	now, peak atomic.Int64
	mu        sync.Mutex
	perVU     map[int][]int64 // VU id → iteration numbers seen
}

func newConcurrency() *concurrency { return &concurrency{perVU: map[int][]int64{}} }

func (c *concurrency) enter(vu *VU) func() {
	n := c.now.Add(1)
	for {
		p := c.peak.Load()
		if n <= p || c.peak.CompareAndSwap(p, n) {
			break
		}
	}
	c.mu.Lock()
	c.perVU[vu.ID] = append(c.perVU[vu.ID], vu.Iteration)
	c.mu.Unlock()
	return func() { c.now.Add(-1) }
}

// untilDrained is an iteration that holds its VU until the executor drains it.
func (c *concurrency) untilDrained(_ context.Context, vu *VU) error {
	defer c.enter(vu)()
	<-vu.Draining().Done()
	return nil
}

func TestPerVUIterations_RunsEachVUsIterations(t *testing.T) {
	c := newConcurrency()
	opts, reg := one(Scenario{Executor: PerVUIterations, VUs: 3, Iterations: 5}, func(_ context.Context, vu *VU) error {
		defer c.enter(vu)()
		return nil
	})
	sum := run(t, opts, reg)
	if got := value(t, sum, "iterations", "count"); got != 15 {
		t.Errorf("iterations = %v, want 15", got)
	}
	if len(c.perVU) != 3 {
		t.Fatalf("VUs that ran = %d, want 3", len(c.perVU))
	}
	for id, its := range c.perVU {
		if !slices.Equal(its, []int64{0, 1, 2, 3, 4}) {
			t.Errorf("VU %d ran iterations %v, want 0..4", id, its)
		}
	}
}

func TestConstantVUs_RunsExactlyVUsConcurrently(t *testing.T) {
	c := newConcurrency()
	opts, reg := one(Scenario{Executor: ConstantVUs, VUs: 4, Duration: dur(100 * time.Millisecond)}, c.untilDrained)
	sum := run(t, opts, reg)
	if got := value(t, sum, "iterations", "count"); got != 4 {
		t.Errorf("iterations = %v, want 4 (one per VU, each held until drained)", got)
	}
	if p := c.peak.Load(); p != 4 {
		t.Errorf("peak concurrent VUs = %d, want 4", p)
	}
	if got := value(t, sum, "vus_max", "value"); got != 4 {
		t.Errorf("vus_max = %v, want 4", got)
	}
}

func TestRampSchedule_ReachesEachTargetAtStageEnd(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	got := rampSchedule(1, []Stage{
		{Duration: dur(ms(30)), Target: 4},
		{Duration: dur(ms(50)), Target: 4},
		{Duration: dur(ms(20)), Target: 2},
		{Duration: 0, Target: 5},
	})
	want := []rampStep{
		{0, 1},
		{ms(10), 2}, {ms(20), 3}, {ms(30), 4}, // +1 every 10 ms, 4 at the stage's end
		{ms(90), 3}, {ms(100), 2}, // hold 50 ms, then down
		{ms(100), 3}, {ms(100), 4}, {ms(100), 5}, // a zero-length stage jumps at once
	}
	if !slices.Equal(got, want) {
		t.Errorf("rampSchedule =\n%v\nwant\n%v", got, want)
	}
}

func TestRampingVUs_ReachesStageTargets(t *testing.T) {
	c := newConcurrency()
	var afterDown atomic.Int64
	stages := []Stage{
		{Duration: dur(60 * time.Millisecond), Target: 3},
		{Duration: dur(30 * time.Millisecond), Target: 3},
		{Duration: dur(30 * time.Millisecond), Target: 1},
		{Duration: dur(30 * time.Millisecond), Target: 1},
		{Duration: 0, Target: 2},
		{Duration: dur(30 * time.Millisecond), Target: 2},
	}
	opts, reg := one(Scenario{Executor: RampingVUs, StartVUs: intPtr(0), Stages: stages}, func(ctx context.Context, vu *VU) error {
		if vu.Iteration > 0 {
			afterDown.Add(1)
		}
		return c.untilDrained(ctx, vu)
	})
	sum := run(t, opts, reg)
	if p := c.peak.Load(); p != 3 {
		t.Errorf("peak concurrent VUs = %d, want 3", p)
	}
	// Three activations on the way up; the ramp-down to 1 drains two of
	// them; the jump to 2 activates one of those again.
	if got := value(t, sum, "iterations", "count"); got != 4 {
		t.Errorf("iterations = %v, want 4", got)
	}
	if afterDown.Load() != 1 {
		t.Errorf("re-activated VUs = %d, want 1", afterDown.Load())
	}
	if got := value(t, sum, "vus_max", "value"); got != 3 {
		t.Errorf("vus_max = %v, want 3", got)
	}
}

func TestConstantArrivalRate_CountsDroppedIterations(t *testing.T) {
	c := newConcurrency()
	// 200/s for 250 ms schedules 50 iterations; each holds its VU to the end,
	// so only maxVUs of them can start and the rest are dropped.
	opts, reg := one(Scenario{
		Executor: ConstantArrivalRate, Rate: 200, Duration: dur(250 * time.Millisecond),
		PreAllocatedVUs: 2, MaxVUs: 3,
	}, c.untilDrained)
	sum := run(t, opts, reg)
	if got := value(t, sum, "iterations", "count"); got != 3 {
		t.Errorf("iterations = %v, want 3 (maxVUs)", got)
	}
	if got := value(t, sum, "dropped_iterations", "count"); got != 47 {
		t.Errorf("dropped_iterations = %v, want 47", got)
	}
	if got := value(t, sum, "vus_max", "value"); got != 3 {
		t.Errorf("vus_max = %v, want 3", got)
	}
}

func TestConstantArrivalRate_StartsScheduledCount(t *testing.T) {
	var n atomic.Int64
	opts, reg := one(Scenario{
		Executor: ConstantArrivalRate, Rate: 10, TimeUnit: dur(100 * time.Millisecond),
		Duration: dur(300 * time.Millisecond), PreAllocatedVUs: 2, MaxVUs: 30,
	}, func(context.Context, *VU) error { n.Add(1); return nil })
	sum := run(t, opts, reg)
	if n.Load() != 30 {
		t.Errorf("iterations run = %d, want 30 (10 per 100 ms for 300 ms)", n.Load())
	}
	if _, ok := sum.Metrics["dropped_iterations"]; ok {
		t.Errorf("dropped_iterations recorded with maxVUs equal to the whole schedule")
	}
}

func TestGracefulStop_InterruptsAndDoesNotCountIteration(t *testing.T) {
	var interrupted atomic.Bool
	opts, reg := one(Scenario{
		Executor: ConstantVUs, VUs: 1, Duration: dur(20 * time.Millisecond), GracefulStop: durPtr(20 * time.Millisecond),
	}, func(ctx context.Context, _ *VU) error {
		<-ctx.Done() // ignores Draining, so only the hard stop ends it
		interrupted.Store(true)
		return ctx.Err()
	})
	sum := run(t, opts, reg)
	if !interrupted.Load() {
		t.Fatal("iteration was not interrupted after gracefulStop")
	}
	if _, ok := sum.Metrics["iterations"]; ok {
		t.Errorf("interrupted iteration was counted: %v", sum.Metrics["iterations"].Values)
	}
}

func TestRun_VUIDsAreUniqueAcrossScenariosAndSeedsFixed(t *testing.T) {
	var mu sync.Mutex
	draws := map[int]uint64{}
	exec := ExecFunc(func(_ context.Context, vu *VU) error {
		mu.Lock()
		defer mu.Unlock()
		if _, dup := draws[vu.ID]; dup {
			t.Errorf("VU id %d used twice", vu.ID)
		}
		draws[vu.ID] = vu.Rand.Uint64()
		return nil
	})
	reg := Registry{"e": func(*Env, json.RawMessage) (Exec, error) { return exec, nil }}
	opts := Options{Scenarios: map[string]Scenario{
		"a": {Executor: PerVUIterations, VUs: 2, Exec: "e", Seed: 7},
		"b": {Executor: PerVUIterations, VUs: 3, Exec: "e", Seed: 7},
	}}
	run(t, opts, reg)
	first := maps.Clone(draws)
	clear(draws)
	run(t, opts, reg)
	if !maps.Equal(first, draws) || len(first) != 5 {
		t.Errorf("VU ids and draws differ between runs or are not 1..5:\n%v\n%v", first, draws)
	}
	for id := 1; id <= 5; id++ {
		if _, ok := first[id]; !ok {
			t.Errorf("VU id %d not used; ids must be 1..5 (a: 1-2, b: 3-5)", id)
		}
	}
}

type lifecycle struct {
	setups, teardowns atomic.Int64
	setupErr          error
}

func (l *lifecycle) Setup(context.Context) error                 { l.setups.Add(1); return l.setupErr }
func (l *lifecycle) Iterate(context.Context, *VU) error          { return nil }
func (l *lifecycle) Teardown(context.Context) error              { l.teardowns.Add(1); return nil }
func (l *lifecycle) factory(*Env, json.RawMessage) (Exec, error) { return l, nil }

func TestRun_SetupFailureStopsAndTearsDownEarlierScenarios(t *testing.T) {
	good, bad := &lifecycle{}, &lifecycle{setupErr: errors.New("boom")}
	opts := Options{Logger: quiet(), Scenarios: map[string]Scenario{
		"a": {Executor: PerVUIterations, Exec: "good"},
		"b": {Executor: PerVUIterations, Exec: "bad"},
	}}
	_, err := Run(context.Background(), opts, Registry{"good": good.factory, "bad": bad.factory})
	if !errors.Is(err, ErrSetup) {
		t.Fatalf("Run error = %v, want ErrSetup", err)
	}
	if good.setups.Load() != 1 || good.teardowns.Load() != 1 || bad.teardowns.Load() != 0 {
		t.Errorf("setups/teardowns: good %d/%d, bad %d/%d; want 1/1 and 1/0",
			good.setups.Load(), good.teardowns.Load(), bad.setups.Load(), bad.teardowns.Load())
	}
}

func TestRun_CancelledContextReturnsInterruptedWithSummary(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts, reg := one(Scenario{Executor: ConstantVUs, VUs: 2, Duration: dur(time.Minute)}, func(ctx context.Context, vu *VU) error {
		cancel()
		<-ctx.Done()
		return nil
	})
	opts.Logger = quiet()
	sum, err := Run(ctx, opts, reg)
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("Run error = %v, want ErrInterrupted", err)
	}
	if sum.Metrics == nil {
		t.Error("interrupted run returned no summary")
	}
}

func TestRun_RejectsBadOptions(t *testing.T) {
	noop := ExecFunc(func(context.Context, *VU) error { return nil })
	reg := Registry{"e": func(*Env, json.RawMessage) (Exec, error) { return noop, nil }}
	cases := []struct {
		name string
		sc   Scenario
		th   map[string][]Threshold
		want error
	}{
		{"unknown executor", Scenario{Executor: "shared-iterations", Exec: "e"}, nil, ErrBadOptions},
		{"missing duration", Scenario{Executor: ConstantVUs, Exec: "e"}, nil, ErrBadOptions},
		{"arrival rate without VUs", Scenario{Executor: ConstantArrivalRate, Exec: "e", Rate: 5, Duration: dur(time.Second)}, nil, ErrBadOptions},
		{"maxVUs below preallocated", Scenario{Executor: ConstantArrivalRate, Exec: "e", Rate: 5, Duration: dur(time.Second), PreAllocatedVUs: 3, MaxVUs: 2}, nil, ErrBadOptions},
		{"ramping without stages", Scenario{Executor: RampingVUs, Exec: "e"}, nil, ErrBadOptions},
		{"unregistered exec", Scenario{Executor: PerVUIterations, Exec: "nope"}, nil, ErrUnknownExec},
		{"threshold on unknown metric", Scenario{Executor: PerVUIterations, Exec: "e"}, map[string][]Threshold{"nope": {{Expr: "count>1"}}}, ErrBadThreshold},
		{"percentile on a counter", Scenario{Executor: PerVUIterations, Exec: "e"}, map[string][]Threshold{"http_reqs": {{Expr: "p(99)<1"}}}, ErrBadThreshold},
		{"bad selector", Scenario{Executor: PerVUIterations, Exec: "e"}, map[string][]Threshold{"http_req_duration{endpoint}": {{Expr: "p(99)<1"}}}, ErrBadThreshold},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(Options{Scenarios: map[string]Scenario{"s": tc.sc}, Thresholds: tc.th}, reg)
			if !errors.Is(err, tc.want) {
				t.Errorf("Validate error = %v, want %v", err, tc.want)
			}
		})
	}
}
