package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/internal/natsembed"
	"github.com/pulsesync/pulsesync/internal/servertest"
	"github.com/pulsesync/pulsesync/internal/v1test"
	"github.com/pulsesync/pulsesync/pgv1/wire"
)

// The v1 helpers of the end-to-end tests, and what only a /sync/watch stream does
// (docs/protocol-v1.md §3.12). Its fan-out across nodes, through each fault of invariant I4, is
// checked with v0's in fanout_test.go.

// v1Pair is pair for two nodes that also serve v1.
func v1Pair(t *testing.T, nats *natsembed.Server, reconcile time.Duration) (a, b *servertest.Server) {
	t.Helper()
	return pairWith(t, servertest.Options{V1: true, ReconcileEvery: reconcile}, nats)
}

// v1Source is one source of a user pushing one-row bundles, with its next source_bundle_id.
type v1Source struct {
	*v1test.Client
	next int64
}

// newV1Source returns source of user on srv, its scope connected (initialized empty the first
// time).
func newV1Source(t *testing.T, srv *servertest.Server, user, source string) *v1Source {
	t.Helper()
	c := v1test.New(srv, user, source)
	if err := c.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	return &v1Source{Client: c, next: 1}
}

// pushRows commits the source's next bundle of n new users rows and returns it.
func (s *v1Source) pushRows(ctx context.Context, n int) (v1test.Bundle, error) {
	rows := make([]v1test.Row, n)
	for i := range rows {
		rows[i] = v1test.NewUser(wire.NewUUID(), fmt.Sprintf("%s-%d-%d", s.Source(), s.next, i), s.next)
	}
	b, err := s.Push(ctx, s.next, rows)
	if err == nil {
		s.next++
	}
	return b, err
}

// push commits the source's next bundle of one row and returns its bundle_seq.
func (s *v1Source) push(t *testing.T) int64 {
	t.Helper()
	b, err := s.pushRows(t.Context(), 1)
	if err != nil {
		t.Fatalf("push %s/%d: %v", s.Source(), s.next, err)
	}
	return b.BundleSeq
}

// TestV1Watch_BehindOnConnectHearsAtOnce: a watch whose after_bundle_seq is below the user's
// highest bundle_seq gets an event for it at once, with nothing committed after it connected
// and reconciliation far away; one connecting at the highest gets no catch-up, so its first
// event is the next bundle.
func TestV1Watch_BehindOnConnectHearsAtOnce(t *testing.T) {
	srv := servertest.New(t, servertest.Options{V1: true, ReconcileEvery: time.Hour})
	phone := newV1Source(t, srv, "alice", "phone")
	var last int64
	for range 3 {
		last = phone.push(t)
	}
	laptop := v1test.New(srv, "alice", "laptop")
	start := time.Now()
	if e := laptop.Watch(t, 1).Read(); e.BundleSeq != last {
		t.Fatalf("catch-up event %+v, want bundle_seq %d", e, last)
	}
	t.Logf("catch-up event after %v", time.Since(start))

	current := laptop.Watch(t, last)
	next := phone.push(t)
	if e := current.Read(); e.BundleSeq != next {
		t.Fatalf("first event of a watch connected at %d: %+v, want bundle_seq %d", last, e, next)
	}
}
