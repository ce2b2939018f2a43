package scenarios

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/pulsesync/pulsesync/loadtest"
)

// prefillJob is one request of a prefill (v0: an upload, v1: a bundle): n
// new rows for user from its own writer (device or source), whose row ids
// are seeded with seed.
type prefillJob struct {
	user, writer string
	n            int
	seed         uint64
}

// prefillPlan spreads p.PrefillRows evenly over the pool's users 1 … <users>
// in jobs of at most p.PrefillBatch rows. Each job has its
// own writer <kind>[-<run tag>]-<n>, so jobs of one user can run in parallel
// and none of the VUs' writers has its own rows filtered out of a read.
func prefillPlan(p Params, kind string) []prefillJob {
	var jobs []prefillJob
	for u := range p.Users {
		rows := p.PrefillRows / p.Users
		if u < p.PrefillRows%p.Users {
			rows++
		}
		user := p.user(u)
		for rows > 0 {
			n := min(rows, p.PrefillBatch)
			jobs = append(jobs, prefillJob{user: user, writer: p.writer(kind, len(jobs)+1, ""), n: n, seed: uint64(len(jobs))})
			rows -= n
		}
	}
	return jobs
}

// runParallel calls do for every item with up to n calls in flight and
// returns the first error, after which no further item is started.
func runParallel[T any](ctx context.Context, n int, items []T, do func(context.Context, T) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	queue := make(chan T)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for it := range queue {
				if err := do(ctx, it); err != nil {
					cancel(err)
				}
			}
		})
	}
send:
	for _, it := range items {
		select {
		case queue <- it:
		case <-ctx.Done():
			break send
		}
	}
	close(queue)
	wg.Wait()
	return context.Cause(ctx)
}

// prefill uploads p.PrefillRows new rows as planned by prefillPlan, in
// p.PrefillConcurrency concurrent requests. Its traffic is not measured.
func prefill(ctx context.Context, p Params, client *http.Client) error {
	if p.PrefillRows == 0 {
		return nil
	}
	up := newUploader(p, loadtest.NewMetrics(), client)
	err := runParallel(ctx, p.PrefillConcurrency, prefillPlan(p, "load-prefill"), func(ctx context.Context, j prefillJob) error {
		d := newDevice(p, j.user, j.writer, j.seed)
		out, _, err := up.upload(ctx, d, j.n)
		if err != nil {
			return err
		}
		if len(out.Statuses) != j.n {
			return fmt.Errorf("%d statuses for %d changes", len(out.Statuses), j.n)
		}
		for _, st := range out.Statuses {
			if st.Status != "applied" {
				return fmt.Errorf("change %d of %s: status %q", st.SourceChangeID, j.user, st.Status)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("prefill %d rows: %w", p.PrefillRows, err)
	}
	return nil
}
