package deploytest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pulsesync/pulsesync/internal/natstest"
	"github.com/pulsesync/pulsesync/internal/pushtest"
	"github.com/pulsesync/pulsesync/internal/servertest"
	"github.com/pulsesync/pulsesync/internal/v1test"
	"github.com/pulsesync/pulsesync/pgv1/wire"
)

// The clients of the deployment tests: devices that reach the nodes only through nginx, and
// the reconnecting loop a device runs when its stream ends.

// deployment is two pulsesync nodes on one database, fanning out over NATS, behind nginx.
type deployment struct {
	a, b  *servertest.Server
	proxy *proxy
}

// newDeployment starts NATS, node-a on a fresh database, node-b sharing it, and nginx in front
// of both.
func newDeployment(t *testing.T) *deployment {
	t.Helper()
	nats := natstest.Start(t)
	opts := servertest.Options{NATSURL: nats.URL(), V1: true, NodeID: "node-a"}
	a := servertest.New(t, opts)
	opts.DatabaseURL, opts.NodeID = a.DatabaseURL, "node-b"
	b := servertest.New(t, opts)
	return &deployment{a: a, b: b, proxy: startNginx(t, a.URL, b.URL)}
}

// token returns a token of user's device; both nodes accept it.
func (d *deployment) token(user, device string) string { return d.a.Token(user, device) }

// retries bounds how often a client repeats a request that nginx answered 503 because no node
// took it (a node stopping under it); the requests repeated are idempotent.
const retries = 3

// largeBody is the size from which a request asks for 100 Continue before sending its body.
const largeBody = 1 << 20

// do sends a request with user's device token through nginx and returns the status and body.
func (d *deployment) do(ctx context.Context, method, path, token string, body []byte) (int, []byte, error) {
	return send(ctx, d.proxy.Client, d.proxy.URL, method, path, token, body)
}

// send sends a request with a device token to base (nginx or a node) and returns the status
// and body.
func send(ctx context.Context, client *http.Client, base, method, path, token string, body []byte) (int, []byte, error) {
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if len(body) > largeBody {
		// As curl does: nginx refuses an oversized body before it is sent, not after.
		req.Header.Set("Expect", "100-continue")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	return resp.StatusCode, data, nil
}

// uploadBody is a v0 upload of n new business.users rows, source_change_ids first…first+n-1,
// with pad spaces of JSON whitespace before the changes (a large body that is still valid).
func uploadBody(first int64, n, pad int) []byte {
	var b strings.Builder
	b.WriteString(`{"changes":`)
	b.WriteString(strings.Repeat(" ", pad))
	b.WriteByte('[')
	for i := range int64(n) {
		if i > 0 {
			b.WriteByte(',')
		}
		pk := wire.NewUUID()
		fmt.Fprintf(&b, `{"source_change_id":%d,"schema":"business","table":"users","op":"INSERT","pk":"%s","server_version":0,"payload":{"id":"%s"}}`,
			first+i, pk, pk)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// upload posts body as user's device through nginx and returns the highest_server_seq of the
// answer. A 503 is retried: an upload is idempotent by its source_change_ids.
func (d *deployment) upload(t *testing.T, user, device string, body []byte) int64 {
	t.Helper()
	for attempt := 1; ; attempt++ {
		status, data, err := d.do(t.Context(), http.MethodPost, "/sync/upload", d.token(user, device), body)
		if err != nil {
			t.Fatalf("upload: %v", err)
		}
		if status == http.StatusServiceUnavailable && attempt < retries {
			t.Logf("upload answered 503 (%s); retrying", data)
			continue
		}
		var out struct {
			HighestServerSeq int64 `json:"highest_server_seq"`
			Statuses         []struct {
				Status string `json:"status"`
			} `json:"statuses"`
		}
		if status != http.StatusOK || json.Unmarshal(data, &out) != nil {
			t.Fatalf("upload through nginx: %d %.300s, want 200 and an upload answer", status, data)
		}
		for i, s := range out.Statuses {
			if s.Status != "applied" {
				t.Fatalf("upload through nginx: change %d %s, want applied", i, s.Status)
			}
		}
		return out.HighestServerSeq
	}
}

// page is the part of a v0 download answer the tests check.
type page struct {
	Changes []struct {
		ServerID int64 `json:"server_id"`
	} `json:"changes"`
	NextAfter int64 `json:"next_after"`
}

// download reads user's business changes after after through nginx; a positive wait makes it a
// long-poll. It returns errors rather than failing the test, for use on other goroutines.
func (d *deployment) download(ctx context.Context, token string, after int64, wait int) (page, error) {
	path := "/sync/download?after=" + strconv.FormatInt(after, 10) + "&limit=1000&schema=business"
	if wait > 0 {
		path += "&wait=" + strconv.Itoa(wait)
	}
	var p page
	for attempt := 1; ; attempt++ {
		status, data, err := d.do(ctx, http.MethodGet, path, token, nil)
		if err != nil {
			return p, err
		}
		if status == http.StatusServiceUnavailable && attempt < retries {
			continue
		}
		if status != http.StatusOK {
			return p, fmt.Errorf("download through nginx: %d %.300s", status, data)
		}
		return p, json.Unmarshal(data, &p)
	}
}

// v1Client is user's v1 source talking to the deployment through nginx, its scope connected.
func (d *deployment) v1Client(t *testing.T, user, source string) *v1test.Client {
	t.Helper()
	// v1test speaks to a server's URL with its client: give it node-a as seen through nginx.
	via := *d.a
	via.URL, via.Client = d.proxy.URL, d.proxy.Client
	c := v1test.New(&via, user, source)
	if err := c.Connect(t.Context()); err != nil {
		t.Fatalf("v1 connect through nginx: %v", err)
	}
	return c
}

// pushBundle commits bundle id of one new app.users row from c and returns its bundle_seq. A
// 503 is retried, as a client does.
func pushBundle(t *testing.T, c *v1test.Client, id int64) int64 {
	t.Helper()
	rows := []v1test.Row{v1test.NewUser(wire.NewUUID(), fmt.Sprintf("%s-%d", c.Source(), id), id)}
	for attempt := 1; ; attempt++ {
		b, err := c.Push(t.Context(), id, rows)
		if err == nil {
			return b.BundleSeq
		}
		if !v1test.IsRefusal(err, "service_unavailable") || attempt == retries {
			t.Fatalf("v1 push of bundle %d through nginx: %v", id, err)
		}
	}
}

// expectRefusal sends a request through nginx and checks its status and the protocol's error
// envelope.
func (d *deployment) expectRefusal(t *testing.T, method, path string, body []byte, status int, code string) {
	t.Helper()
	got, data, err := d.do(t.Context(), method, path, d.token("alice", "probe"), body)
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if got != status || json.Unmarshal(data, &env) != nil || env.Error != code || env.Message == "" {
		t.Fatalf("%s %s through nginx: %d %.200q, want %d with error %q in the JSON envelope", method, path, got, data, status, code)
	}
}

// sessions is the number of push sessions of transport (ws, sse, longpoll, watch) srv holds.
func sessions(t *testing.T, srv *servertest.Server, transport string) int {
	t.Helper()
	families, err := srv.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "pulsesync_push_connections" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "transport" && l.GetValue() == transport {
					return int(m.GetGauge().GetValue())
				}
			}
		}
	}
	return 0
}

// stream is one device's push connection through nginx, as the reconnecting loop sees it.
type stream interface {
	// next returns the seq of the next event telling of changes (0 for other events), which
	// becomes the stream's cursor; or ended when the server has ended the stream; or an error
	// when nothing came within d.
	next(d time.Duration) (seq int64, ended bool, err error)
	// reopen connects again through nginx from the cursor.
	reopen(t *testing.T)
}

// follow reads s until it tells of seq, reconnecting through nginx from its cursor when the
// server ends the stream, as a device does. It reports how often it reconnected.
func follow(t *testing.T, s stream, seq int64) (reconnects int) {
	t.Helper()
	deadline := time.Now().Add(pushtest.Wait)
	for {
		got, ended, err := s.next(time.Until(deadline))
		switch {
		case err != nil:
			t.Fatalf("waiting to hear of seq %d (%d reconnects): %v", seq, reconnects, err)
		case ended:
			reconnects++
			s.reopen(t)
		case got >= seq:
			return reconnects
		}
	}
}

// wsStream is a WebSocket on /sync/ws. A node that stops closes it with 1012.
type wsStream struct {
	d     *deployment
	token string
	ws    *pushtest.WS
	after int64
}

func openWS(t *testing.T, d *deployment, token string) *wsStream {
	s := &wsStream{d: d, token: token}
	s.reopen(t)
	return s
}

func (s *wsStream) reopen(t *testing.T) {
	t.Helper()
	s.ws = pushtest.Dial(t, s.d.proxy.URL, "after="+strconv.FormatInt(s.after, 10), s.token)
	if f := s.ws.Read(); f.Type != "ready" {
		t.Fatalf("first frame through nginx %+v, want ready", f)
	}
}

func (s *wsStream) next(d time.Duration) (int64, bool, error) {
	f, err := s.ws.ReadWithin(d)
	if websocket.CloseStatus(err) == websocket.StatusServiceRestart {
		return 0, true, nil
	}
	if err != nil || f.Type != "changes" {
		return 0, false, err
	}
	s.after = max(s.after, f.Seq)
	return f.Seq, false, nil
}

// sseStream is an event stream on /sync/events. A node that stops ends it.
type sseStream struct {
	d     *deployment
	token string
	sse   *pushtest.SSE
	after int64
}

func openSSE(t *testing.T, d *deployment, token string) *sseStream {
	s := &sseStream{d: d, token: token}
	s.reopen(t)
	return s
}

func (s *sseStream) reopen(t *testing.T) {
	t.Helper()
	s.sse = pushtest.OpenSSE(t, s.d.proxy.Client, s.d.proxy.URL, "after="+strconv.FormatInt(s.after, 10), s.token, nil)
	if f := s.sse.Read(); f.Type != "ready" {
		t.Fatalf("first event through nginx %+v, want ready", f)
	}
}

func (s *sseStream) next(d time.Duration) (int64, bool, error) {
	f, err := s.sse.Next(d)
	if errors.Is(err, pushtest.ErrEnded) {
		return 0, true, nil
	}
	if err != nil || f.Type != "changes" {
		return 0, false, err
	}
	s.after = max(s.after, f.Seq)
	return f.Seq, false, nil
}

// watchStream is a v1 /sync/watch stream; its seqs are bundle_seqs. A node that stops ends it.
type watchStream struct {
	c     *v1test.Client
	w     *v1test.Watch
	after int64
}

func openWatch(t *testing.T, c *v1test.Client) *watchStream {
	s := &watchStream{c: c}
	s.reopen(t)
	return s
}

func (s *watchStream) reopen(t *testing.T) { s.w = s.c.Watch(t, s.after) }

// next tells an ended stream from a silent one by the time: Next returns before d only when
// the stream ended.
func (s *watchStream) next(d time.Duration) (int64, bool, error) {
	deadline := time.Now().Add(d)
	e, err := s.w.Next(d)
	if err != nil {
		if time.Now().Before(deadline) {
			return 0, true, nil
		}
		return 0, false, err
	}
	s.after = max(s.after, e.BundleSeq)
	return e.BundleSeq, false, nil
}

// device names the i-th device of a kind of client.
func device(kind string, i int) string { return fmt.Sprintf("%s-%d", kind, i) }
