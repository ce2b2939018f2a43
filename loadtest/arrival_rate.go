package loadtest

import (
	"context"
	"math"
	"sync"
	"time"
)

// arrivalSchedule is when the iterations of an arrival-rate executor start: segments of
// linearly changing rate, in iterations per timeUnit. ramping-arrival-rate goes from startRate
// to each stage's target over the stage, as in k6; constant-arrival-rate is one flat segment.
type arrivalSchedule struct {
	timeUnit time.Duration
	segments []rateSegment
}

// rateSegment is a stretch of time over which the rate goes linearly from one value to another.
type rateSegment struct {
	length   time.Duration
	from, to float64
}

// scheduleOf returns the arrival schedule of an arrival-rate scenario.
func scheduleOf(s Scenario) arrivalSchedule {
	a := arrivalSchedule{timeUnit: s.TimeUnit.D()}
	if s.Executor == ConstantArrivalRate {
		a.segments = []rateSegment{{s.Duration.D(), s.Rate, s.Rate}}
		return a
	}
	from := s.StartRate
	for _, st := range s.Stages {
		a.segments = append(a.segments, rateSegment{st.Duration.D(), from, float64(st.Target)})
		from = float64(st.Target)
	}
	return a
}

// length is the schedule's whole duration.
func (a arrivalSchedule) length() time.Duration {
	var total time.Duration
	for _, sg := range a.segments {
		total += sg.length
	}
	return total
}

// offset returns when iteration k (from 0) starts, from the scenario's start: the moment the
// number of iterations due, the integral of the rate, reaches k. ok is false when the schedule
// ends before that, so the schedule holds every k below its total integral.
func (a arrivalSchedule) offset(k int) (at time.Duration, ok bool) {
	var begin time.Duration
	done := 0.0
	for _, sg := range a.segments {
		length := float64(sg.length) / float64(a.timeUnit) // in time units
		n := (sg.from + sg.to) / 2 * length                // iterations due over the segment
		if y := float64(k) - done; y < n {
			// Solve from·τ + (to−from)·τ²/(2·length) = y for τ in [0, length), in the form
			// that stays exact when the rate is flat (to = from) or starts at 0.
			tau := 0.0
			if den := sg.from + math.Sqrt(sg.from*sg.from+2*(sg.to-sg.from)/length*y); y > 0 && den > 0 {
				tau = 2 * y / den
			}
			return begin + time.Duration(tau*float64(a.timeUnit)), true
		}
		done += n
		begin += sg.length
	}
	return 0, false
}

// arrivalRate starts iteration k at the schedule's offset k, whatever the iterations'
// durations. An iteration goes to an idle VU; when none is idle a new VU is
// allocated up to maxVUs and takes it at once (k6 drops the iteration while it allocates in the
// background; allocating a VU here costs a goroutine, so nothing is lost by starting it
// directly); beyond maxVUs the iteration is counted in dropped_iterations and not run. When the
// dispatcher falls behind (a busy machine), due iterations are started in a burst, so
// iterations + dropped_iterations always equals the schedule's count.
func (s *scenarioRun) arrivalRate(hard, drain context.Context, wg *sync.WaitGroup) {
	sched := scheduleOf(s.cfg)
	length := sched.length()
	idle := make(chan struct{}) // unbuffered: a send succeeds only if a VU waits
	allocated := 0
	spawn := func(withIteration bool) {
		vu := s.newVU(allocated, drain)
		allocated++
		s.vus.allocate(1)
		wg.Go(func() {
			s.vus.active.Add(1)
			defer s.vus.active.Add(-1)
			if withIteration {
				s.iterate(hard, vu)
			}
			for {
				select {
				case <-idle:
					s.iterate(hard, vu)
				case <-drain.Done():
					return
				}
			}
		})
	}
	for range s.cfg.PreAllocatedVUs {
		spawn(false)
	}

	start := time.Now()
	for k := 0; ; k++ {
		at, ok := sched.offset(k)
		if !ok {
			break
		}
		if !sleep(hard, time.Until(start.Add(at))) {
			return
		}
		select {
		case idle <- struct{}{}:
		default:
			if allocated < s.cfg.MaxVUs {
				spawn(true)
			} else {
				s.dropped.Add(1)
			}
		}
	}
	sleep(hard, time.Until(start.Add(length)))
}
