package scenarios

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/pulsesync/pulsesync/loadtest"
)

// defaultV1Prefill is the prefill_rows of v1_pull and v1_snapshot when
// unset: they need rows to read.
const defaultV1Prefill = 100_000

// v1PullExec: Setup commits prefill_rows rows over the users in bundles of
// prefill_batch rows (v1Prefill, not measured); then every iteration pulls
// the VU's user from checkpoint 0 to its stable_bundle_seq, max_bundles =
// limit per page (docs/protocol-v1.md §3.8). Metrics: rows_pulled (its rate
// is rows per second), http_req_duration{endpoint:v1_pull} per page, and
// the checks "v1 pull: reached stable" and "v1 pull: stream not empty".
type v1PullExec struct {
	p        Params
	scenario string
	client   *http.Client
	c        *v1Client
	rows     *loadtest.Counter
	stable   *loadtest.Rate
	found    *loadtest.Rate
}

func newV1PullExec(env *loadtest.Env, raw json.RawMessage, o Params) (loadtest.Exec, error) {
	p, err := decodeV1Params(raw, o, "limit", "prefill_rows", "prefill_batch", "prefill_concurrency")
	if err != nil {
		return nil, err
	}
	if p.PrefillRows == 0 {
		p.PrefillRows = defaultV1Prefill
	}
	client := newClient(nil, env.MaxVUs, p.Timeout.D())
	m := env.Metrics
	return &v1PullExec{
		p: p, scenario: env.Scenario, client: client, c: newV1Client(p, m, v1Connected(env), client),
		rows:   m.Counter("rows_pulled", loadtest.Default, nil),
		stable: m.Check("v1 pull: reached stable"),
		found:  m.Check("v1 pull: stream not empty"),
	}, nil
}

// Setup prefills the users' histories.
func (x *v1PullExec) Setup(ctx context.Context) error {
	return v1Prefill(ctx, x.p, x.client, x.c.connected, x.scenario)
}

// Iterate pulls the user's whole history.
func (x *v1PullExec) Iterate(ctx context.Context, vu *loadtest.VU) error {
	src := vuSource(x.p, vu)
	if err := x.c.attach(ctx, src); err != nil {
		return err
	}
	rows, _, err := x.c.pullToStable(ctx, src, 0, x.p.Limit)
	x.rows.Add(float64(rows))
	x.stable.Add(err == nil)
	if err != nil {
		return err
	}
	x.found.Add(rows > 0)
	return nil
}

// Teardown closes idle connections.
func (x *v1PullExec) Teardown(context.Context) error {
	closeIdle(x.client)
	return nil
}
