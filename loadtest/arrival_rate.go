package loadtest

import (
	"context"
	"sync"
	"time"
)

// constantArrivalRate starts iteration i at start + i×timeUnit/rate, whatever
// the iterations' durations. An iteration goes to an idle VU; when none is
// idle a new VU is allocated up to maxVUs and takes it at once (k6 drops the
// iteration while it allocates in the background; allocating a VU here costs a
// goroutine, so nothing is lost by starting it directly); beyond maxVUs the
// iteration is counted in dropped_iterations and not run. When the dispatcher
// falls behind (a busy machine), due iterations are started in a burst, so
// iterations + dropped_iterations always equals the schedule's count.
func (s *scenarioRun) constantArrivalRate(hard, drain context.Context, wg *sync.WaitGroup) {
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

	interval := float64(s.cfg.TimeUnit.D()) / s.cfg.Rate
	start := time.Now()
	end := start.Add(s.cfg.Duration.D())
	for i := 0; ; i++ {
		due := start.Add(time.Duration(float64(i) * interval))
		if !due.Before(end) {
			break
		}
		if !sleep(hard, time.Until(due)) {
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
	sleep(hard, time.Until(end))
}
