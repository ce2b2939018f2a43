package loadtest

import (
	"fmt"
	"strings"
	"time"
)

// describe says in one line what the scenario's executor does, in the words of k6's
// "scenarios:" header: "10 looping VUs for 30s (exec: upload, gracefulStop: 30s)".
func (s Scenario) describe() string {
	var shape string
	switch s.Executor {
	case ConstantVUs:
		shape = fmt.Sprintf("%d looping VUs for %s", s.VUs, s.Duration)
	case RampingVUs:
		shape = fmt.Sprintf("up to %d looping VUs for %s over %d stages (gracefulRampDown: %s)",
			s.maxVUs(), stagesDuration(s.Stages), len(s.Stages), *s.GracefulRampDown)
	case ConstantArrivalRate:
		shape = fmt.Sprintf("%g iterations/%s for %s (maxVUs: %d-%d)", s.Rate, s.TimeUnit, s.Duration, s.PreAllocatedVUs, s.MaxVUs)
	case RampingArrivalRate:
		shape = fmt.Sprintf("up to %g iterations/%s for %s over %d stages (maxVUs: %d-%d)",
			s.maxTarget(), s.TimeUnit, stagesDuration(s.Stages), len(s.Stages), s.PreAllocatedVUs, s.MaxVUs)
	case SharedIterations:
		shape = fmt.Sprintf("%d iterations shared among %d VUs (maxDuration: %s)", s.Iterations, s.VUs, s.MaxDuration)
	case PerVUIterations:
		shape = fmt.Sprintf("%d iterations for each of %d VUs (maxDuration: %s)", s.Iterations, s.VUs, s.MaxDuration)
	case ExternallyControlled:
		length := "until stopped"
		if s.Duration > 0 {
			length = "for " + s.Duration.String()
		}
		shape = fmt.Sprintf("%d-%d VUs set through the control API, %s", s.VUs, s.MaxVUs, length)
	default:
		shape = s.Executor
	}
	extra := []string{"exec: " + s.Exec}
	if s.StartTime > 0 {
		extra = append(extra, "startTime: "+s.StartTime.String())
	}
	extra = append(extra, "gracefulStop: "+s.GracefulStop.String())
	return fmt.Sprintf("%s (%s)", shape, strings.Join(extra, ", "))
}

// maxTarget is the highest rate a ramping-arrival-rate scenario reaches.
func (s Scenario) maxTarget() float64 {
	m := s.StartRate
	for _, st := range s.Stages {
		m = max(m, float64(st.Target))
	}
	return m
}

// stagesDuration is the stages' total length.
func stagesDuration(stages []Stage) Duration {
	var total time.Duration
	for _, st := range stages {
		total += st.Duration.D()
	}
	return Duration(total)
}
