package natsembed_test

import (
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pulsesync/pulsesync/internal/natsembed"
)

// start starts a server the test's cleanup stops.
func start(t *testing.T, cfg natsembed.Config) *natsembed.Server {
	t.Helper()
	srv, err := natsembed.Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

// roundTrip publishes one message through nc to itself and waits for it.
func roundTrip(t *testing.T, nc *nats.Conn, subject string) {
	t.Helper()
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.Publish(subject, []byte("hello")); err != nil {
		t.Fatalf("publish: %v", err)
	}
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("receive on %s: %v", subject, err)
	}
	if string(msg.Data) != "hello" {
		t.Fatalf("received %q, want %q", msg.Data, "hello")
	}
}

func TestStart_ServesOnLoopback(t *testing.T) {
	t.Parallel()
	srv := start(t, natsembed.Config{})
	if !strings.HasPrefix(srv.URL(), "nats://127.0.0.1:") {
		t.Errorf("URL = %s, want nats://127.0.0.1:<port>", srv.URL())
	}
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer nc.Close()
	roundTrip(t, nc, "hello.start")
}

func TestRestart_SamePortAndClientsReconnect(t *testing.T) {
	t.Parallel()
	srv := start(t, natsembed.Config{})
	url := srv.URL()
	reconnected := make(chan struct{}, 1)
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond),
		nats.ReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} }))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer nc.Close()

	srv.Stop()
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "nats://"), time.Second); err == nil {
		t.Fatal("port still accepts connections after Stop")
	}
	srv.Stop() // stopping twice is harmless

	if err := srv.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if srv.URL() != url {
		t.Errorf("URL after Restart = %s, want %s", srv.URL(), url)
	}
	select {
	case <-reconnected:
	case <-time.After(10 * time.Second):
		t.Fatal("client did not reconnect within 10s of Restart")
	}
	roundTrip(t, nc, "hello.restart")
}

func TestStart_PortInUseFailsFast(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	began := time.Now()
	srv, err := natsembed.Start(natsembed.Config{Port: port, Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		srv.Stop()
		t.Fatalf("Start on busy port %d succeeded, want an error", port)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("Start on a busy port took %s to fail, want well under the ready timeout", took)
	}
	if !strings.Contains(err.Error(), "listen") {
		t.Errorf("error %q does not say listening failed", err)
	}
}
