package natstest_test

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/pulsesync/pulsesync/internal/natstest"
)

func TestStart_ServerStopsWithTest(t *testing.T) {
	var url string
	t.Run("uses a server", func(t *testing.T) {
		url = natstest.Start(t).URL()
		nc, err := nats.Connect(url)
		if err != nil {
			t.Fatalf("connect to %s: %v", url, err)
		}
		nc.Close()
	})
	if !strings.HasPrefix(url, "nats://127.0.0.1:") {
		t.Fatalf("URL = %q, want a loopback nats:// URL", url)
	}
	if nc, err := nats.Connect(url); err == nil {
		nc.Close()
		t.Fatalf("server at %s still accepts clients after its test ended", url)
	}
}
