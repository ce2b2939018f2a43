package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/pulsesync/pulsesync/loadtest"
)

// defaultDownloadPrefill is download's prefill_rows when unset: a download
// test needs streams to read.
const defaultDownloadPrefill = 100_000

// downloadExec: every iteration pages the whole stream of the VU's user from
// after=0, following next_after, until a page has has_more=false and fewer
// than limit changes (the Go client's hydration loop, docs/protocol-v0.md §4.5).
// Metrics: changes_downloaded (its rate is changes per second) and
// http_req_duration{endpoint:download} per page.
type downloadExec struct {
	p       Params
	client  *http.Client
	ep      *loadtest.Endpoint
	changes *loadtest.Counter
	status  *loadtest.Rate
	found   *loadtest.Rate
}

func newDownloadExec(env *loadtest.Env, raw json.RawMessage, o Params) (loadtest.Exec, error) {
	p, err := decodeParams(raw, o, "limit", "prefill_rows", "prefill_batch", "prefill_concurrency")
	if err != nil {
		return nil, err
	}
	if p.PrefillRows == 0 {
		p.PrefillRows = defaultDownloadPrefill
	}
	client := newClient(nil, env.MaxVUs, p.Timeout.D())
	m := env.Metrics
	return &downloadExec{
		p: p, client: client,
		ep:      loadtest.NewHTTP(m, client).Endpoint(loadtest.Tags{"endpoint": "download"}),
		changes: m.Counter("changes_downloaded", loadtest.Default, nil),
		status:  m.Check("download: status 200"),
		found:   m.Check("download: stream not empty"),
	}, nil
}

// Setup prefills the users' streams.
func (x *downloadExec) Setup(ctx context.Context) error { return prefill(ctx, x.p, x.client) }

// Iterate downloads the user's whole stream.
func (x *downloadExec) Iterate(ctx context.Context, vu *loadtest.VU) error {
	cred := vuCredential(x.p, vu)
	var after int64
	total := 0
	for {
		bearer, err := cred.bearer(time.Now())
		if err != nil {
			return err
		}
		page, _, err := getDownload(ctx, x.ep, x.p, bearer, after, x.p.Limit)
		x.status.Add(err == nil)
		if err != nil {
			return err
		}
		n := len(page.Changes)
		total += n
		x.changes.Add(float64(n))
		if !page.HasMore && n < x.p.Limit {
			break
		}
		if page.NextAfter <= after {
			return fmt.Errorf("download after=%d: next_after %d does not advance", after, page.NextAfter)
		}
		after = page.NextAfter
	}
	x.found.Add(total > 0)
	return nil
}

// Teardown closes idle connections.
func (x *downloadExec) Teardown(context.Context) error {
	closeIdle(x.client)
	return nil
}

// vuCredential returns the credential kept as the VU's state, creating it for
// the VU's user and device.
func vuCredential(p Params, vu *loadtest.VU) *credential {
	c, ok := vu.Data.(*credential)
	if !ok {
		c = newCredential(p, p.userOf(vu.IDInScenario-1), p.device(vu.ID, ""))
		vu.Data = c
	}
	return c
}

// pollExec: every iteration is an empty poll, GET /sync/download with after
// at the user's head, learned once per VU from a first download's
// window_until (tagged endpoint:head). Metric: http_req_duration{endpoint:poll}.
type pollExec struct {
	p      Params
	client *http.Client
	head   *loadtest.Endpoint
	ep     *loadtest.Endpoint
	status *loadtest.Rate
	empty  *loadtest.Rate
}

// pollVU is a poll VU's state.
type pollVU struct {
	cred  *credential
	head  int64
	known bool
}

func newPollExec(env *loadtest.Env, raw json.RawMessage, o Params) (loadtest.Exec, error) {
	p, err := decodeParams(raw, o, "limit", "prefill_rows", "prefill_batch", "prefill_concurrency")
	if err != nil {
		return nil, err
	}
	client := newClient(nil, env.MaxVUs, p.Timeout.D())
	h := loadtest.NewHTTP(env.Metrics, client)
	return &pollExec{
		p: p, client: client,
		head:   h.Endpoint(loadtest.Tags{"endpoint": "head"}),
		ep:     h.Endpoint(loadtest.Tags{"endpoint": "poll"}),
		status: env.Metrics.Check("poll: status 200"),
		empty:  env.Metrics.Check("poll: empty"),
	}, nil
}

// Setup prefills when prefill_rows is set.
func (x *pollExec) Setup(ctx context.Context) error { return prefill(ctx, x.p, x.client) }

// Iterate polls once.
func (x *pollExec) Iterate(ctx context.Context, vu *loadtest.VU) error {
	st, ok := vu.Data.(*pollVU)
	if !ok {
		st = &pollVU{cred: newCredential(x.p, x.p.userOf(vu.IDInScenario-1), x.p.device(vu.ID, ""))}
		vu.Data = st
	}
	bearer, err := st.cred.bearer(time.Now())
	if err != nil {
		return err
	}
	if !st.known {
		first, _, err := getDownload(ctx, x.head, x.p, bearer, 0, 1)
		if err != nil {
			return fmt.Errorf("learn head: %w", err)
		}
		st.head, st.known = first.WindowUntil, true
	}
	page, _, err := getDownload(ctx, x.ep, x.p, bearer, st.head, x.p.Limit)
	x.status.Add(err == nil)
	if err != nil {
		return err
	}
	x.empty.Add(len(page.Changes) == 0)
	return nil
}

// Teardown closes idle connections.
func (x *pollExec) Teardown(context.Context) error {
	closeIdle(x.client)
	return nil
}
