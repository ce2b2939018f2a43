package loadtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// Executor names, as in k6.
const (
	ConstantVUs         = "constant-vus"
	RampingVUs          = "ramping-vus"
	ConstantArrivalRate = "constant-arrival-rate"
	RampingArrivalRate  = "ramping-arrival-rate"
	PerVUIterations     = "per-vu-iterations"
	SharedIterations    = "shared-iterations"
	// ExternallyControlled runs the VUs that Options.Control asks for (k6's REST API).
	ExternallyControlled = "externally-controlled"
)

// Defaults applied by Scenario.withDefaults, as in k6.
const (
	DefaultGracefulStop = 30 * time.Second
	DefaultMaxDuration  = 10 * time.Minute
	DefaultTimeUnit     = time.Second
)

// Options is a whole test: named scenarios and thresholds, in the shape of k6's
// options object ({"scenarios": {...}, "thresholds": {...}}).
type Options struct {
	// Scenarios run concurrently, each from its own startTime. Names are also
	// the order in which VU ids are handed out (sorted), so ids are stable.
	Scenarios map[string]Scenario `json:"scenarios"`
	// Thresholds maps a metric selector ("http_req_duration{endpoint:upload}")
	// to the expressions that must hold at the end of the test.
	Thresholds map[string][]Threshold `json:"thresholds,omitempty"`
	// VUs, Duration, Iterations and Stages are k6's shortcuts for a test of
	// one scenario ("default") running Exec with Params, used when Scenarios
	// is empty: stages make a ramping-vus scenario (vus its startVUs),
	// iterations a shared-iterations one (duration its maxDuration), a
	// duration a constant-vus one, and none of them one VU running one
	// iteration. Exec and Params are not k6's (a k6 script is the exec).
	VUs        int             `json:"vus,omitempty"`
	Duration   Duration        `json:"duration,omitempty"`
	Iterations int             `json:"iterations,omitempty"`
	Stages     []Stage         `json:"stages,omitempty"`
	Exec       string          `json:"exec,omitempty"`
	Params     json.RawMessage `json:"params,omitempty"`
	// SummaryTrendStats are the values the summary shows for trends, in
	// order: avg, min, med, max, count and p(N); nil means avg, min, med,
	// p(90), p(95), p(99), max and count.
	SummaryTrendStats []string `json:"summaryTrendStats,omitempty"`

	// Logger receives progress and error lines; nil means slog.Default().
	Logger *slog.Logger `json:"-"`
	// SampleOut, when set, receives every sample as a line of JSON in k6's
	// JSON output format (k6 run --out json=FILE). It is written from many
	// goroutines under one lock and buffered; Run flushes it at the end.
	SampleOut io.Writer `json:"-"`
	// Progress, when set, receives a progress line every second, each
	// starting with a carriage return so that it overwrites the last, and a
	// final one ending in a newline: for a terminal (k6 shows its progress
	// bar only on one).
	Progress io.Writer `json:"-"`
	// Control, when set, steers the test from outside (k6's REST API): it scales the
	// externally-controlled scenario, pauses, resumes and stops. A test with an
	// externally-controlled scenario needs one.
	Control *Control `json:"-"`
	// Target says what the test runs against (a URL, an embedded deployment and its
	// settings); the summary repeats it so that a figure never loses its context.
	Target string `json:"-"`

	// thresholdEvery is how often abortOnFail thresholds are evaluated during
	// the run; zero means every 2 s as in k6. Only tests shorten it.
	thresholdEvery time.Duration
}

// Scenario is one k6 scenario: an executor with its shape, and the exec that
// every iteration runs. Which fields apply depends on Executor; a zero value
// means the k6 default noted beside the field.
type Scenario struct {
	Executor string `json:"executor"`
	// Exec names the Registry entry that builds this scenario's behaviour.
	Exec string `json:"exec"`
	// Params is handed verbatim to the exec's factory.
	Params json.RawMessage `json:"params,omitempty"`
	// StartTime delays the scenario's start, measured from the start of the test.
	StartTime Duration `json:"startTime,omitempty"`
	// GracefulStop is how long running iterations may finish after the
	// scenario's schedule ends before they are interrupted; nil means 30 s.
	GracefulStop *Duration `json:"gracefulStop,omitempty"`
	// Seed, with the VU id, seeds every VU's random source; 0 is a valid fixed seed.
	Seed uint64 `json:"seed,omitempty"`
	// Tags are added to every sample the scenario records, beside the tag
	// scenario:<name>, so thresholds can select them ("http_reqs{team:sync}").
	Tags Tags `json:"tags,omitempty"`
	// Env are variables the scenario's exec reads from Env.Vars, as k6 hands a
	// scenario's env to its script.
	Env map[string]string `json:"env,omitempty"`

	// VUs: constant-vus, per-vu-iterations and shared-iterations, 0 meaning 1;
	// externally-controlled, the VUs running at the start (0 is allowed).
	VUs int `json:"vus,omitempty"`
	// Duration: constant-vus and constant-arrival-rate, required; externally-controlled,
	// where 0 means until the test is stopped.
	Duration Duration `json:"duration,omitempty"`
	// Iterations: per VU in per-vu-iterations, in all in shared-iterations; 0 means 1.
	Iterations int `json:"iterations,omitempty"`
	// MaxDuration bounds per-vu-iterations and shared-iterations; 0 means 10 min.
	MaxDuration Duration `json:"maxDuration,omitempty"`

	// StartVUs: ramping-vus; nil means 1.
	StartVUs *int `json:"startVUs,omitempty"`
	// Stages: ramping-vus (targets are VUs) and ramping-arrival-rate (targets are
	// iterations per timeUnit); required. Targets are reached linearly over each stage.
	Stages []Stage `json:"stages,omitempty"`
	// GracefulRampDown is how long a VU removed by a ramp-down may finish its
	// iteration before it is interrupted; nil means 30 s.
	GracefulRampDown *Duration `json:"gracefulRampDown,omitempty"`

	// Rate iterations are started per TimeUnit: constant-arrival-rate; required.
	Rate float64 `json:"rate,omitempty"`
	// StartRate is the rate per TimeUnit that ramping-arrival-rate starts from; 0 by default.
	StartRate float64 `json:"startRate,omitempty"`
	// TimeUnit: the arrival-rate executors; 0 means 1 s.
	TimeUnit Duration `json:"timeUnit,omitempty"`
	// PreAllocatedVUs: the arrival-rate executors; required (at least 1).
	PreAllocatedVUs int `json:"preAllocatedVUs,omitempty"`
	// MaxVUs: the arrival-rate executors, 0 meaning PreAllocatedVUs; externally-controlled,
	// the most VUs the control may ask for, 0 meaning VUs.
	MaxVUs int `json:"maxVUs,omitempty"`
}

// Stage is one step of a ramping-vus scenario.
type Stage struct {
	Duration Duration `json:"duration"`
	Target   int      `json:"target"`
}

// ParseOptions decodes a k6-shaped options document. Unknown keys are an error,
// so a misspelt option never silently falls back to a default.
func ParseOptions(data []byte) (Options, error) {
	var o Options
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		return Options{}, fmt.Errorf("%w: decode options: %w", ErrBadOptions, err)
	}
	return o, nil
}

// resolve turns the shortcut options into their scenario, checks the
// options that are not a scenario's, and applies the defaults.
func (o Options) resolve() (Options, error) {
	short := o.VUs != 0 || o.Duration != 0 || o.Iterations != 0 || len(o.Stages) > 0 || o.Exec != "" || len(o.Params) > 0
	switch {
	case short && len(o.Scenarios) > 0:
		return o, fmt.Errorf("%w: vus, duration, iterations, stages, exec and params describe a scenario of their own; "+
			"put them into \"scenarios\" instead", ErrBadOptions)
	case short:
		o.Scenarios = map[string]Scenario{"default": o.shortcut()}
	}
	if err := checkTrendStats(o.SummaryTrendStats); err != nil {
		return o, fmt.Errorf("%w: %w", ErrBadOptions, err)
	}
	return o.withDefaults(), nil
}

// shortcut is the scenario the shortcut options describe, as k6 derives it.
func (o Options) shortcut() Scenario {
	sc := Scenario{Exec: o.Exec, Params: o.Params, VUs: o.VUs}
	switch {
	case len(o.Stages) > 0:
		sc.Executor, sc.Stages, sc.VUs = RampingVUs, o.Stages, 0
		if o.VUs > 0 {
			sc.StartVUs = &o.VUs
		}
	case o.Iterations > 0:
		sc.Executor, sc.Iterations, sc.MaxDuration = SharedIterations, o.Iterations, o.Duration
	case o.Duration > 0:
		sc.Executor, sc.Duration = ConstantVUs, o.Duration
	default:
		sc.Executor, sc.Iterations = SharedIterations, 1
	}
	return sc
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.thresholdEvery <= 0 {
		o.thresholdEvery = 2 * time.Second
	}
	sc := make(map[string]Scenario, len(o.Scenarios))
	for name, s := range o.Scenarios {
		sc[name] = s.withDefaults()
	}
	o.Scenarios = sc
	return o
}

// scenarioNames returns the scenario names in the order VU ids are assigned.
func (o Options) scenarioNames() []string {
	names := make([]string, 0, len(o.Scenarios))
	for n := range o.Scenarios {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (s Scenario) withDefaults() Scenario {
	if s.GracefulStop == nil && s.Executor == ExternallyControlled {
		s.GracefulStop = new(Duration(0)) // as in k6, it has none
	}
	if s.GracefulStop == nil {
		d := Duration(DefaultGracefulStop)
		s.GracefulStop = &d
	}
	switch s.Executor {
	case ConstantVUs:
		if s.VUs == 0 {
			s.VUs = 1
		}
	case PerVUIterations, SharedIterations:
		if s.VUs == 0 {
			s.VUs = 1
		}
		if s.Iterations == 0 {
			s.Iterations = 1
		}
		if s.MaxDuration == 0 {
			s.MaxDuration = Duration(DefaultMaxDuration)
		}
	case RampingVUs:
		if s.StartVUs == nil {
			one := 1
			s.StartVUs = &one
		}
		if s.GracefulRampDown == nil {
			d := Duration(DefaultGracefulStop)
			s.GracefulRampDown = &d
		}
	case ExternallyControlled:
		if s.MaxVUs == 0 {
			s.MaxVUs = s.VUs
		}
	case ConstantArrivalRate, RampingArrivalRate:
		if s.TimeUnit == 0 {
			s.TimeUnit = Duration(DefaultTimeUnit)
		}
		if s.MaxVUs == 0 {
			s.MaxVUs = s.PreAllocatedVUs
		}
	}
	return s
}

// validate checks a scenario that has had withDefaults applied.
func (s Scenario) validate() error {
	if s.Exec == "" {
		return fmt.Errorf("exec is required")
	}
	if s.StartTime < 0 || *s.GracefulStop < 0 {
		return fmt.Errorf("startTime and gracefulStop must not be negative")
	}
	for k, v := range s.Tags {
		if err := checkTag(k, v); err != nil {
			return err
		}
		if k == "scenario" {
			return fmt.Errorf("tag %q is the engine's: it holds the scenario's name", k)
		}
	}
	switch s.Executor {
	case ConstantVUs:
		if s.VUs < 1 || s.Duration <= 0 {
			return fmt.Errorf("%s needs vus >= 1 and a positive duration", s.Executor)
		}
	case PerVUIterations:
		if s.VUs < 1 || s.Iterations < 1 || s.MaxDuration <= 0 {
			return fmt.Errorf("%s needs vus >= 1, iterations >= 1 and a positive maxDuration", s.Executor)
		}
	case SharedIterations:
		if s.VUs < 1 || s.Iterations < s.VUs || s.MaxDuration <= 0 {
			return fmt.Errorf("%s needs vus >= 1, iterations >= vus and a positive maxDuration", s.Executor)
		}
	case RampingVUs:
		if err := s.validateStages(); err != nil {
			return err
		}
		if *s.StartVUs < 0 || *s.GracefulRampDown < 0 {
			return fmt.Errorf("%s: startVUs and gracefulRampDown must not be negative", s.Executor)
		}
		if s.maxVUs() < 1 {
			return fmt.Errorf("%s: no stage and no startVUs asks for a VU", s.Executor)
		}
	case ConstantArrivalRate:
		if s.Rate <= 0 || s.TimeUnit <= 0 || s.Duration <= 0 {
			return fmt.Errorf("%s needs a positive rate, timeUnit and duration", s.Executor)
		}
		return s.validateArrivalVUs()
	case RampingArrivalRate:
		if err := s.validateStages(); err != nil {
			return err
		}
		if s.StartRate < 0 || s.TimeUnit <= 0 {
			return fmt.Errorf("%s needs a positive timeUnit and a startRate not negative", s.Executor)
		}
		return s.validateArrivalVUs()
	case ExternallyControlled:
		if *s.GracefulStop != 0 {
			return fmt.Errorf("%s has no gracefulStop (as in k6): its VUs stop when the test does", s.Executor)
		}
		if s.VUs < 0 || s.MaxVUs < max(s.VUs, 1) || s.Duration < 0 {
			return fmt.Errorf("%s needs vus >= 0, maxVUs >= max(vus, 1) and a duration not negative (0: until stopped)", s.Executor)
		}
	case "":
		return fmt.Errorf("executor is required")
	default:
		return fmt.Errorf("unknown executor %q", s.Executor)
	}
	return nil
}

// checkTag refuses a tag that a selector could not name: empty, or holding
// one of the selector syntax's characters.
func checkTag(k, v string) error {
	if k == "" || v == "" || strings.ContainsAny(k+v, "{},:\"'") {
		return fmt.Errorf("tag %q:%q: keys and values must be non-empty and free of { } , : and quotes", k, v)
	}
	return nil
}

// validateStages checks the stages of a ramping executor.
func (s Scenario) validateStages() error {
	if len(s.Stages) == 0 {
		return fmt.Errorf("%s needs at least one stage", s.Executor)
	}
	for i, st := range s.Stages {
		if st.Target < 0 || st.Duration < 0 {
			return fmt.Errorf("%s: stage %d: target and duration must not be negative", s.Executor, i)
		}
	}
	return nil
}

// validateArrivalVUs checks the VU bounds of an arrival-rate executor.
func (s Scenario) validateArrivalVUs() error {
	if s.PreAllocatedVUs < 1 || s.MaxVUs < s.PreAllocatedVUs {
		return fmt.Errorf("%s needs preAllocatedVUs >= 1 and maxVUs >= preAllocatedVUs", s.Executor)
	}
	return nil
}

// maxVUs is the most VUs the scenario can ever run at once, so the number of
// VU ids reserved for it.
func (s Scenario) maxVUs() int {
	switch s.Executor {
	case RampingVUs:
		m := *s.StartVUs
		for _, st := range s.Stages {
			m = max(m, st.Target)
		}
		return m
	case ConstantArrivalRate, RampingArrivalRate, ExternallyControlled:
		return s.MaxVUs
	default:
		return s.VUs
	}
}
