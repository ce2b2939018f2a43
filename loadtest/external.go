package loadtest

import (
	"context"
	"sync"
)

// externallyControlled runs the VUs the control asks for, within maxVUs, for the scenario's
// duration (0: until the test is stopped). A VU scaled away finishes its iteration (it sees
// Draining) and is never interrupted; at the end the VUs stop at once, since, as in k6, this
// executor has no gracefulStop.
func (s *scenarioRun) externallyControlled(hard, drain context.Context, wg *sync.WaitGroup) {
	pool := s.startSlots(hard, drain, wg, s.cfg.MaxVUs, -1)
	s.ctl.attach(pool)
	defer pool.close()
	defer s.ctl.detach()
	if d := s.cfg.Duration.D(); d > 0 {
		sleep(hard, d)
		return
	}
	<-hard.Done()
}
