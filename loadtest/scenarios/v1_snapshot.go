package scenarios

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/pulsesync/pulsesync/loadtest"
)

// v1SnapshotExec: Setup commits prefill_rows rows over the users (as
// v1_pull); then every iteration creates a snapshot of the VU's user, reads
// all its chunks (max_rows = limit, capped by the server) and deletes it
// (docs/protocol-v1.md §3.9–§3.11). Snapshot requests refused with 429 are
// retried after Retry-After, as SQLiteNow does when attaching; keep the VUs
// within the server's max_concurrent_snapshot_builds and
// max_concurrent_snapshot_chunk_requests to measure without those waits.
// Metrics: rows_snapshotted (its rate is rows per second),
// http_req_duration{endpoint:v1_snapshot_create|v1_snapshot_chunk}, and the
// checks "v1 snapshot: all rows read" and "v1 snapshot: not empty".
type v1SnapshotExec struct {
	p        Params
	scenario string
	client   *http.Client
	c        *v1Client
	rows     *loadtest.Counter
	read     *loadtest.Rate
	found    *loadtest.Rate
}

func newV1SnapshotExec(env *loadtest.Env, raw json.RawMessage, o Params) (loadtest.Exec, error) {
	p, err := decodeV1Params(raw, o, "limit", "prefill_rows", "prefill_batch", "prefill_concurrency")
	if err != nil {
		return nil, err
	}
	if p.PrefillRows == 0 {
		p.PrefillRows = defaultV1Prefill
	}
	client := newClient(nil, env.MaxVUs, p.Timeout.D())
	m := env.Metrics
	return &v1SnapshotExec{
		p: p, scenario: env.Scenario, client: client, c: newV1Client(p, m, v1Connected(env), client),
		rows:  m.Counter("rows_snapshotted", loadtest.Default, nil),
		read:  m.Check("v1 snapshot: all rows read"),
		found: m.Check("v1 snapshot: not empty"),
	}, nil
}

// Setup prefills the users' rows.
func (x *v1SnapshotExec) Setup(ctx context.Context) error {
	return v1Prefill(ctx, x.p, x.client, x.c.connected, x.scenario)
}

// Iterate reads one whole snapshot.
func (x *v1SnapshotExec) Iterate(ctx context.Context, vu *loadtest.VU) error {
	src := vuSource(x.p, vu)
	if err := x.c.attach(ctx, src); err != nil {
		return err
	}
	got, err := x.c.snapshot(ctx, src, x.p.Limit)
	x.rows.Add(float64(got.Rows))
	x.read.Add(err == nil)
	if err != nil {
		return err
	}
	x.found.Add(got.Rows > 0)
	return nil
}

// Teardown closes idle connections.
func (x *v1SnapshotExec) Teardown(context.Context) error {
	closeIdle(x.client)
	return nil
}
