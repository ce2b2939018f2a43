package cluster

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/pulsesync/pulsesync/sequencer"
)

// notifyChannel is the LISTEN/NOTIFY channel of advances.
const notifyChannel = "pulsesync_advances"

// notifyPayloadMax is the largest NOTIFY payload PostgreSQL accepts: it refuses 8000 bytes or more.
const notifyPayloadMax = 7999

// notifyBatchUsers flushes a batch early when this many users are waiting, so that one
// statement stays a few dozen payloads however busy the node is.
const notifyBatchUsers = 1000

// notifyTimeout bounds one flush statement.
const notifyTimeout = 5 * time.Second

// notifySQL sends one notification per payload in a single round trip. It runs in autocommit on
// a pooled connection, never in an upload transaction: a transaction with pending
// notifications takes a database-wide lock at commit, which serialises every writer behind it.
const notifySQL = `SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`

// notifier coalesces the advances announced on this node and sends them with pg_notify: every
// FlushEvery, or at once when notifyBatchUsers users are waiting, one statement carries all of
// them, several advances of one user merged into one. One flush runs at a time, so a slow
// database makes batches bigger, not more numerous.
type notifier struct {
	n      *Node
	writer batchWriter

	mu      sync.Mutex
	pending map[string]sequencer.Advance
	first   chan struct{} // capacity 1: the first advance of a batch arrived
	full    chan struct{} // capacity 1: the batch reached notifyBatchUsers
}

func newNotifier(n *Node) *notifier {
	return &notifier{
		n:       n,
		writer:  newBatchWriter(n.origin, notifyPayloadMax),
		pending: map[string]sequencer.Advance{},
		first:   make(chan struct{}, 1),
		full:    make(chan struct{}, 1),
	}
}

// add queues a for the next flush, merged with what is queued for its user.
func (nt *notifier) add(a sequencer.Advance) {
	a.Schemas = slices.Clone(a.Schemas) // kept until the flush; the caller's slice stays theirs
	nt.mu.Lock()
	if queued, ok := nt.pending[a.User]; ok {
		a = merge(queued, a)
	}
	nt.pending[a.User] = a
	size := len(nt.pending)
	nt.mu.Unlock()
	switch size {
	case 1:
		signal(nt.first)
	case notifyBatchUsers:
		signal(nt.full)
	}
}

// run flushes batches until ctx ends, then flushes what is left.
func (nt *notifier) run(ctx context.Context) {
	window := time.NewTimer(time.Hour)
	window.Stop() // armed per batch below
	for {
		select {
		case <-ctx.Done():
			nt.flush(context.WithoutCancel(ctx))
			return
		case <-nt.first:
		}
		window.Reset(nt.n.cfg.FlushEvery)
		select {
		case <-ctx.Done():
		case <-window.C:
		case <-nt.full:
		}
		window.Stop()
		nt.flush(context.WithoutCancel(ctx))
	}
}

// flush sends everything queued. A failed flush is logged and counted, not retried: the other
// nodes' reconciliation repairs it, and retrying would only delay the next batch.
func (nt *notifier) flush(ctx context.Context) {
	nt.mu.Lock()
	pending := nt.pending
	if len(pending) == 0 {
		nt.mu.Unlock()
		return
	}
	nt.pending = map[string]sequencer.Advance{} // a fresh map: a burst's buckets are not kept
	nt.mu.Unlock()
	advances := make([]sequencer.Advance, 0, len(pending))
	for _, a := range pending {
		advances = append(advances, a)
	}

	m := nt.n.m
	payloads, dropped := nt.writer.split(advances)
	if dropped > 0 {
		m.publishFailures.WithLabelValues(transportNotify).Add(float64(dropped))
		nt.n.log.Warn("advances too large for a notification were not sent", "advances", dropped)
	}
	if len(payloads) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, notifyTimeout)
	defer cancel()
	if _, err := nt.n.cfg.Pool.Exec(ctx, notifySQL, notifyChannel, payloads); err != nil {
		m.publishFailures.WithLabelValues(transportNotify).Add(float64(len(advances) - dropped))
		nt.n.log.Warn("notify other nodes of advances", "advances", len(advances)-dropped, "err", err)
		return
	}
	m.notifyFlushes.Inc()
	m.notifications.Add(float64(len(payloads)))
	m.published.WithLabelValues(transportNotify).Add(float64(len(advances) - dropped))
}

// merge combines two advances of one user into one that claims nothing the two did not: the
// highest seq, and From, Source and Schemas only where both agree on them. Two ranges with a gap
// between them (commits announced by another node) cannot say who made the commits in the gap
// or what they touched, so the result knows only its seq; so does a merge with an advance whose
// range is unknown. Unknown Schemas (empty) win over known ones, as "may concern everybody". At
// is the earlier known time, so lag is measured from the oldest commit carried.
func merge(a, b sequencer.Advance) sequencer.Advance {
	if b.From < a.From {
		a, b = b, a
	}
	out := sequencer.Advance{User: a.User, Seq: max(a.Seq, b.Seq), At: earlier(a.At, b.At)}
	if a.From == 0 || b.From > a.Seq+1 {
		return out
	}
	out.From = a.From
	if a.Source == b.Source {
		out.Source = a.Source
	}
	if len(a.Schemas) > 0 && len(b.Schemas) > 0 {
		out.Schemas = slices.Clone(a.Schemas)
		for _, s := range b.Schemas {
			if !slices.Contains(out.Schemas, s) {
				out.Schemas = append(out.Schemas, s)
			}
		}
	}
	return out
}

// earlier returns the earlier of two times, ignoring a zero (unknown) one.
func earlier(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// signal wakes the receiver of ch without blocking; one pending signal is enough.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
