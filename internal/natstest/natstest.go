// Package natstest gives a test an embedded NATS server of its own (internal/natsembed) on a
// free loopback port, stopped when the test ends. Tests that simulate a broker outage call the
// server's Stop and Restart; the URL stays the same.
package natstest

import (
	"testing"

	"github.com/pulsesync/pulsesync/internal/natsembed"
)

// Start starts a NATS server for t and stops it at t's cleanup.
func Start(t testing.TB) *natsembed.Server {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Config{})
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	t.Cleanup(srv.Stop)
	return srv
}
