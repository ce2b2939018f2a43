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
		{"unknown executor", Scenario{Executor: "externally-controlled", Exec: "e"}, nil, ErrBadOptions},
		{"shared iterations fewer than VUs", Scenario{Executor: SharedIterations, Exec: "e", VUs: 3, Iterations: 2}, nil, ErrBadOptions},
		{"ramping arrival rate without stages", Scenario{Executor: RampingArrivalRate, Exec: "e", PreAllocatedVUs: 1}, nil, ErrBadOptions},
		{"ramping arrival rate without VUs", Scenario{Executor: RampingArrivalRate, Exec: "e", Stages: []Stage{{dur(time.Second), 5}}}, nil, ErrBadOptions},
		{"negative start rate", Scenario{Executor: RampingArrivalRate, Exec: "e", StartRate: -1, PreAllocatedVUs: 1, Stages: []Stage{{dur(time.Second), 5}}}, nil, ErrBadOptions},
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

func TestArrivalSchedule_OffsetsFollowTheRate(t *testing.T) {
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	offsets := func(a arrivalSchedule) []time.Duration {
		var out []time.Duration
		for k := 0; ; k++ {
			at, ok := a.offset(k)
			if !ok {
				return out
			}
			out = append(out, at)
		}
	}
	near := func(got, want []time.Duration) bool {
		if len(got) != len(want) {
			return false
		}
		for i := range got {
			if d := got[i] - want[i]; d > time.Microsecond || d < -time.Microsecond {
				return false
			}
		}
		return true
	}
	cases := []struct {
		name  string
		sc    Scenario
		want  []time.Duration
		total time.Duration
	}{
		{
			// 4 per 100 ms for 250 ms: 10 iterations, one every 25 ms.
			name: "constant", sc: Scenario{Executor: ConstantArrivalRate, Rate: 4, TimeUnit: dur(100 * time.Millisecond), Duration: dur(250 * time.Millisecond)},
			want:  []time.Duration{0, ms(25), ms(50), ms(75), ms(100), ms(125), ms(150), ms(175), ms(200), ms(225)},
			total: ms(250),
		},
		{
			// From 0 to 8/s over 1 s, then 8/s for 0.5 s: due(t) = 4t² in the ramp (4 due at
			// 1 s), then 4 more at 1/8 s intervals.
			name: "ramp up then hold", sc: Scenario{Executor: RampingArrivalRate, TimeUnit: dur(time.Second),
				Stages: []Stage{{dur(time.Second), 8}, {dur(500 * time.Millisecond), 8}}},
			want:  []time.Duration{0, ms(500), ms(707.10678), ms(866.02540), ms(1000), ms(1125), ms(1250), ms(1375)},
			total: ms(1500),
		},
		{
			// From 4/s down to 0 over 1 s: due(t) = 4t − 2t², 2 in all, the second at 0.2929 s.
			name: "ramp down", sc: Scenario{Executor: RampingArrivalRate, StartRate: 4, TimeUnit: dur(time.Second),
				Stages: []Stage{{dur(time.Second), 0}}},
			want:  []time.Duration{0, ms(292.89322)},
			total: ms(1000),
		},
		{
			// A stage at rate 0 starts nothing; a zero-length stage jumps.
			name: "idle then jump", sc: Scenario{Executor: RampingArrivalRate, TimeUnit: dur(time.Second),
				Stages: []Stage{{dur(time.Second), 0}, {0, 10}, {dur(300 * time.Millisecond), 10}}},
			want:  []time.Duration{ms(1000), ms(1100), ms(1200)},
			total: ms(1300),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := scheduleOf(tc.sc)
			if got := offsets(a); !near(got, tc.want) {
				t.Errorf("offsets = %v, want %v", got, tc.want)
			}
			if a.length() != tc.total {
				t.Errorf("length = %v, want %v", a.length(), tc.total)
			}
		})
	}
}

func TestRampingArrivalRate_RunsTheSchedulesCount(t *testing.T) {
	var ran atomic.Int64
	// From 0 to 400/s over 100 ms then 400/s for 100 ms: 20 + 40 iterations.
	opts, reg := one(Scenario{
		Executor: RampingArrivalRate, PreAllocatedVUs: 2, MaxVUs: 60,
		Stages: []Stage{{dur(100 * time.Millisecond), 400}, {dur(100 * time.Millisecond), 400}},
	}, func(context.Context, *VU) error {
		ran.Add(1)
		return nil
	})
	sum := run(t, opts, reg)
	if got := value(t, sum, "iterations", "count"); got != 60 || ran.Load() != 60 {
		t.Errorf("iterations = %v (ran %d), want 60", got, ran.Load())
	}
	if _, ok := sum.Metrics["dropped_iterations"]; ok {
		t.Errorf("dropped_iterations = %v, want none", sum.Metrics["dropped_iterations"].Values)
	}
}

func TestSharedIterations_VUsShareOnePool(t *testing.T) {
	c := newConcurrency()
	var entered sync.WaitGroup
	entered.Add(3)
	// Every VU's first iteration waits until all three have one, so each VU runs at least
	// one; the pool of 10 is then shared (per-VU pools would run 30).
	opts, reg := one(Scenario{Executor: SharedIterations, VUs: 3, Iterations: 10}, func(_ context.Context, vu *VU) error {
		defer c.enter(vu)()
		if vu.Iteration == 0 {
			entered.Done()
			entered.Wait()
		}
		return nil
	})
	sum := run(t, opts, reg)
	if got := value(t, sum, "iterations", "count"); got != 10 {
		t.Errorf("iterations = %v, want 10", got)
	}
	total := 0
	for _, its := range c.perVU {
		total += len(its)
	}
	if total != 10 || len(c.perVU) != 3 {
		t.Errorf("iterations per VU = %v, want 10 in all over 3 VUs", c.perVU)
	}
}

func TestSharedIterations_CountsWhatMaxDurationLeftAsDropped(t *testing.T) {
	opts, reg := one(Scenario{Executor: SharedIterations, VUs: 2, Iterations: 50, MaxDuration: dur(50 * time.Millisecond),
		GracefulStop: durPtr(0)}, func(ctx context.Context, vu *VU) error {
		<-vu.Draining().Done()
		return nil
	})
	sum := run(t, opts, reg)
	// Each VU takes one iteration and holds it to the end; the other 48 never start.
	if got := value(t, sum, "dropped_iterations", "count"); got != 48 {
		t.Errorf("dropped_iterations = %v, want 48", got)
	}
}

// A scenario's env reaches its exec as Env.Vars, as k6 hands a scenario's env to its script,
// and its tags mark every sample it records, beside scenario:<name>.
func TestScenario_EnvAndTagsReachTheExecAndItsSamples(t *testing.T) {
	vars := map[string]map[string]string{} // scenario → its Env.Vars
	reg := Registry{"e": func(env *Env, _ json.RawMessage) (Exec, error) {
		vars[env.Scenario] = env.Vars
		hits := env.Metrics.Counter("hits", Default, nil)
		return ExecFunc(func(context.Context, *VU) error { hits.Add(1); return nil }), nil
	}}
	sc := Scenario{Executor: PerVUIterations, Exec: "e", VUs: 2, Iterations: 3, Env: map[string]string{"TARGET": "staging"}, Tags: Tags{"team": "sync"}}
	other := Scenario{Executor: PerVUIterations, Exec: "e", VUs: 1, Iterations: 1}
	sum := run(t, Options{
		Scenarios: map[string]Scenario{"a": other, "s": sc},
		Thresholds: map[string][]Threshold{
			"hits{team:sync}":            {{Expr: "count==6"}},
			"hits{scenario:s,team:sync}": {{Expr: "count==6"}},
			"hits{scenario:a}":           {{Expr: "count==1"}},
			"iterations{scenario:s}":     {{Expr: "count==6"}},
		},
	}, reg)
	if !sum.Passed() {
		t.Errorf("tag thresholds failed: %+v", sum.Metrics)
	}
	if vars["s"]["TARGET"] != "staging" || vars["a"] != nil {
		t.Errorf("Env.Vars = %v, want TARGET=staging for s and none for a", vars)
	}
}
