package scenarios

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/pulsesync/pulsesync/loadtest"
)

// The JSON shapes of docs/protocol-v0.md §3.1–§3.2 and §4.3, reduced to what the
// scenarios send and read.
type (
	change struct {
		SourceChangeID int64    `json:"source_change_id"`
		Schema         string   `json:"schema"`
		Table          string   `json:"table"`
		Op             string   `json:"op"`
		PK             string   `json:"pk"`
		ServerVersion  int64    `json:"server_version"`
		Payload        *userRow `json:"payload,omitempty"`
	}
	userRow struct {
		ID    string `json:"id"`
		Name  string `json:"name"`
		Email string `json:"email"`
	}
	uploadRequest struct {
		LastServerSeqSeen int64    `json:"last_server_seq_seen"`
		Changes           []change `json:"changes"`
	}
	uploadResponse struct {
		Accepted         bool           `json:"accepted"`
		HighestServerSeq int64          `json:"highest_server_seq"`
		Statuses         []changeStatus `json:"statuses"`
	}
	changeStatus struct {
		SourceChangeID   int64  `json:"source_change_id"`
		Status           string `json:"status"`
		NewServerVersion *int64 `json:"new_server_version"`
	}
	downloadResponse struct {
		Changes []struct {
			ServerID int64 `json:"server_id"`
		} `json:"changes"`
		HasMore     bool  `json:"has_more"`
		NextAfter   int64 `json:"next_after"`
		WindowUntil int64 `json:"window_until"`
	}
	// frame is a push message: {"type":"ready"|"changes","seq":N}.
	frame struct {
		Type string `json:"type"`
		Seq  int64  `json:"seq"`
	}
)

// device is one device's upload state: its credential, the next
// source_change_id (a counter from 1, as the real clients keep) and the
// source of its row ids. Owned by one VU.
type device struct {
	cred     *credential
	nextSCID int64
	ids      rowIDs
}

func newDevice(p Params, user, dev string, seed uint64) *device {
	return &device{cred: newCredential(p, user, dev), nextSCID: 1, ids: newRowIDs(p, dev, seed)}
}

// rowIDs mints the ids of new rows for one device or source.
type rowIDs struct{ r *rand.Rand }

// newRowIDs seeds the ids from seed, the run tag and the writer's id, so a
// run is reproducible and different run tags never produce the same rows.
func newRowIDs(p Params, writer string, seed uint64) rowIDs {
	h := fnv.New64a()
	h.Write([]byte(p.RunTag + "\x00" + writer))
	return rowIDs{rand.New(rand.NewPCG(seed, h.Sum64()))}
}

// inserts returns n INSERTs of new business.users rows with base version 0.
func (d *device) inserts(schema string, n int) []change {
	out := make([]change, n)
	for i := range out {
		id := d.ids.uuid()
		scid := d.nextSCID
		d.nextSCID++
		out[i] = change{
			SourceChangeID: scid, Schema: schema, Table: "users", Op: "INSERT", PK: id,
			Payload: &userRow{ID: id, Name: "load " + strconv.FormatInt(scid, 10), Email: id[:8] + "@load.test"},
		}
	}
	return out
}

// uuid returns a random (version 4) UUID in canonical form.
func (g rowIDs) uuid() string {
	var b [16]byte
	hi, lo := g.r.Uint64(), g.r.Uint64()
	for i := range 8 {
		b[i], b[8+i] = byte(hi>>(8*i)), byte(lo>>(8*i))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// uploader sends upload batches and records the upload checks and the
// changes_uploaded counter.
type uploader struct {
	base, schema string
	ep           *loadtest.Endpoint
	changes      *loadtest.Counter
	status       *loadtest.Rate
	count        *loadtest.Rate
	applied      *loadtest.Rate
}

func newUploader(p Params, m *loadtest.Metrics, client *http.Client) *uploader {
	return &uploader{
		base: p.URL, schema: p.Schema,
		ep:      loadtest.NewHTTP(m, client).Endpoint(loadtest.Tags{"endpoint": "upload"}),
		changes: m.Counter("changes_uploaded", loadtest.Default, nil),
		status:  m.Check("upload: status 200"),
		count:   m.Check("upload: one status per change"),
		applied: m.Check("upload: all applied as new rows"),
	}
}

// upload sends n fresh INSERTs from d. It fails unless the server answered
// 200; the statuses are checked, and applied changes counted, either way.
func (u *uploader) upload(ctx context.Context, d *device, n int) (uploadResponse, loadtest.Response, error) {
	bearer, err := d.cred.bearer(time.Now())
	if err != nil {
		return uploadResponse{}, loadtest.Response{}, err
	}
	body, err := json.Marshal(uploadRequest{Changes: d.inserts(u.schema, n)})
	if err != nil {
		return uploadResponse{}, loadtest.Response{}, fmt.Errorf("encode upload: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.base+"/sync/upload", bytes.NewReader(body))
	if err != nil {
		return uploadResponse{}, loadtest.Response{}, fmt.Errorf("build upload request: %w", err)
	}
	req.Header.Set("Authorization", bearer)
	req.Header.Set("Content-Type", "application/json")
	var out uploadResponse
	resp, err := doJSON(u.ep, req, &out)
	u.status.Add(err == nil)
	if err != nil {
		return out, resp, err
	}
	applied := 0
	for _, st := range out.Statuses {
		// new_server_version 1 tells a fresh insert from an idempotent
		// replay of an earlier run's key, which the server answers
		// "applied" too but does nothing for.
		if st.Status == "applied" && st.NewServerVersion != nil && *st.NewServerVersion == 1 {
			applied++
		}
	}
	u.count.Add(len(out.Statuses) == n)
	u.applied.Add(applied == n)
	u.changes.Add(float64(applied))
	return out, resp, nil
}

// getDownload fetches one download page.
func getDownload(ctx context.Context, ep *loadtest.Endpoint, p Params, bearer string, after int64, limit int) (downloadResponse, loadtest.Response, error) {
	return getDownloadQuery(ctx, ep, p, bearer, after, limit, nil)
}

// getDownloadQuery is getDownload with extra query parameters (include_self,
// the long-poll's wait).
func getDownloadQuery(ctx context.Context, ep *loadtest.Endpoint, p Params, bearer string, after int64, limit int, extra url.Values) (downloadResponse, loadtest.Response, error) {
	q := url.Values{}
	for k, v := range extra {
		q[k] = v
	}
	q.Set("after", strconv.FormatInt(after, 10))
	q.Set("limit", strconv.Itoa(limit))
	q.Set("schema", p.Schema)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/sync/download?"+q.Encode(), nil)
	if err != nil {
		return downloadResponse{}, loadtest.Response{}, fmt.Errorf("build download request: %w", err)
	}
	req.Header.Set("Authorization", bearer)
	var out downloadResponse
	resp, err := doJSON(ep, req, &out)
	return out, resp, err
}

// doJSON sends req through ep and decodes a 200 answer into out.
func doJSON(ep *loadtest.Endpoint, req *http.Request, out any) (loadtest.Response, error) {
	resp, err := ep.Do(req)
	if err != nil {
		return resp, err
	}
	if resp.Status != http.StatusOK {
		return resp, fmt.Errorf("%s %s: status %d: %s", req.Method, req.URL.Path, resp.Status, excerpt(resp.Body))
	}
	if err := json.Unmarshal(resp.Body, out); err != nil {
		return resp, fmt.Errorf("%s %s: decode answer: %w", req.Method, req.URL.Path, err)
	}
	return resp, nil
}

// excerpt shortens an error body for an error message.
func excerpt(b []byte) string {
	const limit = 200
	if len(b) > limit {
		return string(b[:limit]) + "…"
	}
	return string(bytes.TrimSpace(b))
}
