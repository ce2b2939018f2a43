package scenarios

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/pulsesync/pulsesync/loadtest"
)

// uploadExec: every iteration POSTs one batch of p.Batch INSERTs of new
// business.users rows from the VU's device. Metrics: changes_uploaded
// (applied changes; its rate is changes per second), http_req_duration
// {endpoint:upload}, and the upload checks.
type uploadExec struct {
	p      Params
	client *http.Client
	up     *uploader
}

func newUploadExec(env *loadtest.Env, raw json.RawMessage, o Params) (loadtest.Exec, error) {
	p, err := decodeParams(raw, o, "batch", "prefill_rows", "prefill_batch", "prefill_concurrency")
	if err != nil {
		return nil, err
	}
	client := newClient(nil, env.MaxVUs, p.Timeout.D())
	return &uploadExec{p: p, client: client, up: newUploader(p, env.Metrics, client)}, nil
}

// Setup prefills when prefill_rows is set.
func (x *uploadExec) Setup(ctx context.Context) error { return prefill(ctx, x.p, x.client) }

// Iterate uploads one batch.
func (x *uploadExec) Iterate(ctx context.Context, vu *loadtest.VU) error {
	d, ok := vu.Data.(*device)
	if !ok {
		d = newDevice(x.p, x.p.userOf(vu.IDInScenario-1), x.p.device(vu.ID, ""), vu.Rand.Uint64())
		vu.Data = d
	}
	_, _, err := x.up.upload(ctx, d, x.p.Batch)
	return err
}

// Teardown closes idle connections.
func (x *uploadExec) Teardown(context.Context) error {
	closeIdle(x.client)
	return nil
}
