package scenarios

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/pulsesync/pulsesync/loadtest"
)

// prefill uploads p.PrefillRows new rows, spread evenly over load-user-1 …
// load-user-<users>, in requests of p.PrefillBatch rows with
// p.PrefillConcurrency requests in flight. Each request comes from its own
// device (load-prefill-<n>), so requests of one user can run in parallel and
// none of the VUs' devices has its own changes filtered out of a download.
// Its traffic is not measured.
func prefill(ctx context.Context, p Params, client *http.Client) error {
	if p.PrefillRows == 0 {
		return nil
	}
	type job struct {
		d *device
		n int
	}
	var jobs []job
	for u := range p.Users {
		rows := p.PrefillRows / p.Users
		if u < p.PrefillRows%p.Users {
			rows++
		}
		user := fmt.Sprintf("load-user-%d", u+1)
		for rows > 0 {
			n := min(rows, p.PrefillBatch)
			dev := fmt.Sprintf("load-prefill-%d", len(jobs)+1)
			if p.RunTag != "" {
				dev = fmt.Sprintf("load-prefill-%s-%d", p.RunTag, len(jobs)+1)
			}
			jobs = append(jobs, job{newDevice(p, user, dev, uint64(len(jobs))), n})
			rows -= n
		}
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	up := newUploader(p, loadtest.NewMetrics(), client)
	queue := make(chan job)
	var wg sync.WaitGroup
	for range p.PrefillConcurrency {
		wg.Go(func() {
			for j := range queue {
				out, _, err := up.upload(ctx, j.d, j.n)
				if err == nil && len(out.Statuses) != j.n {
					err = fmt.Errorf("%d statuses for %d changes", len(out.Statuses), j.n)
				}
				for _, st := range out.Statuses {
					if err == nil && st.Status != "applied" {
						err = fmt.Errorf("change %d of %s: status %q", st.SourceChangeID, j.d.cred.user, st.Status)
					}
				}
				if err != nil {
					cancel(err)
				}
			}
		})
	}
send:
	for _, j := range jobs {
		select {
		case queue <- j:
		case <-ctx.Done():
			break send
		}
	}
	close(queue)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("prefill %d rows: %w", p.PrefillRows, err)
	}
	return nil
}
