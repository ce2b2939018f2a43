package loadtest

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Teardowns get this long even when the caller's context is already cancelled.
const teardownTimeout = 30 * time.Second

// plan is a validated test ready to run.
type plan struct {
	opts       Options
	metrics    *Metrics
	shared     *runShared
	vus        *vuCounts
	scenarios  []*scenarioRun
	thresholds []compiledThreshold
}

// Validate checks options against a registry without running anything: every
// scenario is well-formed, names a registered exec whose factory accepts its
// params, and every threshold parses and selects an existing metric.
func Validate(opts Options, reg Registry) error {
	opts.SampleOut = nil // validating records nothing
	opts, err := opts.resolve()
	if err != nil {
		return err
	}
	_, err = prepare(opts, reg)
	return err
}

func prepare(opts Options, reg Registry) (*plan, error) {
	if len(opts.Scenarios) == 0 {
		return nil, fmt.Errorf("%w: no scenarios", ErrBadOptions)
	}
	p := &plan{opts: opts, metrics: NewMetrics(), shared: &runShared{shared: map[string]any{}}}
	p.metrics.set.out = newSampleOut(opts.SampleOut)
	p.vus = &vuCounts{vusMax: p.metrics.Gauge("vus_max", Default, nil)}
	p.metrics.Gauge("vus", Default, nil)
	p.metrics.Rate("checks", nil)
	NewHTTP(p.metrics, nil) // declares the HTTP built-ins so thresholds may name them
	nextID := 1
	for _, name := range opts.scenarioNames() {
		sc := opts.Scenarios[name]
		if err := sc.validate(); err != nil {
			return nil, fmt.Errorf("%w: scenario %q: %w", ErrBadOptions, name, err)
		}
		factory, ok := reg[sc.Exec]
		if !ok {
			return nil, fmt.Errorf("%w: scenario %q: exec %q is not registered", ErrUnknownExec, name, sc.Exec)
		}
		view := p.metrics.WithTags(Tags{"scenario": name}.merge(sc.Tags))
		env := &Env{Scenario: name, MaxVUs: sc.maxVUs(), Metrics: view, Vars: sc.Env, Logger: opts.Logger.With("scenario", name), run: p.shared}
		exec, err := factory(env, sc.Params)
		if err != nil {
			return nil, fmt.Errorf("%w: scenario %q: exec %q: %w", ErrBadOptions, name, sc.Exec, err)
		}
		p.scenarios = append(p.scenarios, newScenarioRun(name, sc, exec, nextID, view, p.vus, opts.Control, opts.Logger))
		nextID += sc.maxVUs()
	}
	if err := checkExternal(opts); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadOptions, err)
	}
	th, err := compileThresholds(p.metrics, opts.Thresholds)
	if err != nil {
		return nil, err
	}
	p.thresholds = th
	return p, nil
}

// checkExternal allows at most one externally-controlled scenario, since the control API's
// vus are one number, and only with a Control to steer it.
func checkExternal(opts Options) error {
	var ext []string
	for _, name := range opts.scenarioNames() {
		if opts.Scenarios[name].Executor == ExternallyControlled {
			ext = append(ext, name)
		}
	}
	switch {
	case len(ext) > 1:
		return fmt.Errorf("scenarios %q are all externally-controlled; the control API scales one", ext)
	case len(ext) == 1 && opts.Control == nil:
		return fmt.Errorf("scenario %q is externally-controlled but nothing controls the test (Options.Control; the binary serves it on --address)", ext[0])
	}
	return nil
}

// Run runs a test: every scenario's Setup (in name order), then all scenarios
// concurrently, each from its startTime, then every Teardown, and returns the
// summary. Counter rates are per second of the measured phase, which excludes
// setup and teardown.
//
// Failed thresholds are reported in the Summary (Summary.Passed), not as an
// error. The error is non-nil when the options are invalid (ErrBadOptions,
// ErrUnknownExec, ErrBadThreshold), a Setup failed (ErrSetup; nothing was
// measured) or ctx was cancelled (ErrInterrupted; the Summary covers what ran).
// A test stopped through Options.Control is not an error: its summary says so.
func Run(ctx context.Context, opts Options, reg Registry) (Summary, error) {
	opts, err := opts.resolve()
	if err != nil {
		return Summary{}, err
	}
	p, err := prepare(opts, reg)
	if err != nil {
		return Summary{}, err
	}
	log := opts.Logger
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	if opts.Control != nil {
		if err := opts.Control.bind(p, cancelRun); err != nil {
			return Summary{}, err
		}
		defer opts.Control.end() // on an early return; a second end changes nothing
	}

	for i, sr := range p.scenarios {
		if err := sr.exec.Setup(ctx); err != nil {
			p.teardown(ctx, p.scenarios[:i])
			return Summary{}, fmt.Errorf("%w: scenario %q: %w", ErrSetup, sr.name, err)
		}
	}

	start := time.Now()
	log.Info("test started", "scenarios", len(p.scenarios))

	var watchers sync.WaitGroup
	stopWatchers := make(chan struct{})
	var aborted string
	watchers.Go(func() { p.sampleVUs(stopWatchers) })
	if opts.Progress != nil {
		watchers.Go(func() { p.showProgress(start, stopWatchers) })
	}
	watchers.Go(func() {
		if reason := p.watchThresholds(start, stopWatchers); reason != "" {
			aborted = reason
			log.Warn("test aborted by threshold", "threshold", reason)
			cancelRun()
		}
	})

	var scenarios sync.WaitGroup
	for _, sr := range p.scenarios {
		scenarios.Go(func() {
			if sleep(runCtx, sr.cfg.StartTime.D()) {
				sr.run(runCtx)
			}
		})
	}
	scenarios.Wait()
	elapsed := time.Since(start)
	close(stopWatchers)
	watchers.Wait()
	log.Info("test finished", "dur_ms", elapsed.Milliseconds())

	if opts.Control != nil && opts.Control.end() {
		p.shared.note("stopped through the control API")
	}
	p.teardown(ctx, p.scenarios)
	if err := p.metrics.set.out.flush(); err != nil {
		p.shared.note(fmt.Sprintf("sample output failed; it holds the samples before the error: %v", err))
	}
	for _, sr := range p.scenarios {
		if n := sr.failed.Load(); n > 0 {
			p.shared.note(fmt.Sprintf("%s: %d iterations failed; the first: %v", sr.name, n, sr.firstErr))
		}
	}
	sum := p.summary(elapsed, aborted)
	if ctx.Err() != nil {
		return sum, fmt.Errorf("%w: %w", ErrInterrupted, context.Cause(ctx))
	}
	return sum, nil
}

// teardown runs Teardown of the given scenarios; failures become notes.
func (p *plan) teardown(ctx context.Context, runs []*scenarioRun) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
	defer cancel()
	for _, sr := range runs {
		if err := sr.exec.Teardown(ctx); err != nil {
			p.opts.Logger.Warn("teardown failed", "scenario", sr.name, "err", err)
			p.shared.note(fmt.Sprintf("%s: teardown failed: %v", sr.name, err))
		}
	}
}

// sampleVUs records the active VU count every second, as k6 does.
func (p *plan) sampleVUs(stop <-chan struct{}) {
	vus := p.metrics.Gauge("vus", Default, nil)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			vus.Set(float64(p.vus.active.Load()))
		case <-stop:
			return
		}
	}
}

// showProgress writes the progress line every second until stopped, then
// the last one with a newline.
func (p *plan) showProgress(start time.Time, stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			fmt.Fprintf(p.opts.Progress, "\r%s", p.progressLine(time.Since(start)))
		case <-stop:
			fmt.Fprintf(p.opts.Progress, "\r%s\n", p.progressLine(time.Since(start)))
			return
		}
	}
}

// progressLine is k6's progress summary: elapsed time, VUs and iterations.
func (p *plan) progressLine(elapsed time.Duration) string {
	return fmt.Sprintf("running (%s), %d/%d VUs, %d complete and %d interrupted iterations",
		elapsed.Round(100*time.Millisecond), p.vus.active.Load(), p.vus.allocated.Load(),
		p.vus.completed.Load(), p.vus.interrupted.Load())
}

// watchThresholds evaluates abortOnFail thresholds periodically and returns
// the first that fails, or "" when stopped.
func (p *plan) watchThresholds(start time.Time, stop <-chan struct{}) string {
	var watched []compiledThreshold
	for _, th := range p.thresholds {
		if th.AbortOnFail {
			watched = append(watched, th)
		}
	}
	if len(watched) == 0 {
		return ""
	}
	t := time.NewTicker(p.opts.thresholdEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-stop:
			return ""
		}
		elapsed := time.Since(start)
		for _, th := range watched {
			if elapsed < th.DelayAbortEval.D() {
				continue
			}
			if r := th.evaluate(elapsed); !r.OK && !r.NoSamples {
				return th.selector + " " + th.Expr
			}
		}
	}
}

func (r *runShared) note(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, line)
}
