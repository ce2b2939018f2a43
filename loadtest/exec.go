package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
)

// Exec is what one scenario does. The engine calls Setup once, then Iterate
// from every VU of the scenario concurrently, then Teardown once.
type Exec interface {
	// Setup runs before the measured phase (before any scenario starts), so
	// work such as prefilling data does not count against rates. Whatever it
	// prepares must be read-only afterwards: Iterate calls start after Setup
	// returns and may read it without locks. An error aborts the test.
	Setup(ctx context.Context) error
	// Iterate runs one iteration on vu. ctx is cancelled when the iteration
	// must stop at once (gracefulStop over, test aborted); vu.Draining() tells
	// a long-lived iteration that the executor wants it to wind down. A
	// returned error marks the iteration as failed; iterations go on.
	Iterate(ctx context.Context, vu *VU) error
	// Teardown runs after every scenario has ended, when Setup succeeded,
	// even if the test was aborted.
	Teardown(ctx context.Context) error
}

// ExecFunc adapts a plain function to an Exec with no setup or teardown.
type ExecFunc func(ctx context.Context, vu *VU) error

// Setup does nothing.
func (f ExecFunc) Setup(context.Context) error { return nil }

// Iterate calls f.
func (f ExecFunc) Iterate(ctx context.Context, vu *VU) error { return f(ctx, vu) }

// Teardown does nothing.
func (f ExecFunc) Teardown(context.Context) error { return nil }

// ExecFactory builds a scenario's Exec from its params. It must not do I/O
// (Setup is for that) and should declare every metric it records, so that
// thresholds naming them are validated before the test starts.
type ExecFactory func(env *Env, params json.RawMessage) (Exec, error)

// Registry maps exec names, as used in Scenario.Exec, to their factories.
type Registry map[string]ExecFactory

// Env is what the engine gives an exec about its scenario and the run.
type Env struct {
	// Scenario is the scenario's name.
	Scenario string
	// MaxVUs is the most VUs the scenario can run at once.
	MaxVUs int
	// Metrics is the run's metric set, shared by every scenario, as a view
	// that tags every sample with scenario:<name> and the scenario's Tags.
	Metrics *Metrics
	// Vars are the scenario's env (Scenario.Env); nil when it has none.
	Vars map[string]string
	// Logger is the run's logger.
	Logger *slog.Logger

	run *runShared
}

// runShared is state that lives for one Run and is shared by its scenarios.
type runShared struct {
	mu     sync.Mutex
	shared map[string]any
	notes  []string
}

// Shared returns the run-wide value stored under key, calling create to make
// it on first use. Scenarios that cooperate (listeners and uploaders of a push
// latency test) meet through it; the value must be safe for concurrent use.
func (e *Env) Shared(key string, create func() any) any {
	e.run.mu.Lock()
	defer e.run.mu.Unlock()
	v, ok := e.run.shared[key]
	if !ok {
		v = create()
		e.run.shared[key] = v
	}
	return v
}

// Note adds a line to the end-of-test summary, prefixed with the scenario name.
func (e *Env) Note(format string, args ...any) {
	e.run.mu.Lock()
	defer e.run.mu.Unlock()
	e.run.notes = append(e.run.notes, e.Scenario+": "+fmt.Sprintf(format, args...))
}

// VU is one virtual user of a scenario. A VU runs one iteration at a time, so
// an exec may keep per-VU state in Data without locking.
type VU struct {
	// ID is unique in the run, from 1; scenarios get consecutive blocks of ids
	// in name order, so an id means the same VU in every run of the same options.
	ID int
	// IDInScenario counts from 1 within the scenario.
	IDInScenario int
	// Iteration is the 0-based number of the iteration this VU is running.
	Iteration int64
	// Rand is this VU's random source, seeded from the scenario's seed and ID.
	Rand *rand.Rand
	// Data is the exec's per-VU state; the engine never touches it.
	Data any

	drain context.Context
}

// Draining is done when the executor wants this VU to stop after its current
// iteration: the scenario's schedule ended, or a ramp-down removed the VU.
// Iterations that hold something open until the end (sockets, streams) return
// when it is done.
func (vu *VU) Draining() context.Context { return vu.drain }
