package loadtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
)

// Control steers a running test from outside, as k6's REST API steers k6: it scales the
// externally-controlled scenario's VUs within its maxVUs, pauses and resumes the start of
// iterations in every scenario, and stops the test. Give one to Options.Control and serve
// ControlHandler on an address; one Control serves one Run.
type Control struct {
	mu      sync.Mutex
	plan    *plan // bound by Run from its start until it returns
	ended   bool
	stop    context.CancelFunc
	stopped bool
	log     *slog.Logger
	// The externally-controlled scenario: its VU target, its bound, and its slots while it runs.
	external    string
	vus, maxVUs int
	pool        *slotPool

	// resumed is nil while iterations may start; while paused, a channel closed on resume.
	// It is read without the lock by every iteration.
	resumed atomic.Pointer[chan struct{}]
	parked  atomic.Int64 // VUs waiting for a resume; tests read it to know a pause took hold
}

// ControlStatus is the status the control API reports and k6's `status` prints: the run's
// active VUs and the VUs it has allocated, whether iterations are paused, whether the test was
// stopped, and whether it is running (between its start and the end of its last scenario).
type ControlStatus struct {
	Paused  bool `json:"paused"`
	VUs     int  `json:"vus"`
	VUsMax  int  `json:"vus-max"`
	Stopped bool `json:"stopped"`
	Running bool `json:"running"`
}

// ControlPatch is a change asked of the control API; nil fields are left alone. VUs is the
// externally-controlled scenario's target (0…its maxVUs); VUsMax, when given, must equal that
// maxVUs, which is fixed because VU ids are reserved for each scenario before the test starts.
type ControlPatch struct {
	VUs     *int  `json:"vus,omitempty"`
	VUsMax  *int  `json:"vus-max,omitempty"`
	Paused  *bool `json:"paused,omitempty"`
	Stopped *bool `json:"stopped,omitempty"`
}

// Errors of Control.Apply, for the API to tell a refused change from a test that is not
// there to change.
var (
	// ErrControlRefused: the change is not possible (vus above maxVUs, restarting a stopped test).
	ErrControlRefused = errors.New("change refused")
	// ErrControlNotRunning: no test is running (not started yet, or ended).
	ErrControlNotRunning = errors.New("no test is running")
)

// NewControl returns a Control not yet bound to a run.
func NewControl() *Control { return &Control{} }

// Status returns the current status.
func (c *Control) Status() ControlStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := ControlStatus{Paused: c.resumed.Load() != nil, Stopped: c.stopped, Running: c.plan != nil && !c.ended}
	if c.plan != nil {
		st.VUs, st.VUsMax = int(c.plan.vus.active.Load()), int(c.plan.vus.allocated.Load())
	}
	return st
}

// Apply makes the change, all of it or (with an error) none of it, and returns the new status.
func (c *Control) Apply(p ControlPatch) (ControlStatus, error) {
	if err := c.apply(p); err != nil {
		return ControlStatus{}, err
	}
	return c.Status(), nil
}

func (c *Control) apply(p ControlPatch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.plan == nil || c.ended:
		return ErrControlNotRunning
	case p.Stopped != nil && !*p.Stopped && c.stopped:
		return fmt.Errorf("%w: a stopped test cannot be restarted", ErrControlRefused)
	case (p.VUs != nil || p.VUsMax != nil) && c.external == "":
		return fmt.Errorf("%w: vus and vus-max scale the externally-controlled scenario, and this test has none", ErrControlRefused)
	case p.VUsMax != nil && *p.VUsMax != c.maxVUs:
		return fmt.Errorf("%w: vus-max is scenario %q's maxVUs, %d, fixed for the run", ErrControlRefused, c.external, c.maxVUs)
	case p.VUs != nil && (*p.VUs < 0 || *p.VUs > c.maxVUs):
		return fmt.Errorf("%w: vus %d is outside 0…%d (scenario %q's maxVUs)", ErrControlRefused, *p.VUs, c.maxVUs, c.external)
	}
	if p.VUs != nil {
		c.vus = *p.VUs
		if c.pool != nil {
			c.pool.scale(c.vus)
		}
		c.log.Info("scaled by the control API", "vus", c.vus)
	}
	if p.Paused != nil {
		c.setPausedLocked(*p.Paused)
	}
	if p.Stopped != nil && *p.Stopped && !c.stopped {
		c.stopped = true
		c.log.Info("stopped by the control API")
		c.stop()
	}
	return nil
}

func (c *Control) setPausedLocked(paused bool) {
	switch ch := c.resumed.Load(); {
	case paused && ch == nil:
		c.resumed.Store(new(make(chan struct{})))
	case !paused && ch != nil:
		c.resumed.Store(nil)
		close(*ch)
	}
}

// bind attaches the control to a run that is about to start: stop cancels the run.
func (c *Control) bind(p *plan, stop context.CancelFunc) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.plan != nil {
		return fmt.Errorf("%w: a Control serves one run", ErrBadOptions)
	}
	c.plan, c.stop, c.log = p, stop, p.opts.Logger
	for _, sr := range p.scenarios {
		if sr.cfg.Executor == ExternallyControlled {
			c.external, c.vus, c.maxVUs = sr.name, sr.cfg.VUs, sr.cfg.MaxVUs
			c.log = sr.log
		}
	}
	return nil
}

// end marks the run over and reports whether the control API stopped it.
func (c *Control) end() (stopped bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended = true
	return c.stopped
}

// attach hands the externally-controlled scenario's slots to the control and scales them to
// the current target; detach takes them back when the scenario's schedule ends.
func (c *Control) attach(pool *slotPool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pool = pool
	pool.scale(c.vus)
}

func (c *Control) detach() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pool = nil
}

// waitResumed returns at once when the test is not paused; otherwise it waits for a resume
// and reports false when ctx or drain ended first (the VU must not start an iteration).
func (c *Control) waitResumed(ctx, drain context.Context) bool {
	resumed := c.resumed.Load()
	if resumed == nil {
		return true
	}
	c.parked.Add(1)
	defer c.parked.Add(-1)
	select {
	case <-*resumed:
		return ctx.Err() == nil && drain.Err() == nil
	case <-ctx.Done():
		return false
	case <-drain.Done():
		return false
	}
}
