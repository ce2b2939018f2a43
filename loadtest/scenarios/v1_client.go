package scenarios

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/pulsesync/pulsesync/loadtest"
)

// The v1 bundle protocol's client side (docs/protocol-v1.md §3), reduced to
// what the v1 scenarios do and check: the flows of §5.4 with the response
// checks of §5.2 that a load test can afford.

const (
	// v1ChunkRows is how many rows go into one push chunk: SQLiteNow's
	// default uploadLimit (§3.4).
	v1ChunkRows = 200
	// v1CommittedPageRows is max_rows of committed-row reads: SQLiteNow's
	// downloadLimit (§5.1).
	v1CommittedPageRows = 1000
	// v1ChunkBytes is SQLiteNow's own snapshot chunk byte budget (§3.10).
	v1ChunkBytes = 4 << 20
	// v1CapacityPatience bounds the waits after 429 answers to one snapshot
	// request, as SQLiteNow's attach path does (§3.9).
	v1CapacityPatience = 30 * time.Second
	// v1AttachAttempts bounds the tries of capabilities and connect, which
	// SQLiteNow retries on 5xx and transport errors (§2.5).
	v1AttachAttempts = 3
)

// v1Source is one v1 source of one user: its credential (sub = the user),
// its Oversync-Source-ID, its next source_bundle_id and the bundle it is
// pushing, kept until committed so a retry re-sends the same request (the
// client's frozen outbox). Owned by one goroutine.
type v1Source struct {
	cred    *credential
	id      string
	next    int64 // source_bundle_id of the next bundle
	pending []v1Row
	made    int64 // rows made so far, for their names
	ids     rowIDs
	limits  v1Limits // from capabilities, once attached
	ready   bool     // capabilities checked and scope connected
}

func newV1Source(p Params, user, source string, seed uint64) *v1Source {
	return &v1Source{cred: newCredential(p, user, source), id: source, next: 1, ids: newRowIDs(p, source, seed)}
}

// user is the source's user.
func (s *v1Source) user() string { return s.cred.user }

// bundle returns the pending bundle, making one of n new users rows if none
// is pending.
func (s *v1Source) bundle(n int) []v1Row {
	if s.pending != nil {
		return s.pending
	}
	rows := make([]v1Row, n)
	for i := range rows {
		s.made++
		id := s.ids.uuid()
		name := "load " + strconv.FormatInt(s.made, 10)
		rows[i] = v1Row{Table: "users", Key: id, Op: "INSERT",
			Payload: userPayload(nil, id, name, id[:8]+"@load.test", s.made, s.made%2 == 0)}
	}
	s.pending = rows
	return rows
}

// committed records that the pending bundle is committed.
func (s *v1Source) committed() {
	s.pending = nil
	s.next++
}

// v1TableSpec is an entry of registered_table_specs.
type v1TableSpec struct {
	Schema         string   `json:"schema"`
	Table          string   `json:"table"`
	SyncKeyColumns []string `json:"sync_key_columns"`
}

// v1Limits are the bundle_limits members the scenarios use.
type v1Limits struct {
	MaxRowsPerSnapshotChunk  int   `json:"max_rows_per_snapshot_chunk"`
	MaxBytesPerSnapshotChunk int64 `json:"max_bytes_per_snapshot_chunk"`
}

// v1Bundle is a committed bundle's metadata, as commit, already_committed,
// committed-rows and pull answers carry it.
type v1Bundle struct {
	Status         string `json:"status"` // "already_committed" on a replayed create
	BundleSeq      int64  `json:"bundle_seq"`
	SourceID       string `json:"source_id"`
	SourceBundleID int64  `json:"source_bundle_id"`
	RowCount       int64  `json:"row_count"`
	BundleHash     string `json:"bundle_hash"`
	RequestHash    string `json:"canonical_request_hash"`
}

// v1Push is a committed push: the bundle, the rows pushed, and when the
// push began and its commit request was sent and answered.
type v1Push struct {
	Bundle                        v1Bundle
	Rows                          int
	Start, CommitSent, CommitDone time.Time
}

// v1Client sends the v1 requests, each through an endpoint tagged
// endpoint:v1_<operation>.
type v1Client struct {
	base, schema string
	ep           map[string]*loadtest.Endpoint
	connected    *userSet
}

// userSet is the set of users whose scope some source of this run has
// connected. A scope needs one connect; every source connecting would only
// queue them all on the user's lock, which a real client does once per
// installation.
type userSet struct {
	mu    sync.Mutex
	users map[string]bool
}

func (s *userSet) has(user string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users[user]
}

func (s *userSet) add(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[user] = true
}

// v1Connected returns the run's set of connected users, shared by every v1
// scenario.
func v1Connected(env *loadtest.Env) *userSet {
	return env.Shared("scenarios.v1.connected", func() any { return &userSet{users: map[string]bool{}} }).(*userSet)
}

// v1Ops are the operations, and so the endpoint tags, of v1Client.
var v1Ops = []string{"capabilities", "connect", "push_create", "push_chunk", "push_commit", "committed_rows",
	"pull", "snapshot_create", "snapshot_chunk", "snapshot_delete"}

func newV1Client(p Params, m *loadtest.Metrics, connected *userSet, client *http.Client) *v1Client {
	h := loadtest.NewHTTP(m, client)
	c := &v1Client{base: p.URL, schema: p.Schema, ep: map[string]*loadtest.Endpoint{}, connected: connected}
	for _, op := range v1Ops {
		c.ep[op] = h.Endpoint(loadtest.Tags{"endpoint": "v1_" + op})
	}
	return c
}

// newRequest builds a request of src with the bearer token and the source
// header; a nil body is sent without a content type.
func (c *v1Client) newRequest(ctx context.Context, src *v1Source, method, path string, body []byte) (*http.Request, error) {
	bearer, err := src.cred.bearer(time.Now())
	if err != nil {
		return nil, err
	}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return nil, fmt.Errorf("build %s %s request: %w", method, path, err)
	}
	req.Header.Set("Authorization", bearer)
	req.Header.Set("Oversync-Source-ID", src.id)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// call sends one request of op and decodes its 200 answer into out.
func (c *v1Client) call(ctx context.Context, op string, src *v1Source, method, path string, body []byte, out any) (loadtest.Response, error) {
	req, err := c.newRequest(ctx, src, method, path, body)
	if err != nil {
		return loadtest.Response{}, err
	}
	return doJSON(c.ep[op], req, out)
}

// attach checks the server's capabilities for src (protocol v1, connect
// lifecycle, the users table registered with key column id, snapshot
// limits) and, unless a source of this run already did, connects src's
// user without local rows, which initializes an empty scope (§3.1–§3.2).
// Both are retried on 5xx and transport errors as SQLiteNow does. It does
// so once per source.
func (c *v1Client) attach(ctx context.Context, src *v1Source) error {
	if src.ready {
		return nil
	}
	var caps struct {
		ProtocolVersion string          `json:"protocol_version"`
		Specs           []v1TableSpec   `json:"registered_table_specs"`
		Features        map[string]bool `json:"features"`
		Limits          v1Limits        `json:"bundle_limits"`
	}
	if err := c.retried(ctx, "capabilities", src, http.MethodGet, "/sync/capabilities", nil, &caps); err != nil {
		return err
	}
	if caps.ProtocolVersion != "v1" || !caps.Features["connect_lifecycle"] {
		return fmt.Errorf("capabilities: protocol_version %q, connect_lifecycle %t: not a v1 server", caps.ProtocolVersion, caps.Features["connect_lifecycle"])
	}
	if !slices.ContainsFunc(caps.Specs, func(s v1TableSpec) bool {
		return s.Schema == c.schema && s.Table == "users" && slices.Equal(s.SyncKeyColumns, []string{v1KeyColumn})
	}) {
		return fmt.Errorf("capabilities: no table %s.users keyed by %s", c.schema, v1KeyColumn)
	}
	if caps.Limits.MaxRowsPerSnapshotChunk <= 0 || caps.Limits.MaxBytesPerSnapshotChunk <= 0 {
		return errors.New("capabilities: snapshot chunk limits missing or not positive")
	}
	if !c.connected.has(src.user()) {
		var conn struct {
			Resolution string `json:"resolution"`
		}
		if err := c.retried(ctx, "connect", src, http.MethodPost, "/sync/connect", []byte(`{"has_local_pending_rows":false}`), &conn); err != nil {
			return err
		}
		if conn.Resolution != "initialize_empty" && conn.Resolution != "remote_authoritative" {
			return fmt.Errorf("connect user %s: resolution %q", src.user(), conn.Resolution)
		}
		c.connected.add(src.user())
	}
	src.limits, src.ready = caps.Limits, true
	return nil
}

// retried is call, tried again after a 5xx answer or a transport error up to
// v1AttachAttempts times in all, with a jittered backoff from 150 ms
// growing to 1.5 s (§2.5).
func (c *v1Client) retried(ctx context.Context, op string, src *v1Source, method, path string, body []byte, out any) error {
	backoff := 150 * time.Millisecond
	for attempt := 1; ; attempt++ {
		resp, err := c.call(ctx, op, src, method, path, body, out)
		if err == nil || attempt == v1AttachAttempts || (resp.Status != 0 && resp.Status < 500) {
			return err
		}
		if !sleepCtx(ctx, backoff/2+rand.N(backoff)) {
			return err
		}
		backoff = min(backoff*3, 1500*time.Millisecond)
	}
}

// sleepCtx waits d, or less if ctx ends first; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// push sends src's pending bundle (making one of n rows if none is pending):
// create, chunks of v1ChunkRows, commit, checking every echo of §3.3–§3.5.
// A create answered already_committed (the tuple landed before, its answer
// lost) skips chunks and commit. On success the source moves to its next
// source_bundle_id; on failure the bundle stays pending for the next try.
func (c *v1Client) push(ctx context.Context, src *v1Source, n int) (v1Push, error) {
	rows := src.bundle(n)
	hash := requestHash(c.schema, rows)
	start := time.Now()
	body := fmt.Appendf(nil, `{"source_bundle_id":%d,"planned_row_count":%d,"canonical_request_hash":"%s"}`, src.next, len(rows), hash)
	var created struct {
		v1Bundle
		PushID          string `json:"push_id"`
		PlannedRowCount int    `json:"planned_row_count"`
		NextExpected    int64  `json:"next_expected_row_ordinal"`
	}
	if _, err := c.call(ctx, "push_create", src, http.MethodPost, "/sync/push-sessions", body, &created); err != nil {
		return v1Push{}, err
	}
	if created.Status == "already_committed" {
		if err := c.checkCommit(src, created.v1Bundle, hash); err != nil {
			return v1Push{}, fmt.Errorf("already committed: %w", err)
		}
		src.committed()
		now := time.Now()
		return v1Push{Bundle: created.v1Bundle, Rows: len(rows), Start: start, CommitSent: now, CommitDone: now}, nil
	}
	if created.Status != "staging" || created.PushID == "" || created.PlannedRowCount != len(rows) || created.NextExpected != 0 || created.RequestHash != hash {
		return v1Push{}, fmt.Errorf("create push %s/%d: answer %+v does not echo the request", src.id, src.next, created)
	}
	path := "/sync/push-sessions/" + url.PathEscape(created.PushID)
	for at := 0; at < len(rows); at += v1ChunkRows {
		part := rows[at:min(at+v1ChunkRows, len(rows))]
		var ack struct {
			PushID       string `json:"push_id"`
			NextExpected int64  `json:"next_expected_row_ordinal"`
		}
		if _, err := c.call(ctx, "push_chunk", src, http.MethodPost, path+"/chunks", c.appendChunk(nil, at, part), &ack); err != nil {
			return v1Push{}, err
		}
		if ack.PushID != created.PushID || ack.NextExpected != int64(at+len(part)) {
			return v1Push{}, fmt.Errorf("chunk at %d: answer %+v, want push_id %s and next %d", at, ack, created.PushID, at+len(part))
		}
	}
	var b v1Bundle
	resp, err := c.call(ctx, "push_commit", src, http.MethodPost, path+"/commit", nil, &b)
	if err != nil {
		return v1Push{}, err
	}
	if err := c.checkCommit(src, b, hash); err != nil {
		return v1Push{}, fmt.Errorf("commit: %w", err)
	}
	src.committed()
	return v1Push{Bundle: b, Rows: len(rows), Start: start, CommitSent: resp.Start, CommitDone: resp.End}, nil
}

// checkCommit applies the client's checks of a commit answer (§3.5).
func (c *v1Client) checkCommit(src *v1Source, b v1Bundle, hash string) error {
	if b.BundleSeq <= 0 || b.SourceID != src.id || b.SourceBundleID != src.next || b.RowCount < 0 || b.BundleHash == "" || b.RequestHash != hash {
		return fmt.Errorf("answer %+v for source %s bundle %d with hash %s", b, src.id, src.next, hash)
	}
	return nil
}

// appendChunk appends a chunk body {"start_row_ordinal","rows"} (§3.4).
func (c *v1Client) appendChunk(b []byte, start int, rows []v1Row) []byte {
	b = append(b, `{"start_row_ordinal":`...)
	b = strconv.AppendInt(b, int64(start), 10)
	b = append(b, `,"rows":[`...)
	for i, r := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"schema":`...)
		b = appendJCSString(b, c.schema)
		b = append(b, `,"table":`...)
		b = appendJCSString(b, r.Table)
		b = append(b, `,"key":`...)
		b = appendKey(b, r.Key)
		b = append(b, `,"op":`...)
		b = appendJCSString(b, r.Op)
		b = append(b, `,"base_row_version":`...)
		b = strconv.AppendInt(b, r.Base, 10)
		if r.Payload != nil {
			b = append(b, `,"payload":`...)
			b = append(b, r.Payload...)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// verify reads bundle b back page by page (§3.7) and checks what SQLiteNow
// checks: metadata equal to the commit's, ordinal arithmetic, rows totalling
// row_count, each row's version the bundle's, and the bundle_hash recomputed
// from the rows read (§4.3).
func (c *v1Client) verify(ctx context.Context, src *v1Source, b v1Bundle) error {
	var h bundleHasher
	after := int64(-1) // the first page has no after_row_ordinal
	for {
		path := fmt.Sprintf("/sync/committed-bundles/%d/rows?max_rows=%d", b.BundleSeq, v1CommittedPageRows)
		if after >= 0 {
			path += "&after_row_ordinal=" + strconv.FormatInt(after, 10)
		}
		var page struct {
			v1Bundle
			Rows           []wireRow `json:"rows"`
			NextRowOrdinal int64     `json:"next_row_ordinal"`
			HasMore        bool      `json:"has_more"`
		}
		if _, err := c.call(ctx, "committed_rows", src, http.MethodGet, path, nil, &page); err != nil {
			return err
		}
		meta := page.v1Bundle
		meta.Status = b.Status
		if meta != b {
			return fmt.Errorf("committed rows of bundle %d: metadata %+v, the commit said %+v", b.BundleSeq, meta, b)
		}
		want := after + int64(len(page.Rows))
		if len(page.Rows) == 0 {
			want = max(after, 0)
		}
		if page.NextRowOrdinal != want || (page.HasMore && len(page.Rows) == 0) {
			return fmt.Errorf("committed rows of bundle %d after %d: next_row_ordinal %d with %d rows (has_more %t)",
				b.BundleSeq, after, page.NextRowOrdinal, len(page.Rows), page.HasMore)
		}
		for _, r := range page.Rows {
			if r.RowVersion != b.BundleSeq || r.Schema != c.schema {
				return fmt.Errorf("committed row of bundle %d: %s.%s row_version %d", b.BundleSeq, r.Schema, r.Table, r.RowVersion)
			}
			if err := h.add(r); err != nil {
				return fmt.Errorf("committed rows of bundle %d: %w", b.BundleSeq, err)
			}
		}
		if !page.HasMore {
			break
		}
		after = page.NextRowOrdinal
	}
	if int64(h.n) != b.RowCount {
		return fmt.Errorf("bundle %d: read %d rows, row_count is %d", b.BundleSeq, h.n, b.RowCount)
	}
	if got := h.sum(); got != b.BundleHash {
		return fmt.Errorf("bundle %d: recomputed bundle_hash %s, the server said %s", b.BundleSeq, got, b.BundleHash)
	}
	return nil
}

// pullToStable pulls src's user from after until the checkpoint reaches the
// first page's stable_bundle_seq, maxBundles per page (§3.8), and returns
// the rows pulled and the checkpoint reached. Bundles must be dense from
// after + 1 and the stable seq constant across pages; a page that ends
// below it is an error, as for SQLiteNow.
func (c *v1Client) pullToStable(ctx context.Context, src *v1Source, after int64, maxBundles int) (rows int, checkpoint int64, err error) {
	checkpoint = after
	var stable int64
	for page := 0; ; page++ {
		out, err := c.pull(ctx, src, checkpoint, maxBundles, stable)
		if err != nil {
			return rows, checkpoint, err
		}
		if page == 0 {
			stable = out.StableBundleSeq
		}
		if out.StableBundleSeq != stable || stable < after {
			return rows, checkpoint, fmt.Errorf("pull after %d: stable_bundle_seq %d, first page said %d", checkpoint, out.StableBundleSeq, stable)
		}
		for _, b := range out.Bundles {
			if b.BundleSeq != checkpoint+1 || b.BundleSeq > stable || len(b.Rows) == 0 {
				return rows, checkpoint, fmt.Errorf("pull after %d: bundle %d with %d rows, stable %d", checkpoint, b.BundleSeq, len(b.Rows), stable)
			}
			for _, r := range b.Rows {
				if r.RowVersion != b.BundleSeq {
					return rows, checkpoint, fmt.Errorf("pull: row of bundle %d has row_version %d", b.BundleSeq, r.RowVersion)
				}
			}
			rows += len(b.Rows)
			checkpoint = b.BundleSeq
		}
		if checkpoint == stable {
			return rows, checkpoint, nil
		}
		if !out.HasMore || len(out.Bundles) == 0 {
			return rows, checkpoint, fmt.Errorf("pull ended at %d below stable_bundle_seq %d", checkpoint, stable)
		}
	}
}

// v1PullPage is an answer of GET /sync/pull, rows reduced to their versions.
type v1PullPage struct {
	StableBundleSeq int64 `json:"stable_bundle_seq"`
	Bundles         []struct {
		BundleSeq int64 `json:"bundle_seq"`
		Rows      []struct {
			RowVersion int64 `json:"row_version"`
		} `json:"rows"`
	} `json:"bundles"`
	HasMore bool `json:"has_more"`
}

// pull fetches one pull page; target 0 is sent as no target ("capture now").
func (c *v1Client) pull(ctx context.Context, src *v1Source, after int64, maxBundles int, target int64) (v1PullPage, error) {
	q := fmt.Sprintf("/sync/pull?after_bundle_seq=%d&max_bundles=%d", after, maxBundles)
	if target > 0 {
		q += "&target_bundle_seq=" + strconv.FormatInt(target, 10)
	}
	var out v1PullPage
	_, err := c.call(ctx, "pull", src, http.MethodGet, q, nil, &out)
	return out, err
}

// v1SnapshotRead is what reading one snapshot delivered.
type v1SnapshotRead struct {
	Rows, Bytes int64
}

// snapshot creates a snapshot of src's user, reads all its chunks (max_rows
// = min(maxRows, the server's maximum), max_bytes = min(4 MiB, the server's
// maximum)) and deletes it, checking the arithmetic of §3.9–§3.10: every
// chunk echoes the session, ordinals advance by the rows returned, byte
// counts add up, and the totals equal the session's row_count and
// byte_count exactly when has_more turns false.
func (c *v1Client) snapshot(ctx context.Context, src *v1Source, maxRows int) (read v1SnapshotRead, err error) {
	var sess struct {
		SnapshotID string `json:"snapshot_id"`
		BundleSeq  int64  `json:"snapshot_bundle_seq"`
		RowCount   int64  `json:"row_count"`
		ByteCount  int64  `json:"byte_count"`
	}
	if err := c.patient(ctx, "snapshot_create", src, http.MethodPost, "/sync/snapshot-sessions", &sess); err != nil {
		return read, err
	}
	if sess.SnapshotID == "" || sess.RowCount < 0 || (sess.RowCount == 0) != (sess.ByteCount == 0) {
		return read, fmt.Errorf("snapshot session %+v", sess)
	}
	path := "/sync/snapshot-sessions/" + url.PathEscape(sess.SnapshotID)
	defer func() {
		if derr := c.deleteSnapshot(context.WithoutCancel(ctx), src, path); err == nil {
			err = derr
		}
	}()
	rowsPer := min(maxRows, src.limits.MaxRowsPerSnapshotChunk)
	bytesPer := min(v1ChunkBytes, src.limits.MaxBytesPerSnapshotChunk)
	var after int64
	for {
		var chunk struct {
			SnapshotID     string            `json:"snapshot_id"`
			BundleSeq      int64             `json:"snapshot_bundle_seq"`
			Rows           []json.RawMessage `json:"rows"`
			NextRowOrdinal int64             `json:"next_row_ordinal"`
			HasMore        bool              `json:"has_more"`
			ByteCount      int64             `json:"byte_count"`
		}
		q := fmt.Sprintf("%s?after_row_ordinal=%d&max_rows=%d&max_bytes=%d", path, after, rowsPer, bytesPer)
		if err := c.patient(ctx, "snapshot_chunk", src, http.MethodGet, q, &chunk); err != nil {
			return read, err
		}
		n := int64(len(chunk.Rows))
		read.Rows += n
		read.Bytes += chunk.ByteCount
		switch {
		case chunk.SnapshotID != sess.SnapshotID || chunk.BundleSeq != sess.BundleSeq:
			return read, fmt.Errorf("snapshot chunk of %s@%d names %s@%d", sess.SnapshotID, sess.BundleSeq, chunk.SnapshotID, chunk.BundleSeq)
		case chunk.NextRowOrdinal != after+n, n > int64(rowsPer), chunk.ByteCount > bytesPer, (n == 0) != (chunk.ByteCount == 0):
			return read, fmt.Errorf("snapshot chunk after %d: %d rows, %d bytes, next %d", after, n, chunk.ByteCount, chunk.NextRowOrdinal)
		case read.Rows > sess.RowCount || read.Bytes > sess.ByteCount:
			return read, fmt.Errorf("snapshot read %d rows / %d bytes of a session of %d / %d", read.Rows, read.Bytes, sess.RowCount, sess.ByteCount)
		case chunk.HasMore == (read.Rows == sess.RowCount && read.Bytes == sess.ByteCount):
			return read, fmt.Errorf("snapshot has_more %t after %d of %d rows, %d of %d bytes", chunk.HasMore, read.Rows, sess.RowCount, read.Bytes, sess.ByteCount)
		}
		if !chunk.HasMore {
			return read, nil
		}
		after = chunk.NextRowOrdinal
	}
}

// patient is call for the snapshot requests, which the server may refuse
// with 429 when its snapshot work is at capacity: it waits Retry-After
// seconds (1 unless a positive integer) plus up to as much again of jitter
// and tries again, for up to v1CapacityPatience (§3.9).
func (c *v1Client) patient(ctx context.Context, op string, src *v1Source, method, path string, out any) error {
	deadline := time.Now().Add(v1CapacityPatience)
	for {
		resp, err := c.call(ctx, op, src, method, path, nil, out)
		if err == nil || resp.Status != http.StatusTooManyRequests || time.Now().After(deadline) {
			return err
		}
		wait := time.Second
		if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s > 0 {
			wait = time.Duration(s) * time.Second
		}
		if !sleepCtx(ctx, wait+rand.N(wait)) {
			return err
		}
	}
}

// deleteSnapshot retires a snapshot session; 204 is the only success.
func (c *v1Client) deleteSnapshot(ctx context.Context, src *v1Source, path string) error {
	req, err := c.newRequest(ctx, src, http.MethodDelete, path, nil)
	if err != nil {
		return err
	}
	resp, err := c.ep["snapshot_delete"].Do(req)
	if err == nil && resp.Status != http.StatusNoContent {
		err = fmt.Errorf("DELETE %s: status %d: %s", req.URL.Path, resp.Status, excerpt(resp.Body))
	}
	return err
}

// watch opens GET /sync/watch?after_bundle_seq=after for src through client
// and reads it (readWatch) until the stream or ctx ends. The handshake is
// bounded by timeout; opened is called when the 200 has arrived, with its
// time, before any event is read. An error answer is returned with its
// status and body.
func (c *v1Client) watch(ctx context.Context, client *http.Client, src *v1Source, after int64, timeout time.Duration,
	opened func(time.Time), onEvent func(watchEvent, time.Time) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := c.newRequest(ctx, src, http.MethodGet, "/sync/watch?after_bundle_seq="+strconv.FormatInt(after, 10), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	handshake := time.AfterFunc(timeout, cancel)
	resp, err := client.Do(req)
	if !handshake.Stop() && err == nil {
		resp.Body.Close()
		err = errors.New("handshake timed out")
	}
	if err != nil {
		return fmt.Errorf("open /sync/watch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return fmt.Errorf("open /sync/watch: status %d: %s", resp.StatusCode, excerpt(body))
	}
	opened(time.Now())
	return readWatch(resp.Body, onEvent)
}
