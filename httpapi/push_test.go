package httpapi_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/pulsesync/pulsesync/httpapi/auth"
	"github.com/pulsesync/pulsesync/internal/pushtest"
	"github.com/pulsesync/pulsesync/internal/servertest"
	"github.com/pulsesync/pulsesync/push"
)

// insertBody is an upload of n new business.users rows with source_change_ids from first on.
func insertBody(first int64, n int) string {
	body := `{"last_server_seq_seen":0,"changes":[`
	for i := range int64(n) {
		if i > 0 {
			body += ","
		}
		pk := fmt.Sprintf("6f0d3c4e-8f0b-4c1e-9a57-%012d", first+i)
		body += fmt.Sprintf(`{"source_change_id":%d,"schema":"business","table":"users","op":"INSERT","pk":"%s","server_version":0,"payload":{"id":"%s","name":"u"}}`, first+i, pk, pk)
	}
	return body + `]}`
}

func TestWS_ReadyThenChangesOnAnotherDevicesUpload(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	phone := newDevice(srv, "alice", "phone")
	ws := pushtest.Dial(t, srv.URL, "after=0", srv.Token("alice", "laptop"))
	if f := ws.Read(); f.Type != "ready" || f.Seq != 0 || f.HeartbeatS != 25 {
		t.Fatalf("first frame %+v, want ready seq 0 heartbeat_s 25", f)
	}
	res := phone.upload(t, insertBody(1, 3))
	if f := ws.ReadUntil(*res.HighestServerSeq); f.Seq != 3 {
		t.Fatalf("changes frame %+v, want seq 3", f)
	}
}

func TestWS_CatchUpOnConnectWithAStaleCursor(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	newDevice(srv, "alice", "phone").upload(t, insertBody(1, 5))
	ws := pushtest.Dial(t, srv.URL, "after=2", srv.Token("alice", "laptop"))
	if f := ws.Read(); f.Type != "ready" || f.Seq != 5 {
		t.Fatalf("first frame %+v, want ready seq 5", f)
	}
	if f := ws.Read(); f.Type != "changes" || f.Seq != 5 {
		t.Fatalf("second frame %+v, want changes seq 5 at once", f)
	}
}

func TestWS_UpToDateCursorGetsOnlyReady(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	newDevice(srv, "alice", "phone").upload(t, insertBody(1, 2))
	ws := pushtest.Dial(t, srv.URL, "after=2", srv.Token("alice", "laptop"))
	if f := ws.Read(); f.Type != "ready" || f.Seq != 2 {
		t.Fatalf("first frame %+v, want ready seq 2", f)
	}
	ws.ExpectSilence(300 * time.Millisecond)
}

// TestWS_OwnUploadDoesNotWakeTheUploader: the uploading device's connection stays quiet, while
// the user's other device is told.
func TestWS_OwnUploadDoesNotWakeTheUploader(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	phone := newDevice(srv, "alice", "phone")
	own := pushtest.Dial(t, srv.URL, "after=0", phone.token)
	other := pushtest.Dial(t, srv.URL, "after=0", srv.Token("alice", "laptop"))
	own.Read()
	other.Read()
	phone.upload(t, insertBody(1, 1))
	phone.upload(t, insertBody(2, 4))
	other.ReadUntil(5)
	own.ExpectSilence(300 * time.Millisecond)
}

// TestWS_UsersAreIsolated: another user's connection hears nothing of alice's uploads.
func TestWS_UsersAreIsolated(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	bob := pushtest.Dial(t, srv.URL, "after=0", srv.Token("bob", "laptop"))
	alice := pushtest.Dial(t, srv.URL, "after=0", srv.Token("alice", "laptop"))
	bob.Read()
	alice.Read()
	newDevice(srv, "alice", "phone").upload(t, insertBody(1, 2))
	alice.ReadUntil(2)
	bob.ExpectSilence(300 * time.Millisecond)
}

func TestWS_SchemaFilter(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	business := pushtest.Dial(t, srv.URL, "after=0&schema=business", srv.Token("alice", "laptop"))
	other := pushtest.Dial(t, srv.URL, "after=0&schema=audit", srv.Token("alice", "tablet"))
	business.Read()
	other.Read()
	newDevice(srv, "alice", "phone").upload(t, insertBody(1, 1))
	business.ReadUntil(1)
	other.ExpectSilence(300 * time.Millisecond)
}

// TestWS_FirstMessageAuth is the browser's way in: no header, the token in the first message.
func TestWS_FirstMessageAuth(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	ws := pushtest.Dial(t, srv.URL, "after=0", "")
	ws.Send(map[string]string{"type": "auth", "token": srv.Token("alice", "browser")})
	if f := ws.Read(); f.Type != "ready" {
		t.Fatalf("first frame %+v, want ready", f)
	}
	newDevice(srv, "alice", "phone").upload(t, insertBody(1, 1))
	ws.ReadUntil(1)
}

// TestWS_BadTokensGetNoData: a bad header token is refused before the upgrade; a bad or expired
// first-message token closes the socket with 4003 or 4001 before any frame.
func TestWS_BadTokensGetNoData(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	expired, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "did": "laptop",
		"exp": time.Now().Add(-time.Minute).Unix()}).SignedString(srv.Secret)
	if err != nil {
		t.Fatal(err)
	}
	wrongSecret, err := auth.Mint([]byte("not the secret"), "alice", "laptop", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for name, token := range map[string]string{"expired": expired, "wrong secret": wrongSecret, "garbage": "abc"} {
		t.Run("header "+name, func(t *testing.T) {
			_, resp, err := pushtest.DialErr(t, srv.URL, "after=0", token)
			if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("dial: %v, %v; want 401 before the upgrade", err, resp)
			}
		})
	}
	cases := []struct {
		name    string
		message any
		code    websocket.StatusCode
	}{
		{"expired", map[string]string{"type": "auth", "token": expired}, push.CloseTokenExpired},
		{"wrong secret", map[string]string{"type": "auth", "token": wrongSecret}, push.CloseForbidden},
		{"not an auth message", map[string]any{"type": "ack", "seq": 1}, push.CloseForbidden},
	}
	for _, tc := range cases {
		t.Run("first message "+tc.name, func(t *testing.T) {
			ws := pushtest.Dial(t, srv.URL, "after=0", "")
			ws.Send(tc.message)
			ws.ExpectClose(tc.code)
		})
	}
}

func TestWS_BadParametersAre400(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	for query, message := range map[string]string{"after=x": "after must be an integer", "after=-1": "after must be >= 0",
		"schema=Bad": "invalid schema name"} {
		r := call(t, srv, http.MethodGet, "/sync/ws?"+query, srv.Token("alice", "laptop"), "")
		wantError(t, r, http.StatusBadRequest, "invalid_request", message)
	}
}

// TestWS_ClosesWith4001AtTokenExpiry: the connection never outlives its token.
func TestWS_ClosesWith4001AtTokenExpiry(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	token, err := auth.Mint(srv.Secret, "alice", "laptop", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ws := pushtest.Dial(t, srv.URL, "after=0", token)
	if f := ws.Read(); f.Type != "ready" {
		t.Fatalf("first frame %+v, want ready", f)
	}
	ws.ExpectClose(push.CloseTokenExpired)
}

// TestWS_ClosesWith1012OnShutdown: a graceful shutdown tells clients to reconnect elsewhere.
func TestWS_ClosesWith1012OnShutdown(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	ws := pushtest.Dial(t, srv.URL, "after=0", srv.Token("alice", "laptop"))
	ws.Read()
	go srv.Stop()
	ws.ExpectClose(websocket.StatusServiceRestart)
}

func TestWS_AckMovesTheCursor(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	phone := newDevice(srv, "alice", "phone")
	ws := pushtest.Dial(t, srv.URL, "after=0", srv.Token("alice", "laptop"))
	ws.Read()
	phone.upload(t, insertBody(1, 1))
	ws.ReadUntil(1)
	ws.Send(map[string]any{"type": "ack", "seq": 1})
	phone.upload(t, insertBody(2, 1))
	if f := ws.ReadUntil(2); f.Seq != 2 {
		t.Fatalf("frame %+v, want changes seq 2", f)
	}
}

// TestWS_ConnectionCapPerUser: past the per-user cap a connection is refused with 429 and
// Retry-After, while another user still gets in.
func TestWS_ConnectionCapPerUser(t *testing.T) {
	srv := servertest.New(t, servertest.Options{Push: push.Config{MaxPerUser: 2}})
	for i := range 2 {
		pushtest.Dial(t, srv.URL, "after=0", srv.Token("alice", "dev-"+strconv.Itoa(i))).Read()
	}
	_, resp, err := pushtest.DialErr(t, srv.URL, "after=0", srv.Token("alice", "dev-3"))
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third connection: %v %v, want 429 with Retry-After", err, resp)
	}
	pushtest.Dial(t, srv.URL, "after=0", srv.Token("bob", "dev-1")).Read()
}

// TestWS_BurstCoalesces: a burst of commits reaches a reader as few frames, the last one at the
// final seq (invariant I5: nothing queues per connection).
func TestWS_BurstCoalesces(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	phone := newDevice(srv, "alice", "phone")
	ws := pushtest.Dial(t, srv.URL, "after=0", srv.Token("alice", "laptop"))
	ws.Read()
	const uploads = 40
	var wg sync.WaitGroup
	for i := range uploads {
		wg.Go(func() { phone.upload(t, insertBody(int64(i+1), 1)) })
	}
	wg.Wait()
	frames := 0
	for {
		f := ws.Read()
		frames++
		if f.Seq == uploads {
			break
		}
	}
	if frames > uploads {
		t.Errorf("%d frames for %d commits, want at most one each", frames, uploads)
	}
	t.Logf("%d commits reached the reader as %d frames", uploads, frames)
}

func TestSSE_StreamsAndResumesWithLastEventID(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	phone := newDevice(srv, "alice", "phone")
	laptop := srv.Token("alice", "laptop")
	stream := pushtest.OpenSSE(t, srv.Client, srv.URL, "after=0", laptop, nil)
	if got := stream.Resp.Header.Get("X-Accel-Buffering"); got != "no" {
		t.Errorf("X-Accel-Buffering %q, want no", got)
	}
	if f := stream.Read(); f.Type != "ready" || f.Seq != 0 {
		t.Fatalf("first event %+v, want ready seq 0", f)
	}
	phone.upload(t, insertBody(1, 2))
	f := stream.ReadUntil(2)
	if pushtest.SeqID(f) != 2 {
		t.Fatalf("changes event id %q, want 2", f.ID)
	}
	// The browser reconnects with the last id it saw; two more commits happened meanwhile.
	phone.upload(t, insertBody(3, 2))
	resumed := pushtest.OpenSSE(t, srv.Client, srv.URL, "after=0", laptop, http.Header{"Last-Event-Id": {"2"}})
	if f := resumed.Read(); f.Type != "ready" || f.Seq != 4 {
		t.Fatalf("resumed first event %+v, want ready seq 4", f)
	}
	if f := resumed.Read(); f.Type != "changes" || f.Seq != 4 || f.ID != "4" {
		t.Fatalf("resumed second event %+v, want changes 4 with id 4", f)
	}
}

// TestLongPoll_ReturnsEarlyOnAChange: a long-poll held empty answers as soon as another
// device's change commits, with that change.
func TestLongPoll_ReturnsEarlyOnAChange(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	laptop := newDevice(srv, "alice", "laptop")
	phone := newDevice(srv, "alice", "phone")
	answered := make(chan downloadResponse, 1)
	start := time.Now()
	go func() { answered <- laptop.download(t, "after=0&limit=100&wait=30") }()
	// The poll must be waiting before the upload for the test to mean anything: wait until the
	// server counts it.
	pushtest.WaitFor(t, func() bool { return srv.Node.Push != nil && longPolls(t, srv) == 1 })
	phone.upload(t, insertBody(1, 1))
	select {
	case page := <-answered:
		if len(page.Changes) != 1 || page.NextAfter != 1 || page.WindowUntil != 1 {
			t.Fatalf("answer %+v, want the one change", page)
		}
		if waited := time.Since(start); waited > 20*time.Second {
			t.Fatalf("answered after %v, want long before wait=30 elapsed", waited)
		}
	case <-time.After(pushtest.Wait):
		t.Fatal("the long-poll did not return after the change")
	}
}

// TestLongPoll_TimesOutWithThePlainAnswer: nothing arrives within wait; the answer is then
// byte for byte the plain download's.
func TestLongPoll_TimesOutWithThePlainAnswer(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	laptop := newDevice(srv, "alice", "laptop")
	newDevice(srv, "alice", "phone").upload(t, insertBody(1, 2))
	start := time.Now()
	held := call(t, srv, http.MethodGet, "/sync/download?after=2&limit=100&wait=1", laptop.token, "")
	if waited := time.Since(start); waited < time.Second {
		t.Fatalf("answered after %v, want it held for wait=1", waited)
	}
	plain := call(t, srv, http.MethodGet, "/sync/download?after=2&limit=100", laptop.token, "")
	if held.status != http.StatusOK || string(held.body) != string(plain.body) {
		t.Fatalf("held answer %d %s, want the plain answer %s", held.status, held.body, plain.body)
	}
}

func TestLongPoll_BadWaitIs400(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	token := srv.Token("alice", "laptop")
	for query, message := range map[string]string{"wait=x": "wait must be an integer", "wait=61": "wait must be between 0 and 60",
		"wait=-1": "wait must be between 0 and 60"} {
		wantError(t, call(t, srv, http.MethodGet, "/sync/download?"+query, token, ""), http.StatusBadRequest, "invalid_request", message)
	}
}

// longPolls reads the push service's live long-poll count from the metrics.
func longPolls(t *testing.T, srv *servertest.Server) int {
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
				if l.GetName() == "transport" && l.GetValue() == "longpoll" {
					return int(m.GetGauge().GetValue())
				}
			}
		}
	}
	return 0
}

// TestWS_DeadPeerIsDropped: a peer that stops answering pings (here: stops reading, so its
// library sends no pongs) is dropped after a heartbeat and the pong timeout.
func TestWS_DeadPeerIsDropped(t *testing.T) {
	srv := servertest.New(t, servertest.Options{Push: push.Config{Heartbeat: 200 * time.Millisecond, PongTimeout: 200 * time.Millisecond}})
	alive := pushtest.Dial(t, srv.URL, "after=0", srv.Token("alice", "laptop"))
	dead := pushtest.Dial(t, srv.URL, "after=0", srv.Token("alice", "phone"))
	if f := dead.Read(); f.Type != "ready" || f.HeartbeatS != 0 {
		t.Fatalf("first frame %+v, want ready with heartbeat_s 0 (200 ms rounds down)", f)
	}
	go func() { // the live peer keeps reading, which answers the server's pings
		for {
			if _, err := alive.ReadWithin(time.Minute); err != nil {
				return
			}
		}
	}()
	pushtest.WaitFor(t, func() bool { return srv.Node.Hub.Connections() == 1 })
	time.Sleep(time.Second) // several heartbeats: the live peer must survive them; not a synchronisation
	if n := srv.Node.Hub.Connections(); n != 1 {
		t.Fatalf("%d connections after the dead one was dropped, want the live one to stay", n)
	}
}

// TestEmptyPoll_FromMemoryUntilAChangeCommits: once the node knows a user's watermark, an empty
// poll is answered from memory with exactly the bytes the database would give; an upload on the
// user's other device moves the watermark, and the next poll finds the change.
func TestEmptyPoll_FromMemoryUntilAChangeCommits(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	// The cache answers only while the node's advance stream is up; on a loaded machine its
	// LISTEN connection may still be opening.
	pushtest.WaitFor(t, srv.Node.Cluster.Healthy)
	phone := newDevice(srv, "alice", "phone")
	laptop := newDevice(srv, "alice", "laptop")
	phone.upload(t, insertBody(1, 2))
	const query = "/sync/download?after=2&limit=100&schema=business"
	fromDatabase := call(t, srv, http.MethodGet, query, laptop.token, "")
	memoryBefore := answeredFrom(t, srv, "memory")
	fromMemory := call(t, srv, http.MethodGet, query, laptop.token, "")
	if answeredFrom(t, srv, "memory") != memoryBefore+1 {
		t.Fatal("the second empty poll was not answered from memory")
	}
	if string(fromMemory.body) != string(fromDatabase.body) || fromMemory.status != http.StatusOK {
		t.Fatalf("from memory %d %s, want the database's answer %s", fromMemory.status, fromMemory.body, fromDatabase.body)
	}
	seq := *phone.upload(t, insertBody(3, 1)).HighestServerSeq
	pushtest.WaitFor(t, func() bool { // the advance reaches the cache right after the commit
		page := laptop.download(t, "after=2&limit=100&schema=business")
		return len(page.Changes) == 1 && page.Changes[0].ServerID == seq
	})
}

// answeredFrom reads pulsesync_downloads_total{answered_from=from}.
func answeredFrom(t *testing.T, srv *servertest.Server, from string) float64 {
	t.Helper()
	families, err := srv.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "pulsesync_downloads_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			if m.GetLabel()[0].GetValue() == from {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// sessionReaders counts the goroutines reading a WebSocket session.
func sessionReaders() int { return pushtest.Goroutines("push.(*wsSession).readAvailable") }

// TestWS_IdleConnectionsHoldNoReader: between messages a WebSocket rests with no goroutine
// reading it; it still answers pings (the heartbeat here is 100 ms, so a resting socket that
// missed its pongs would be dropped), takes acks and hears changes.
func TestWS_IdleConnectionsHoldNoReader(t *testing.T) {
	srv := servertest.New(t, servertest.Options{Push: push.Config{Heartbeat: 100 * time.Millisecond, PongTimeout: 2 * time.Second}})
	phone := newDevice(srv, "alice", "phone")
	const n = 50
	conns := make([]*pushtest.WS, n)
	for i := range conns {
		conns[i] = pushtest.Dial(t, srv.URL, "after=0", srv.Token("alice", fmt.Sprintf("laptop-%d", i)))
		conns[i].Read()
	}
	pushtest.WaitFor(t, func() bool { return sessionReaders() == 0 })
	// The clients read in the background, which answers the server's pings.
	frames := make(chan pushtest.Frame, 4*n)
	for _, ws := range conns {
		go func() {
			for {
				f, err := ws.ReadWithin(time.Minute)
				if err != nil {
					return
				}
				frames <- f
			}
		}()
	}
	time.Sleep(500 * time.Millisecond) // several heartbeats; not a synchronisation
	for _, ws := range conns {
		ws.Send(map[string]any{"type": "ack", "seq": 0})
	}
	phone.upload(t, insertBody(1, 1))
	for range n {
		select {
		case f := <-frames:
			if f.Type != "changes" || f.Seq != 1 {
				t.Fatalf("frame %+v, want changes seq 1", f)
			}
		case <-time.After(pushtest.Wait):
			t.Fatalf("not every resting connection heard the upload")
		}
	}
	if got := srv.Node.Hub.Connections(); got != n {
		t.Fatalf("%d connections after heartbeats, want all %d alive", got, n)
	}
	pushtest.WaitFor(t, func() bool { return sessionReaders() == 0 })
}

// trickleConn writes one byte at a time with a pause after each, so the server receives frame
// headers and payloads split across many reads.
type trickleConn struct {
	net.Conn
	on *atomic.Bool
}

func (c trickleConn) Write(p []byte) (int, error) {
	if !c.on.Load() {
		return c.Conn.Write(p)
	}
	for i := range p {
		if _, err := c.Conn.Write(p[i : i+1]); err != nil {
			return i, err
		}
		time.Sleep(time.Millisecond)
	}
	return len(p), nil
}

// TestWS_MessagesArrivingInPiecesAreRead: client messages in fragments, each frame's bytes
// arriving separately with pauses in between, are read whole: the socket must not rest in the
// middle of a frame or a message. The acks they carry must take effect, so the first upload
// the device hears of is the one past its ack.
func TestWS_MessagesArrivingInPiecesAreRead(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	phone := newDevice(srv, "alice", "phone")
	var trickle atomic.Bool
	dialer := &net.Dialer{}
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dialer.DialContext(ctx, network, addr)
		return trickleConn{conn, &trickle}, err
	}}}
	ctx, cancel := context.WithTimeout(context.Background(), pushtest.Wait)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/sync/ws?after=0",
		&websocket.DialOptions{HTTPClient: client, HTTPHeader: http.Header{"Authorization": {"Bearer " + srv.Token("alice", "laptop")}}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.CloseNow()
	frames := make(chan string, 8)
	go func() { // reading also takes in the pong that Ping waits for
		for {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				close(frames)
				return
			}
			frames <- string(data)
		}
	}()
	if f := <-frames; !strings.Contains(f, `"ready"`) {
		t.Fatalf("first frame %q, want ready", f)
	}
	trickle.Store(true)
	for seq := 1; seq <= 2; seq++ {
		w, err := conn.Writer(ctx, websocket.MessageText)
		if err != nil {
			t.Fatalf("open message: %v", err)
		}
		for _, part := range []string{`{"type":`, `"ack",`, fmt.Sprintf(`"seq":%d}`, seq)} {
			if _, err := w.Write([]byte(part)); err != nil {
				t.Fatalf("write fragment: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("finish message: %v", err)
		}
	}
	// The server reads in order: its pong means it has taken in both acks.
	if err := conn.Ping(ctx); err != nil {
		t.Fatalf("ping after the acks: %v", err)
	}
	for i := int64(1); i <= 3; i++ {
		phone.upload(t, insertBody(i, 1))
	}
	if f := <-frames; f != `{"type":"changes","seq":3}` {
		t.Fatalf("first frame after acking seq 2: %q, want changes seq 3", f)
	}
}

// TestSSE_EndsAtTokenExpiry: the stream never outlives its token; at the expiry the response
// ends, so a browser's EventSource sees the end and reconnects with a fresh token.
func TestSSE_EndsAtTokenExpiry(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	token, err := auth.Mint(srv.Secret, "alice", "laptop", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	stream := pushtest.OpenSSE(t, srv.Client, srv.URL, "after=0", token, nil)
	if f := stream.Read(); f.Type != "ready" {
		t.Fatalf("first event %+v, want ready", f)
	}
	stream.ExpectEnd()
}

// TestLongPoll_EndsAtTokenExpiry: a long-poll whose token expires before its wait is answered
// at the expiry, with what a plain download answers.
func TestLongPoll_EndsAtTokenExpiry(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	newDevice(srv, "alice", "phone").upload(t, insertBody(1, 2))
	token, err := auth.Mint(srv.Secret, "alice", "laptop", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	held := call(t, srv, http.MethodGet, "/sync/download?after=2&limit=100&wait=30", token, "")
	if waited := time.Since(start); waited > 20*time.Second {
		t.Fatalf("answered after %v, want at the token's expiry, long before wait=30", waited)
	}
	plain := call(t, srv, http.MethodGet, "/sync/download?after=2&limit=100", srv.Token("alice", "laptop"), "")
	if held.status != http.StatusOK || string(held.body) != string(plain.body) {
		t.Fatalf("held answer %d %s, want the plain answer %s", held.status, held.body, plain.body)
	}
}
