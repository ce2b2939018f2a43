package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pulsesync/pulsesync/internal/demo"
	"github.com/pulsesync/pulsesync/internal/pushtest"
	"github.com/pulsesync/pulsesync/internal/servertest"
)

// processNode is a `pulsesync serve` process: the real binary, killed with real signals.
type processNode struct {
	URL  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	log  *bytes.Buffer
}

// buildPulsesync compiles ./cmd/pulsesync into dir and returns the binary's path.
func buildPulsesync(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "pulsesync")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/pulsesync/pulsesync/cmd/pulsesync").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/pulsesync: %v\n%s", err, out)
	}
	return bin
}

// startProcessNode runs `bin serve` on databaseURL with the demo tables and secret and waits
// until it answers /ready. The process is killed when the test ends, if still running.
func startProcessNode(t *testing.T, bin, databaseURL, nodeID string) *processNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the process binds it next; another taker in between fails the start loudly
	cmd := exec.Command(bin, "serve", "--database-url", databaseURL, "--jwt-secret", demo.Secret,
		"--tables", strings.Join(demo.Tables(), ","), "--addr", addr, "--node-id", nodeID,
		"--log-level", "warn", "--limit-exempt", "127.0.0.0/8", "--shutdown-timeout", "30s")
	p := &processNode{URL: "http://" + addr, cmd: cmd, done: make(chan struct{}), log: new(bytes.Buffer)}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var logMu sync.Mutex
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			logMu.Unlock()
		}
	}()
	go func() {
		<-copied
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			logMu.Lock()
			t.Logf("%s's log:\n%s", nodeID, p.log)
			logMu.Unlock()
		}
	})
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(time.Minute)
	for readyStatus(client, p.URL) != http.StatusOK {
		select {
		case <-p.done:
			t.Fatalf("%s exited before it was ready: %v", nodeID, cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within a minute", nodeID)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

// signal sends sig to the process and waits until it has exited, at most a minute.
func (p *processNode) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		t.Fatalf("process still running a minute after %v", sig)
	}
}

// TestFault_ProcessKilled runs a real `pulsesync serve` beside an in-process node on one
// database, puts it under load and kills it: SIGKILL, then, on a fresh pair, SIGTERM.
func TestFault_ProcessKilled(t *testing.T) {
	bin := buildPulsesync(t, t.TempDir())

	// SIGKILL: alice's devices upload only to the process until it dies, bob's fail over to
	// the other node. Whatever the process committed for alice just before dying it may not
	// have announced, and nothing else writes for alice until her devices fail over. Pass rule:
	// alice's device on the surviving node hears her stream's true end within the
	// reconciliation bound of the kill; once alice's devices fail over too, every upload
	// answered 200 is in the stream once, every cut one converges on retry, and each batch is
	// one block (all or nothing).
	t.Run("SIGKILL", func(t *testing.T) {
		a := servertest.New(t, servertest.Options{ReconcileEvery: reconcileEvery, NodeID: "node-a"})
		k := startProcessNode(t, bin, a.DatabaseURL, "node-k")
		ws := listen(t, a)
		var failedOver atomic.Bool
		aliceNodes := func() []string {
			if failedOver.Load() {
				return []string{a.URL}
			}
			return []string{k.URL}
		}
		alice := startLoad(t, a.Client, aliceNodes, []string{"alice"}, 3, 50)
		bob := startLoad(t, a.Client, nodes(k.URL, a.URL), []string{"bob"}, 3, 50)
		alice.waitAcked(t, 600)
		k.signal(t, syscall.SIGKILL)
		killedAt := time.Now()
		ackedAtKill := alice.ledger.highest("alice")
		end := int64(len(readStream(t, a.Client, a.URL, "alice")))
		f := ws.ReadUntil(end)
		if took := time.Since(killedAt); took > 4*reconcileEvery+time.Second {
			t.Errorf("heard seq %d (alice's stream ends at %d, %d acknowledged) %v after the kill, want within %v",
				f.Seq, end, ackedAtKill, took, 4*reconcileEvery+time.Second)
		}
		failedOver.Store(true)
		alice.waitAcked(t, 300)
		bob.waitAcked(t, 300)
		alice.end(t)
		bob.end(t)
		n := checkAll(t, a.Client, a.URL, alice.ledger) + checkAll(t, a.Client, a.URL, bob.ledger)
		byStatus, transport := bob.failures()
		t.Logf("%d changes checked; at the kill alice's stream ended at %d, %d of it acknowledged; bob's failed attempts: %v by status, %d without answer",
			n, end, ackedAtKill, byStatus, transport)
	})

	// SIGTERM: a device on the process, and uploads in flight to it, among them a large one
	// whose body was fully sent when the signal came. Pass rule: the WebSocket closes with
	// 1012; the large upload and every other request the process accepted are answered 200 (no
	// 5xx, no cut answer); the process exits cleanly; nothing acknowledged is lost.
	t.Run("SIGTERM", func(t *testing.T) {
		a := servertest.New(t, servertest.Options{ReconcileEvery: reconcileEvery, NodeID: "node-a"})
		k := startProcessNode(t, bin, a.DatabaseURL, "node-k")
		ws := pushtest.Dial(t, k.URL, "after=0", faultToken(t, "alice", "laptop"))
		if f := ws.Read(); f.Type != "ready" {
			t.Fatalf("first frame %+v, want ready", f)
		}
		ld := startLoad(t, a.Client, nodes(k.URL, a.URL), []string{"alice", "bob"}, 3, 50)
		ld.waitAcked(t, 600)

		big := newDevice(t, a.Client, "carol", "big")
		batch := big.nextBatch(5000)
		sent := make(chan struct{})
		type result struct {
			status int
			ans    uploadAnswer
			err    error
		}
		got := make(chan result, 1)
		go func() {
			body := &signalAtEOF{r: bytes.NewReader(uploadBody(batch)), eof: sent}
			req, _ := http.NewRequest(http.MethodPost, k.URL+"/sync/upload", body)
			req.Header.Set("Authorization", "Bearer "+big.token)
			req.ContentLength = int64(body.r.Len())
			resp, err := a.Client.Do(req)
			if err != nil {
				got <- result{err: err}
				return
			}
			defer resp.Body.Close()
			data, err := io.ReadAll(resp.Body)
			var ans uploadAnswer
			if err == nil && resp.StatusCode == http.StatusOK {
				err = json.Unmarshal(data, &ans)
			}
			got <- result{resp.StatusCode, ans, err}
		}()
		<-sent
		k.signal(t, syscall.SIGTERM)
		if code := k.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("process exited with %d after SIGTERM, want 0", code)
		}
		ws.ExpectClose(websocket.StatusServiceRestart)
		r := <-got
		if r.err != nil || r.status != http.StatusOK || len(r.ans.Statuses) != len(batch) {
			t.Fatalf("upload in flight at SIGTERM: status %d, %d statuses, %v; want 200 with every change", r.status, len(r.ans.Statuses), r.err)
		}
		ld.ledger.record("carol", batch, r.ans.HighestServerSeq)
		ld.waitAcked(t, 300)
		ld.end(t)
		byStatus, transport := ld.failures()
		if len(byStatus) > 0 {
			t.Errorf("uploads answered %v during the shutdown, want every accepted one answered 200", byStatus)
		}
		n := checkAll(t, a.Client, a.URL, ld.ledger)
		t.Logf("%d changes checked; %d attempts refused without an answer after the listener closed", n, transport)
	})
}

// signalAtEOF is a request body that closes eof once it has been read to the end: the whole
// body is on its way to the server.
type signalAtEOF struct {
	r    *bytes.Reader
	eof  chan struct{}
	once sync.Once
}

func (s *signalAtEOF) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF {
		s.once.Do(func() { close(s.eof) })
	}
	return n, err
}
