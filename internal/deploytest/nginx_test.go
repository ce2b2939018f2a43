package deploytest

import (
	"net/http"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/httpapi"
	"github.com/pulsesync/pulsesync/internal/pushtest"
	"github.com/pulsesync/pulsesync/internal/servertest"
)

// maxClientsPerKind bounds how many streams of one kind a test opens through nginx to get at
// least one onto each node.
const maxClientsPerKind = 6

// TestNginx_CarriesEveryChannel drives each route family through deploy/nginx/pulsesync.conf:
// upload and download, a WebSocket, an SSE stream, a long-poll and a v1 watch hear one upload;
// bodies over nginx's 1 MiB default pass, bodies over the server's 32 MiB are refused in the
// protocol's envelope by nginx itself; operator endpoints stay inside.
func TestNginx_CarriesEveryChannel(t *testing.T) {
	d := newDeployment(t)
	d.expectRefusal(t, http.MethodGet, "/metrics", nil, http.StatusNotFound, "not_found")
	d.expectRefusal(t, http.MethodGet, "/syncx/status", nil, http.StatusNotFound, "not_found")

	ws := openWS(t, d, d.token("alice", "laptop"))
	sse := openSSE(t, d, d.token("alice", "tablet"))
	vera := d.v1Client(t, "vera", "vera-phone")
	watch := openWatch(t, d.v1Client(t, "vera", "vera-laptop"))
	type polled struct {
		p   page
		err error
	}
	poll := make(chan polled, 1)
	go func() {
		p, err := d.download(t.Context(), d.token("alice", "desk"), 0, 30)
		poll <- polled{p, err}
	}()
	pushtest.WaitFor(t, func() bool { return sessions(t, d.a, "longpoll")+sessions(t, d.b, "longpoll") == 1 })

	seq := d.upload(t, "alice", "phone", uploadBody(1, 2, 0))
	for name, s := range map[string]stream{"WebSocket": ws, "SSE": sse} {
		if n := follow(t, s, seq); n != 0 {
			t.Fatalf("%s reconnected %d times with both nodes up", name, n)
		}
	}
	select {
	case r := <-poll:
		if r.err != nil || len(r.p.Changes) != 2 || r.p.NextAfter != seq {
			t.Fatalf("long-poll through nginx: %+v %v, want the 2 changes up to seq %d", r.p, r.err, seq)
		}
	case <-time.After(pushtest.Wait):
		t.Fatalf("long-poll through nginx not answered within %v of the upload", pushtest.Wait)
	}
	if p, err := d.download(t.Context(), d.token("alice", "desk"), 0, 0); err != nil || len(p.Changes) != 2 {
		t.Fatalf("download through nginx: %+v %v, want 2 changes", p, err)
	}
	if n := follow(t, watch, pushBundle(t, vera, 1)); n != 0 {
		t.Fatalf("watch reconnected %d times with both nodes up", n)
	}

	// nginx's default client_max_body_size is 1 MiB; the shipped file matches the server's cap.
	big := d.upload(t, "alice", "phone", uploadBody(3, 1, 2<<20))
	if big <= seq {
		t.Fatalf("2 MiB upload through nginx: highest_server_seq %d, want above %d", big, seq)
	}
	d.expectRefusal(t, http.MethodPost, "/sync/upload", uploadBody(4, 1, httpapi.DefaultMaxBodyBytes),
		http.StatusRequestEntityTooLarge, "request_too_large")
}

// TestNginx_ClientsReconnectPastStoppedNode opens streams of every kind through nginx until
// each node holds some, stops node-a, and checks that exactly the devices it held reconnect
// through nginx (to node-b) and that every device hears the next upload and bundle; with
// node-b stopped too, nginx answers 503 in the protocol's envelope.
func TestNginx_ClientsReconnectPastStoppedNode(t *testing.T) {
	d := newDeployment(t)
	type kind struct {
		name    string
		open    func(i int) stream
		held    func(srv *servertest.Server) int
		streams []stream
		onA     int
	}
	vera := d.v1Client(t, "vera", "vera-phone")
	laptop := d.v1Client(t, "vera", "vera-laptop")
	kinds := []*kind{
		{name: "ws", open: func(i int) stream { return openWS(t, d, d.token("alice", device("ws", i))) },
			held: func(n *servertest.Server) int { return sessions(t, n, "ws") }},
		{name: "sse", open: func(i int) stream { return openSSE(t, d, d.token("alice", device("sse", i))) },
			held: func(n *servertest.Server) int { return sessions(t, n, "sse") }},
		{name: "watch", open: func(int) stream { return openWatch(t, laptop) },
			held: func(n *servertest.Server) int { return sessions(t, n, "watch") }},
	}
	for _, k := range kinds {
		for k.held(d.a) == 0 || k.held(d.b) == 0 {
			if len(k.streams) == maxClientsPerKind {
				t.Fatalf("%d %s streams through nginx: node-a holds %d, node-b %d; want both some (least_conn)",
					len(k.streams), k.name, k.held(d.a), k.held(d.b))
			}
			k.streams = append(k.streams, k.open(len(k.streams)))
			pushtest.WaitFor(t, func() bool { return k.held(d.a)+k.held(d.b) == len(k.streams) })
		}
	}

	// Before the stop, every device hears changes made through whichever node nginx picked.
	seq := d.upload(t, "alice", "phone", uploadBody(1, 1, 0))
	bundle := pushBundle(t, vera, 1)
	for _, k := range kinds {
		target := seq
		if k.name == "watch" {
			target = bundle
		}
		for i, s := range k.streams {
			if n := follow(t, s, target); n != 0 {
				t.Fatalf("%s %d reconnected %d times with both nodes up", k.name, i, n)
			}
		}
		k.onA = k.held(d.a)
	}

	// Long-polls waiting for the next change, on both nodes.
	type poller struct {
		done  chan error
		empty int // answers without changes: a stopping node answers at once with what there is
	}
	var polls []*poller
	for sessions(t, d.a, "longpoll") == 0 || sessions(t, d.b, "longpoll") == 0 {
		if len(polls) == maxClientsPerKind {
			t.Fatalf("%d long-polls through nginx: node-a holds %d, node-b %d; want both some",
				len(polls), sessions(t, d.a, "longpoll"), sessions(t, d.b, "longpoll"))
		}
		p := &poller{done: make(chan error, 1)}
		token := d.token("alice", device("poll", len(polls)))
		go func() {
			for {
				page, err := d.download(t.Context(), token, seq, 30)
				if err != nil || len(page.Changes) > 0 {
					p.done <- err
					return
				}
				p.empty++
			}
		}()
		polls = append(polls, p)
		pushtest.WaitFor(t, func() bool {
			return sessions(t, d.a, "longpoll")+sessions(t, d.b, "longpoll") == len(polls)
		})
	}
	pollsOnA := sessions(t, d.a, "longpoll")

	d.a.Stop()
	next := d.upload(t, "alice", "phone", uploadBody(2, 1, 0))
	nextBundle := pushBundle(t, vera, 2)
	for _, k := range kinds {
		target := next
		if k.name == "watch" {
			target = nextBundle
		}
		reconnects := 0
		for _, s := range k.streams {
			reconnects += follow(t, s, target)
		}
		if reconnects != k.onA {
			t.Fatalf("%s: %d devices reconnected through nginx, want the %d node-a held", k.name, reconnects, k.onA)
		}
		t.Logf("%s: %d of %d devices reconnected past the stopped node and heard the change", k.name, reconnects, len(k.streams))
	}
	empty := 0
	for i, p := range polls {
		select {
		case err := <-p.done:
			if err != nil {
				t.Fatalf("long-poll %d: %v", i, err)
			}
		case <-time.After(pushtest.Wait):
			t.Fatalf("long-poll %d not answered within %v of the upload", i, pushtest.Wait)
		}
		empty += p.empty
	}
	if empty != pollsOnA {
		t.Fatalf("%d long-polls came back empty and polled again, want the %d node-a held", empty, pollsOnA)
	}

	d.b.Stop()
	d.expectRefusal(t, http.MethodGet, "/sync/download?after=0&limit=10&schema=business", nil,
		http.StatusServiceUnavailable, "service_unavailable")
}
