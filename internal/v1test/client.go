package v1test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/pulsesync/pulsesync/internal/servertest"
	"github.com/pulsesync/pulsesync/pgv1/wire"
)

// ChunkRows is how many rows a push sends per chunk request: SQLiteNow's default uploadLimit
// (docs/protocol-v1.md §3.4).
const ChunkRows = 200

// PageRows is max_rows of committed-row reads: SQLiteNow's default downloadLimit (§3.7).
const PageRows = 1000

// Client is one installation of a v1 client: a user's token and one source id. Its methods
// may be called from any goroutine; one source should push from one goroutine, as a real
// client does.
type Client struct {
	base   string
	http   *http.Client
	token  string
	source string
}

// New returns a client of srv for user, sending source as its Oversync-Source-ID.
func New(srv *servertest.Server, user, source string) *Client {
	return &Client{base: srv.URL, http: srv.Client, token: srv.Token(user, source), source: source}
}

// Source is the client's Oversync-Source-ID.
func (c *Client) Source() string { return c.source }

// Refusal is a non-200 answer in the protocol's error envelope (docs/protocol-v1.md §2.5).
type Refusal struct {
	Status  int
	Code    string `json:"error"`
	Message string `json:"message"`
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("status %d %s: %s", r.Status, r.Code, r.Message)
}

// IsRefusal reports whether err is a Refusal with the given protocol error code.
func IsRefusal(err error, code string) bool {
	var r *Refusal
	return errors.As(err, &r) && r.Code == code
}

// newRequest builds a request with the token and the source header; a nil body goes without a
// content type, as clients send body-less POSTs (§2.4).
func (c *Client) newRequest(ctx context.Context, method, path string, body []byte) (*http.Request, error) {
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("build %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Oversync-Source-ID", c.source)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// call sends one request and decodes its 200 answer into out; any other status becomes a
// *Refusal.
func (c *Client) call(ctx context.Context, method, path string, body []byte, out any) error {
	req, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		r := &Refusal{Status: resp.StatusCode}
		if err := json.Unmarshal(data, r); err != nil || r.Code == "" {
			return fmt.Errorf("%s %s: status %d without an error envelope: %.200q", method, path, resp.StatusCode, data)
		}
		return fmt.Errorf("%s %s: %w", method, path, r)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// Connect attaches the client's user without local rows (§3.2): a new scope is initialized
// empty, an initialized one answers remote_authoritative. Any other resolution is an error.
func (c *Client) Connect(ctx context.Context) error {
	var out struct {
		Resolution string `json:"resolution"`
	}
	if err := c.call(ctx, http.MethodPost, "/sync/connect", []byte(`{"has_local_pending_rows":false}`), &out); err != nil {
		return err
	}
	if out.Resolution != "initialize_empty" && out.Resolution != "remote_authoritative" {
		return fmt.Errorf("connect: resolution %q, want initialize_empty or remote_authoritative", out.Resolution)
	}
	return nil
}

// Meta is a committed bundle's metadata as commit, already_committed, committed-rows and pull
// answers carry it; comparable, so that a test can check they all say the same.
type Meta struct {
	BundleSeq      int64  `json:"bundle_seq"`
	SourceID       string `json:"source_id"`
	SourceBundleID int64  `json:"source_bundle_id"`
	RowCount       int64  `json:"row_count"`
	BundleHash     string `json:"bundle_hash"`
	RequestHash    string `json:"canonical_request_hash"`
}

// Bundle is a committed bundle: its metadata and, where the answer has them, its rows.
type Bundle struct {
	Meta
	Rows []WireRow `json:"rows,omitempty"`
}

// Push pushes rows as the source's bundle sourceBundleID (§3.3–§3.5): create, chunks of
// ChunkRows, commit, checking every echo a client checks. A create answered already_committed
// returns that bundle. Refusals come back as *Refusal errors.
func (c *Client) Push(ctx context.Context, sourceBundleID int64, rows []Row) (Bundle, error) {
	hash, err := RequestHash(rows)
	if err != nil {
		return Bundle{}, err
	}
	body := fmt.Appendf(nil, `{"source_bundle_id":%d,"planned_row_count":%d,"canonical_request_hash":"%s"}`,
		sourceBundleID, len(rows), hash)
	var created struct {
		Bundle
		Status          string `json:"status"`
		PushID          string `json:"push_id"`
		PlannedRowCount int    `json:"planned_row_count"`
		NextExpected    int64  `json:"next_expected_row_ordinal"`
	}
	if err := c.call(ctx, http.MethodPost, "/sync/push-sessions", body, &created); err != nil {
		return Bundle{}, err
	}
	if created.Status == "already_committed" {
		return created.Bundle, c.checkCommitted(created.Bundle, sourceBundleID, hash)
	}
	if created.Status != "staging" || !wire.ValidUUID(created.PushID) || created.PlannedRowCount != len(rows) ||
		created.NextExpected != 0 || created.RequestHash != hash {
		return Bundle{}, fmt.Errorf("create push %s/%d: answer %+v does not echo the request", c.source, sourceBundleID, created)
	}
	path := "/sync/push-sessions/" + url.PathEscape(created.PushID)
	for at := 0; at < len(rows); at += ChunkRows {
		part := rows[at:min(at+ChunkRows, len(rows))]
		var ack struct {
			PushID       string `json:"push_id"`
			NextExpected int64  `json:"next_expected_row_ordinal"`
		}
		if err := c.call(ctx, http.MethodPost, path+"/chunks", appendChunk(nil, at, part), &ack); err != nil {
			return Bundle{}, err
		}
		if ack.PushID != created.PushID || ack.NextExpected != int64(at+len(part)) {
			return Bundle{}, fmt.Errorf("chunk at %d: answer %+v, want push_id %s and next %d", at, ack, created.PushID, at+len(part))
		}
	}
	var b Bundle
	if err := c.call(ctx, http.MethodPost, path+"/commit", nil, &b); err != nil {
		return Bundle{}, err
	}
	return b, c.checkCommitted(b, sourceBundleID, hash)
}

// checkCommitted applies a client's checks of a commit or already_committed answer (§3.5).
func (c *Client) checkCommitted(b Bundle, sourceBundleID int64, hash string) error {
	if b.BundleSeq <= 0 || b.SourceID != c.source || b.SourceBundleID != sourceBundleID || b.RowCount < 0 ||
		!wire.ValidHash(b.BundleHash) || b.RequestHash != hash {
		return fmt.Errorf("commit of %s/%d with hash %s answered %+v", c.source, sourceBundleID, hash, b)
	}
	return nil
}

// CommittedRows reads every page of a committed bundle (§3.7), checks the paging arithmetic,
// the row count and the bundle hash recomputed from the rows, and returns the bundle with its
// rows.
func (c *Client) CommittedRows(ctx context.Context, bundleSeq int64) (Bundle, error) {
	var whole Bundle
	after := int64(-1) // an absent after_row_ordinal counts as -1 (§3.7)
	for {
		path := "/sync/committed-bundles/" + strconv.FormatInt(bundleSeq, 10) + "/rows?max_rows=" + strconv.Itoa(PageRows)
		if after >= 0 {
			path += "&after_row_ordinal=" + strconv.FormatInt(after, 10)
		}
		var page struct {
			Bundle
			NextRowOrdinal int64 `json:"next_row_ordinal"`
			HasMore        bool  `json:"has_more"`
		}
		if err := c.call(ctx, http.MethodGet, path, nil, &page); err != nil {
			return Bundle{}, err
		}
		if after >= 0 && page.Meta != whole.Meta {
			return Bundle{}, fmt.Errorf("committed rows of %d: page metadata %+v differs from the first page's %+v", bundleSeq, page.Meta, whole.Meta)
		}
		n := int64(len(page.Rows))
		if want := after + n; n > 0 && page.NextRowOrdinal != want || page.HasMore && n == 0 {
			return Bundle{}, fmt.Errorf("committed rows of %d after %d: %d rows, next_row_ordinal %d, has_more %t", bundleSeq, after, n, page.NextRowOrdinal, page.HasMore)
		}
		rows := append(whole.Rows, page.Rows...)
		whole = page.Bundle
		whole.Rows = rows
		after = page.NextRowOrdinal
		if !page.HasMore {
			break
		}
	}
	if whole.BundleSeq != bundleSeq {
		return Bundle{}, fmt.Errorf("committed rows of %d: answer for bundle %d", bundleSeq, whole.BundleSeq)
	}
	return whole, Verify(whole)
}

// Page is one answer of GET /sync/pull (§3.8).
type Page struct {
	StableBundleSeq int64    `json:"stable_bundle_seq"`
	Bundles         []Bundle `json:"bundles"`
	HasMore         bool     `json:"has_more"`
}

// Pull reads one page of bundles after after; target 0 lets the server capture
// stable_bundle_seq, a positive target is the first page's (§3.8).
func (c *Client) Pull(ctx context.Context, after int64, maxBundles int, target int64) (Page, error) {
	path := "/sync/pull?after_bundle_seq=" + strconv.FormatInt(after, 10) + "&max_bundles=" + strconv.Itoa(maxBundles)
	if target > 0 {
		path += "&target_bundle_seq=" + strconv.FormatInt(target, 10)
	}
	var p Page
	err := c.call(ctx, http.MethodGet, path, nil, &p)
	return p, err
}

// PullToStable pulls from checkpoint after to the stable_bundle_seq of its first page, pages
// of maxBundles, as SQLiteNow's pullToStable does: it checks every page as the client does
// (stable never below the checkpoint and never changing, seqs strictly increasing inside
// (checkpoint, stable], no end below stable), verifies each bundle's hash from its rows, hands
// each bundle to apply in order, and returns the new checkpoint. An error from apply stops it.
func (c *Client) PullToStable(ctx context.Context, after int64, maxBundles int, apply func(Bundle) error) (int64, error) {
	checkpoint, stable := after, int64(0)
	for first := true; first || checkpoint < stable; first = false {
		p, err := c.Pull(ctx, checkpoint, maxBundles, stable)
		if err != nil {
			return checkpoint, err
		}
		if first {
			stable = p.StableBundleSeq
		}
		switch {
		case p.StableBundleSeq != stable:
			return checkpoint, fmt.Errorf("pull after %d: stable_bundle_seq changed from %d to %d between pages", checkpoint, stable, p.StableBundleSeq)
		case stable < after:
			return checkpoint, fmt.Errorf("pull after %d: stable_bundle_seq %d below the checkpoint", after, stable)
		case len(p.Bundles) > maxBundles:
			return checkpoint, fmt.Errorf("pull after %d: %d bundles, asked for at most %d", checkpoint, len(p.Bundles), maxBundles)
		case p.HasMore && len(p.Bundles) == 0:
			return checkpoint, fmt.Errorf("pull after %d: has_more without bundles", checkpoint)
		}
		for _, b := range p.Bundles {
			if b.BundleSeq <= checkpoint || b.BundleSeq > stable {
				return checkpoint, fmt.Errorf("pull after %d to %d: bundle %d out of order", checkpoint, stable, b.BundleSeq)
			}
			if !wire.ValidSourceID(b.SourceID) || b.SourceBundleID <= 0 {
				return checkpoint, fmt.Errorf("pull: bundle %d has source %q/%d", b.BundleSeq, b.SourceID, b.SourceBundleID)
			}
			if err := Verify(b); err != nil {
				return checkpoint, err
			}
			if err := apply(b); err != nil {
				return checkpoint, err
			}
			checkpoint = b.BundleSeq
		}
		if !p.HasMore && checkpoint < stable {
			return checkpoint, fmt.Errorf("pull: last page ends at %d, below stable_bundle_seq %d", checkpoint, stable)
		}
	}
	return checkpoint, nil
}
