package sequencer

import (
	"testing"
	"time"
)

// clock is a settable time source.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func newTestWatermarks(c *clock) *Watermarks {
	w := NewWatermarks(WatermarksConfig{MaxAge: 5 * time.Second, MaxEntries: 3, Now: c.Now})
	w.SetHealthy(true)
	return w
}

func lookup(t *testing.T, w *Watermarks, user string, want int64, wantOK bool) {
	t.Helper()
	if got, ok := w.Lookup(user); got != want || ok != wantOK {
		t.Fatalf("Lookup(%s) = %d, %v; want %d, %v", user, got, ok, want, wantOK)
	}
}

func TestWatermarks_AdvanceBetweenBeginAndFillIsKept(t *testing.T) {
	c := &clock{now: time.Unix(1000, 0)}
	w := newTestWatermarks(c)
	lookup(t, w, "alice", 0, false)
	w.Begin("alice")
	lookup(t, w, "alice", 0, false) // the read is still in flight
	w.Advance(Advance{User: "alice", Seq: 8})
	w.Fill("alice", 7) // the read saw the database before commit 8
	lookup(t, w, "alice", 8, true)
	w.Advance(Advance{User: "alice", Seq: 9})
	w.Advance(Advance{User: "alice", Seq: 3}) // late and old: ignored
	lookup(t, w, "alice", 9, true)
	w.Advance(Advance{User: "bob", Seq: 4}) // not cached: nothing to keep
	lookup(t, w, "bob", 0, false)
}

func TestWatermarks_EntriesExpire(t *testing.T) {
	c := &clock{now: time.Unix(1000, 0)}
	w := newTestWatermarks(c)
	w.Begin("alice")
	w.Fill("alice", 5)
	c.now = c.now.Add(5 * time.Second)
	lookup(t, w, "alice", 5, true)
	c.now = c.now.Add(time.Millisecond)
	lookup(t, w, "alice", 0, false) // an advance lost without the stream noticing delays a poller this long at most
}

func TestWatermarks_HealthChangesVoidEverything(t *testing.T) {
	c := &clock{now: time.Unix(1000, 0)}
	w := newTestWatermarks(c)
	w.Begin("alice")
	w.Fill("alice", 5)
	w.Begin("bob") // in flight when the stream breaks
	w.SetHealthy(false)
	w.Fill("bob", 3)
	lookup(t, w, "alice", 0, false)
	lookup(t, w, "bob", 0, false)
	w.Begin("carol")
	w.Fill("carol", 2) // read while the stream was down
	w.SetHealthy(true)
	lookup(t, w, "carol", 0, false) // may have missed advances: not trusted after recovery either
	w.Begin("carol")
	w.Fill("carol", 2)
	lookup(t, w, "carol", 2, true)
}

func TestWatermarks_BoundedEntries(t *testing.T) {
	c := &clock{now: time.Unix(1000, 0)}
	w := newTestWatermarks(c)
	for _, u := range []string{"a", "b", "c", "d"} {
		w.Begin(u)
		w.Fill(u, 1)
	}
	if n := len(w.entries); n > 3 {
		t.Fatalf("%d entries, want at most MaxEntries 3", n)
	}
	lookup(t, w, "d", 1, true)
}
