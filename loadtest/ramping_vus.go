package loadtest

import (
	"context"
	"sync"
	"time"
)

// rampStep sets the number of active VUs at an offset from the scenario start.
type rampStep struct {
	at     time.Duration
	target int
}

// rampSchedule turns stages into the steps at which the VU count changes by
// one: over a stage from a to b VUs, step k of |b−a| happens at k/|b−a| of the
// stage, so each stage's target is reached exactly at its end (at once for a
// zero-length stage). The first step sets startVUs at offset 0.
func rampSchedule(startVUs int, stages []Stage) []rampStep {
	steps := []rampStep{{0, startVUs}}
	cur, begin := startVUs, time.Duration(0)
	for _, st := range stages {
		d := st.Duration.D()
		n := st.Target - cur
		dir := 1
		if n < 0 {
			n, dir = -n, -1
		}
		for k := 1; k <= n; k++ {
			steps = append(steps, rampStep{begin + d*time.Duration(k)/time.Duration(n), cur + dir*k})
		}
		cur, begin = st.Target, begin+d
	}
	return steps
}

// rampSlot is one of a ramping scenario's VUs. While the slot's index is below
// the target it runs iterations; when a ramp-down removes it, its Draining
// context is cancelled at once and its iteration context after gracefulRampDown.
type rampSlot struct {
	idx int
	vu  *VU

	mu          sync.Mutex
	iterCtx     context.Context
	iterCancel  context.CancelFunc
	drainCancel context.CancelFunc
	interrupt   *time.Timer
}

// rampGate publishes the current target to the slots.
type rampGate struct {
	mu      sync.Mutex
	target  int
	changed chan struct{} // closed and replaced on every change
}

func (g *rampGate) get() (int, <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.target, g.changed
}

func (g *rampGate) set(target int) (old int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	old, g.target = g.target, target
	close(g.changed)
	g.changed = make(chan struct{})
	return old
}

func (s *scenarioRun) rampingVUs(hard, drain context.Context, wg *sync.WaitGroup) {
	pool := s.startSlots(hard, drain, wg, s.cfg.maxVUs(), s.cfg.GracefulRampDown.D())
	defer pool.close()
	begin := time.Now()
	for _, st := range rampSchedule(*s.cfg.StartVUs, s.cfg.Stages) {
		if !sleep(hard, time.Until(begin.Add(st.at))) {
			return
		}
		pool.scale(st.target)
	}
	sleep(hard, time.Until(begin.Add(stagesDuration(s.cfg.Stages).D())))
}

// slotPool is a scenario's VUs whose number is set from outside: by the stages of
// ramping-vus, or by the control API of externally-controlled. Every slot has its
// goroutine from the start; the target says how many of them run iterations.
type slotPool struct {
	s     *scenarioRun
	gate  *rampGate
	slots []*rampSlot
	grace time.Duration // a slot scaled away is interrupted after this; negative: never

	mu      sync.Mutex
	current int
	closed  bool // the schedule ended: scale does nothing
}

// startSlots starts n slots, all idle until the first scale.
func (s *scenarioRun) startSlots(hard, drain context.Context, wg *sync.WaitGroup, n int, grace time.Duration) *slotPool {
	s.vus.allocate(n)
	p := &slotPool{s: s, gate: &rampGate{changed: make(chan struct{})}, slots: make([]*rampSlot, n), grace: grace}
	for i := range p.slots {
		p.slots[i] = &rampSlot{idx: i, vu: s.newVU(i, nil)}
		wg.Go(func() { s.runSlot(hard, drain, p.gate, p.slots[i]) })
	}
	return p
}

// scale makes target slots (at most all of them) run iterations; the slots above it drain.
// It is safe to call from any goroutine.
func (p *slotPool) scale(target int) {
	target = min(target, len(p.slots))
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.gate.set(target)
	for _, sl := range p.slots[min(target, p.current):p.current] {
		sl.rampDown(p.grace)
	}
	p.s.vus.active.Add(int64(target - p.current))
	p.current = target
}

// close takes the pool's VUs out of the run's active count once its schedule ended.
func (p *slotPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.s.vus.active.Add(-int64(p.current))
	p.current, p.closed = 0, true
}

// runSlot runs iterations while the slot is within the target.
func (s *scenarioRun) runSlot(hard, drain context.Context, gate *rampGate, sl *rampSlot) {
	defer sl.release()
	for {
		target, changed := gate.get()
		if sl.idx >= target {
			select {
			case <-changed:
				continue
			case <-drain.Done():
				return
			}
		}
		if drain.Err() != nil {
			return
		}
		if ctx, ok := sl.activate(hard, drain, gate); ok {
			s.iterate(ctx, sl.vu)
		}
	}
}

// activate returns the context for the slot's next iteration, starting a
// fresh activation when the previous one was ramped down. It re-reads the
// target under the slot's lock, which rampDown also holds, so a slot is never
// left running an activation that a concurrent ramp-down missed.
func (sl *rampSlot) activate(hard, drain context.Context, gate *rampGate) (context.Context, bool) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if target, _ := gate.get(); sl.idx >= target {
		return nil, false
	}
	if sl.vu.drain != nil && sl.vu.drain.Err() == nil {
		return sl.iterCtx, true
	}
	sl.stopLocked()
	sl.iterCtx, sl.iterCancel = context.WithCancel(hard)
	sl.vu.drain, sl.drainCancel = context.WithCancel(drain)
	return sl.iterCtx, true
}

// rampDown asks the slot's VU to stop after its iteration, and interrupts the
// iteration if it has not ended after grace (never when grace is negative).
func (sl *rampSlot) rampDown(grace time.Duration) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.drainCancel == nil {
		return
	}
	sl.drainCancel()
	if sl.interrupt == nil && grace >= 0 {
		sl.interrupt = time.AfterFunc(grace, sl.iterCancel)
	}
}

func (sl *rampSlot) release() {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	sl.stopLocked()
}

func (sl *rampSlot) stopLocked() {
	if sl.interrupt != nil {
		sl.interrupt.Stop()
		sl.interrupt = nil
	}
	if sl.iterCancel != nil {
		sl.iterCancel()
		sl.drainCancel()
	}
}
