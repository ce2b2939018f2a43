package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/pulsesync/pulsesync/loadtest"
)

// v1Pusher pushes bundles the way SQLiteNow syncs (docs/protocol-v1.md §5.4:
// create → chunks → commit → committed rows read back) and records
// rows_committed (rows of committed bundles; its rate is rows per second),
// bundle_commit_duration (create sent → commit answered, without the read
// back) and the checks "v1 push: committed" (commit answered, every row
// committed) and "v1 push: hash verified" (the rows read back hash to the
// commit's bundle_hash).
type v1Pusher struct {
	c         *v1Client
	rows      *loadtest.Counter
	duration  *loadtest.Trend
	committed *loadtest.Rate
	verified  *loadtest.Rate
}

func newV1Pusher(p Params, env *loadtest.Env, client *http.Client) *v1Pusher {
	m := env.Metrics
	return &v1Pusher{
		c:         newV1Client(p, m, v1Connected(env), client),
		rows:      m.Counter("rows_committed", loadtest.Default, nil),
		duration:  m.Trend("bundle_commit_duration", loadtest.Time, nil),
		committed: m.Check("v1 push: committed"),
		verified:  m.Check("v1 push: hash verified"),
	}
}

// push attaches src if it has not yet, pushes a bundle of n new rows and
// verifies it. The bundle counts as committed even if its verification
// fails; the error says so.
func (u *v1Pusher) push(ctx context.Context, src *v1Source, n int) (v1Push, error) {
	if err := u.c.attach(ctx, src); err != nil {
		return v1Push{}, err
	}
	res, err := u.c.push(ctx, src, n)
	if err == nil && res.Bundle.RowCount != int64(res.Rows) {
		err = fmt.Errorf("bundle %d of source %s: row_count %d for %d rows pushed", res.Bundle.BundleSeq, src.id, res.Bundle.RowCount, res.Rows)
	}
	u.committed.Add(err == nil)
	if res.Bundle.BundleSeq == 0 {
		return res, err
	}
	u.rows.Add(float64(res.Bundle.RowCount))
	u.duration.AddDuration(res.CommitDone.Sub(res.Start))
	if err != nil {
		return res, err
	}
	err = u.c.verify(ctx, src, res.Bundle)
	u.verified.Add(err == nil)
	return res, err
}

// v1Prefill commits p.PrefillRows new rows as planned by prefillPlan, one
// bundle per job from a source of its own (named for the scenario, so the
// prefills of two scenarios never share a source), p.PrefillConcurrency at
// a time. Its traffic is not measured and its bundles are not read back;
// the users it connects join the run's connected set.
func v1Prefill(ctx context.Context, p Params, client *http.Client, connected *userSet, scenario string) error {
	if p.PrefillRows == 0 {
		return nil
	}
	c := newV1Client(p, loadtest.NewMetrics(), connected, client)
	err := runParallel(ctx, p.PrefillConcurrency, prefillPlan(p, "load-v1-prefill-"+scenario), func(ctx context.Context, j prefillJob) error {
		src := newV1Source(p, j.user, j.writer, j.seed)
		if err := c.attach(ctx, src); err != nil {
			return err
		}
		_, err := c.push(ctx, src, j.n)
		return err
	})
	if err != nil {
		return fmt.Errorf("prefill %d v1 rows: %w", p.PrefillRows, err)
	}
	return nil
}

// vuSource returns the v1 source kept as the VU's state, creating it for the
// VU's user.
func vuSource(p Params, vu *loadtest.VU) *v1Source {
	s, ok := vu.Data.(*v1Source)
	if !ok {
		s = newV1Source(p, p.userOf(vu.IDInScenario-1), p.source(vu.ID, ""), vu.Rand.Uint64())
		vu.Data = s
	}
	return s
}

// v1PushExec: each VU is one source of one user (devices_per_user sources
// per user), and every iteration pushes one bundle of p.Rows new app.users
// rows and reads it back (v1Pusher).
type v1PushExec struct {
	p      Params
	client *http.Client
	up     *v1Pusher
}

func newV1PushExec(env *loadtest.Env, raw json.RawMessage, o Params) (loadtest.Exec, error) {
	p, err := decodeV1Params(raw, o, "rows")
	if err != nil {
		return nil, err
	}
	client := newClient(nil, env.MaxVUs, p.Timeout.D())
	return &v1PushExec{p: p, client: client, up: newV1Pusher(p, env, client)}, nil
}

// Setup does nothing: each source attaches on its first iteration.
func (x *v1PushExec) Setup(context.Context) error { return nil }

// Iterate pushes one bundle.
func (x *v1PushExec) Iterate(ctx context.Context, vu *loadtest.VU) error {
	_, err := x.up.push(ctx, vuSource(x.p, vu), x.p.Rows)
	return err
}

// Teardown closes idle connections.
func (x *v1PushExec) Teardown(context.Context) error {
	closeIdle(x.client)
	return nil
}
