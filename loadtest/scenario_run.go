package loadtest

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// scenarioRun drives one scenario: it owns the scenario's VU goroutines and
// accounts for their iterations.
type scenarioRun struct {
	name    string
	cfg     Scenario
	exec    Exec
	firstID int // VU id of IDInScenario 1
	log     *slog.Logger
	vus     *vuCounts
	ctl     *Control // nil when nothing steers the test

	iterations *Counter
	iterDur    *Trend
	dropped    *Counter
	errors     *Counter

	failed   atomic.Int64
	errMu    sync.Mutex
	firstErr error
}

// vuCounts tracks, for the whole run, the VUs alive now and ever allocated,
// and the iterations that ended, for the progress line.
type vuCounts struct {
	active      atomic.Int64
	allocated   atomic.Int64
	vusMax      *Gauge
	completed   atomic.Int64
	interrupted atomic.Int64
}

func (c *vuCounts) allocate(n int) {
	c.vusMax.Set(float64(c.allocated.Add(int64(n))))
}

func newScenarioRun(name string, cfg Scenario, exec Exec, firstID int, m *Metrics, vus *vuCounts, ctl *Control, log *slog.Logger) *scenarioRun {
	tags := Tags{"scenario": name}
	return &scenarioRun{
		name: name, cfg: cfg, exec: exec, firstID: firstID, vus: vus, ctl: ctl,
		log:        log.With("scenario", name),
		iterations: m.Counter("iterations", Default, tags),
		iterDur:    m.Trend("iteration_duration", Time, tags),
		dropped:    m.Counter("dropped_iterations", Default, tags),
		errors:     m.Counter("iteration_errors", Default, tags),
	}
}

func (s *scenarioRun) newVU(idx int, drain context.Context) *VU {
	id := s.firstID + idx
	return &VU{
		ID:           id,
		IDInScenario: idx + 1,
		Rand:         rand.New(rand.NewPCG(s.cfg.Seed, uint64(id))),
		drain:        drain,
	}
}

// iterate runs one iteration of vu, once the test is not paused. As in k6, an iteration
// cut short by ctx (gracefulStop over, test aborted) is not counted in iterations.
func (s *scenarioRun) iterate(ctx context.Context, vu *VU) {
	if s.ctl != nil && !s.ctl.waitResumed(ctx, vu.drain) {
		return
	}
	start := time.Now()
	err := s.exec.Iterate(ctx, vu)
	vu.Iteration++
	if ctx.Err() != nil {
		s.vus.interrupted.Add(1)
		return
	}
	s.vus.completed.Add(1)
	s.iterations.Add(1)
	s.iterDur.AddDuration(time.Since(start))
	if err != nil {
		s.errors.Add(1)
		if s.failed.Add(1) == 1 {
			s.errMu.Lock()
			s.firstErr = err
			s.errMu.Unlock()
			s.log.Warn("iteration failed; later failures are only counted", "vu", vu.ID, "err", err)
		}
	}
}

// run executes the scenario's schedule, then lets running iterations finish
// within gracefulStop before interrupting them. It returns when every VU
// goroutine has ended.
func (s *scenarioRun) run(ctx context.Context) {
	hard, hardStop := context.WithCancel(ctx)
	defer hardStop()
	drain, startDrain := context.WithCancel(hard)
	defer startDrain()
	var wg sync.WaitGroup
	switch s.cfg.Executor {
	case ConstantVUs:
		s.constantVUs(hard, drain, &wg)
	case PerVUIterations:
		s.perVUIterations(hard, drain, &wg)
	case RampingVUs:
		s.rampingVUs(hard, drain, &wg)
	case SharedIterations:
		s.sharedIterations(hard, drain, &wg)
	case ConstantArrivalRate, RampingArrivalRate:
		s.arrivalRate(hard, drain, &wg)
	case ExternallyControlled:
		s.externallyControlled(hard, drain, &wg)
	}
	startDrain()

	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	grace := time.NewTimer(s.cfg.GracefulStop.D())
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		hardStop()
		<-done
	}
}

// sleep waits for d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// loopVU runs iterations of vu while more allows and the VU is not draining.
func (s *scenarioRun) loopVU(hard context.Context, vu *VU, more func() bool) {
	s.vus.active.Add(1)
	defer s.vus.active.Add(-1)
	for vu.drain.Err() == nil && more() {
		s.iterate(hard, vu)
	}
}

func (s *scenarioRun) constantVUs(hard, drain context.Context, wg *sync.WaitGroup) {
	s.vus.allocate(s.cfg.VUs)
	for i := range s.cfg.VUs {
		vu := s.newVU(i, drain)
		wg.Go(func() { s.loopVU(hard, vu, func() bool { return true }) })
	}
	sleep(hard, s.cfg.Duration.D())
}

func (s *scenarioRun) perVUIterations(hard, drain context.Context, wg *sync.WaitGroup) {
	s.iterationsBounded(hard, drain, wg, func(vu *VU) bool { return vu.Iteration < int64(s.cfg.Iterations) })
}

// sharedIterations lets the VUs take iterations from one pool until it is empty, so a fast VU
// runs more of them than a slow one; the pool's iterations left at maxDuration count in
// dropped_iterations, as in k6.
func (s *scenarioRun) sharedIterations(hard, drain context.Context, wg *sync.WaitGroup) {
	var (
		mu     sync.Mutex
		taken  int
		closed bool // maxDuration passed: nothing more is taken
	)
	s.iterationsBounded(hard, drain, wg, func(*VU) bool {
		mu.Lock()
		defer mu.Unlock()
		if closed || taken == s.cfg.Iterations {
			return false
		}
		taken++
		return true
	})
	mu.Lock()
	closed = true
	left := s.cfg.Iterations - taken
	mu.Unlock()
	if left > 0 {
		s.dropped.Add(float64(left))
	}
}

// iterationsBounded runs the scenario's VUs while more allows, and returns once every VU is
// done or maxDuration has passed (run then drains the VUs).
func (s *scenarioRun) iterationsBounded(hard, drain context.Context, wg *sync.WaitGroup, more func(*VU) bool) {
	s.vus.allocate(s.cfg.VUs)
	for i := range s.cfg.VUs {
		vu := s.newVU(i, drain)
		wg.Go(func() { s.loopVU(hard, vu, func() bool { return more(vu) }) })
	}
	allDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(allDone)
	}()
	maxDur := time.NewTimer(s.cfg.MaxDuration.D())
	defer maxDur.Stop()
	select {
	case <-allDone:
	case <-maxDur.C:
	case <-hard.Done():
	}
}
