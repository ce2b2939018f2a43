package push

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/sequencer"
)

// counter is a Wake that counts its calls.
type counter struct{ n atomic.Int64 }

func (c *counter) wake() { c.n.Add(1) }

func subscribe(h *Hub, user, source, schema string, after int64) (*Subscription, *counter) {
	c := &counter{}
	return h.Subscribe(SubscribeOptions{User: user, Source: source, Schema: schema, After: after, Wake: c.wake}), c
}

func adv(user string, from, seq int64, source string, schemas ...string) sequencer.Advance {
	return sequencer.Advance{User: user, Seq: seq, From: from, Source: source, Schemas: schemas}
}

func TestHub_CoalescesToTheLatestSeq(t *testing.T) {
	h := NewHub()
	sub, c := subscribe(h, "alice", "laptop", "", 0)
	for i := int64(1); i <= 1000; i++ {
		h.Advance(adv("alice", i, i, "phone"))
	}
	seq, _, ok := sub.Next()
	if !ok || seq != 1000 {
		t.Fatalf("Next = %d, %v; want 1000, true", seq, ok)
	}
	if _, _, ok := sub.Next(); ok {
		t.Error("a second Next reported news, want none: everything was told")
	}
	if c.n.Load() == 0 {
		t.Error("never woken")
	}
}

func TestHub_IgnoresOldAndDuplicateAdvances(t *testing.T) {
	h := NewHub()
	sub, c := subscribe(h, "alice", "laptop", "", 5)
	h.Advance(adv("alice", 3, 4, "phone")) // below the cursor
	h.Advance(adv("alice", 5, 5, "phone"))
	if c.n.Load() != 0 {
		t.Fatalf("woken %d times by advances at or below the cursor", c.n.Load())
	}
	h.Advance(adv("alice", 6, 7, "phone"))
	h.Advance(adv("alice", 6, 7, "phone"))
	h.Advance(adv("alice", 6, 6, "phone"))
	if seq, _, _ := sub.Next(); seq != 7 || c.n.Load() != 1 {
		t.Errorf("seq %d after %d wakes, want 7 after 1", seq, c.n.Load())
	}
}

// TestHub_OwnCommitsWakeOnlyWhenSomethingElseIsPending: a device is not woken by its own upload
// when everything before it was told, but is when another device's commit may be in between.
func TestHub_OwnCommitsWakeOnlyWhenSomethingElseIsPending(t *testing.T) {
	cases := []struct {
		name     string
		advances []sequencer.Advance
		wakes    int64
		seq      int64 // what Next reports; 0 = nothing
	}{
		{"own commit right after the cursor", []sequencer.Advance{adv("alice", 11, 12, "phone")}, 0, 0},
		{"own commits back to back", []sequencer.Advance{adv("alice", 11, 11, "phone"), adv("alice", 12, 13, "phone")}, 0, 0},
		{"gap before the own commit", []sequencer.Advance{adv("alice", 12, 12, "phone")}, 1, 12},
		{"another device's commit arrives after the own one", []sequencer.Advance{adv("alice", 12, 12, "phone"), adv("alice", 11, 11, "laptop")}, 1, 12},
		{"another device's commit first", []sequencer.Advance{adv("alice", 11, 11, "laptop"), adv("alice", 12, 12, "phone")}, 2, 12},
		{"reconciliation does not know the source", []sequencer.Advance{{User: "alice", Seq: 11}}, 1, 11},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHub()
			sub, c := subscribe(h, "alice", "phone", "", 10)
			for _, a := range tc.advances {
				h.Advance(a)
			}
			seq, _, _ := sub.Next()
			if c.n.Load() != tc.wakes || seq != tc.seq {
				t.Errorf("%d wakes, Next %d; want %d wakes, Next %d", c.n.Load(), seq, tc.wakes, tc.seq)
			}
		})
	}
}

func TestHub_SchemaFilter(t *testing.T) {
	h := NewHub()
	sub, c := subscribe(h, "alice", "laptop", "business", 0)
	h.Advance(adv("alice", 1, 2, "phone", "audit"))
	if c.n.Load() != 0 {
		t.Fatal("woken by a commit to another schema")
	}
	h.Advance(adv("alice", 3, 3, "phone", "audit", "business"))
	if seq, _, _ := sub.Next(); seq != 3 || c.n.Load() != 1 {
		t.Errorf("Next %d after %d wakes, want 3 after 1", seq, c.n.Load())
	}
	h.Advance(adv("alice", 4, 4, "phone")) // schemas unknown: must tell
	if seq, _, _ := sub.Next(); seq != 4 {
		t.Errorf("Next %d, want 4 for an advance of unknown schemas", seq)
	}
}

// TestHub_UsersAreIsolated: an advance of one user never reaches another user's subscription.
func TestHub_UsersAreIsolated(t *testing.T) {
	h := NewHub()
	_, bob := subscribe(h, "bob", "laptop", "", 0)
	h.Advance(adv("alice", 1, 1, "phone"))
	if bob.n.Load() != 0 {
		t.Error("bob woken by alice's advance")
	}
}

// TestHub_CatchUpOnSubscribe: the advance a session feeds in after subscribing (the database's
// current seq) wakes it when the cursor is behind, and a new subscription learns what the hub
// already knows.
func TestHub_CatchUpOnSubscribe(t *testing.T) {
	h := NewHub()
	first, c1 := subscribe(h, "alice", "laptop", "", 3)
	h.Advance(sequencer.Advance{User: "alice", Seq: 9})
	if seq, _, _ := first.Next(); seq != 9 || c1.n.Load() != 1 {
		t.Fatalf("stale cursor: Next %d after %d wakes, want 9 after 1", seq, c1.n.Load())
	}
	second, c2 := subscribe(h, "alice", "tablet", "", 4)
	if seq, _, _ := second.Next(); seq != 9 || c2.n.Load() != 1 {
		t.Errorf("second subscription: Next %d after %d wakes, want 9 after 1", seq, c2.n.Load())
	}
}

func TestHub_AckMovesTheCursor(t *testing.T) {
	h := NewHub()
	sub, _ := subscribe(h, "alice", "laptop", "", 0)
	h.Advance(adv("alice", 1, 5, "phone"))
	sub.Ack(5)
	if _, _, ok := sub.Next(); ok {
		t.Error("news after acking everything")
	}
	h.Advance(adv("alice", 6, 6, "phone"))
	if seq, _, _ := sub.Next(); seq != 6 {
		t.Errorf("Next %d, want 6", seq)
	}
}

func TestHub_CloseForgetsTheUser(t *testing.T) {
	h := NewHub()
	a, _ := subscribe(h, "alice", "laptop", "", 0)
	b, _ := subscribe(h, "alice", "phone", "", 0)
	if got := h.Users(); len(got) != 1 || h.Connections() != 2 {
		t.Fatalf("users %v, connections %d; want [alice], 2", got, h.Connections())
	}
	a.Close()
	a.Close()
	b.Close()
	if got := h.Users(); len(got) != 0 || h.Connections() != 0 {
		t.Errorf("after closing: users %v, connections %d; want none", got, h.Connections())
	}
}

// TestHub_ConcurrentAdvancesNeverLoseTheLast races advances of several writers against
// subscribers draining: each subscriber must end at the highest seq (run with -race).
func TestHub_ConcurrentAdvancesNeverLoseTheLast(t *testing.T) {
	h := NewHub()
	const writers, perWriter, readers = 4, 2000, 8
	subs := make([]*Subscription, readers)
	for i := range subs {
		subs[i], _ = subscribe(h, "alice", fmt.Sprintf("reader-%d", i), "", 0)
	}
	var seq atomic.Int64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for range perWriter {
				s := seq.Add(1)
				h.Advance(adv("alice", s, s, fmt.Sprintf("writer-%d", w)))
			}
		})
	}
	for _, sub := range subs {
		wg.Go(func() {
			for range 500 {
				sub.Next()
			}
		})
	}
	wg.Wait()
	for i, sub := range subs {
		sub.Next() // drain what the readers left
		sub.Ack(0)
		if sub.told != writers*perWriter {
			t.Errorf("reader %d ends told %d, want %d", i, sub.told, writers*perWriter)
		}
	}
}

// TestHub_MemoryIsFlatUnderAFlood is invariant I5: a subscription that never reads costs the
// same memory after 10,000 commits as before, because nothing queues per connection.
func TestHub_MemoryIsFlatUnderAFlood(t *testing.T) {
	h := NewHub()
	const devices = 1000
	for i := range devices {
		subscribe(h, "alice", fmt.Sprintf("dev-%d", i), "", 0) // never drained
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	start := time.Now()
	for i := int64(1); i <= 10_000; i++ {
		h.Advance(sequencer.Advance{User: "alice", Seq: i, From: i, Source: "writer"})
	}
	after := heap()
	t.Logf("10,000 advances to %d subscriptions in %v; heap %d → %d bytes", devices, time.Since(start), before, after)
	// Allow for noise from the runtime itself, far below one byte per advance per subscription.
	if after > before+64<<10 {
		t.Errorf("heap grew by %d bytes over a flood of 10,000 advances, want flat", after-before)
	}
}
