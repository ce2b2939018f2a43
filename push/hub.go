package push

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/pulsesync/pulsesync/sequencer"
)

// hubShards spreads users over independently locked maps, so that connects, disconnects and
// advances of different users rarely contend.
const hubShards = 64

// Hub holds the live subscriptions of one node, by user. It is safe for concurrent use.
type Hub struct {
	seed   maphash.Seed
	shards [hubShards]hubShard
}

type hubShard struct {
	mu    sync.Mutex
	users map[string]*userSubs
}

// userSubs is one user's subscriptions and the newest seq the hub has heard of for the user.
type userSubs struct {
	seq  int64
	subs map[*Subscription]struct{}
}

// NewHub returns an empty hub.
func NewHub() *Hub {
	h := &Hub{seed: maphash.MakeSeed()}
	for i := range h.shards {
		h.shards[i].users = map[string]*userSubs{}
	}
	return h
}

func (h *Hub) shard(user string) *hubShard {
	return &h.shards[maphash.String(h.seed, user)%hubShards]
}

// Subscription is one connection's interest in its user's stream. Its fields are guarded by
// the lock of the hub shard its user lives in.
type Subscription struct {
	hub    *Hub
	user   string
	source string
	schema string // "" = every schema
	wake   func() // called, outside any lock, when there is something to tell

	told  int64     // the last seq the device was told, or its cursor
	want  int64     // the newest seq the device should hear of
	since time.Time // when the oldest untold commit was announced; zero if unknown or none
	gone  bool
}

// SubscribeOptions describes a new subscription.
type SubscribeOptions struct {
	User   string
	Source string // the device: its own commits do not wake it when nothing else is pending
	Schema string // "" = wake for every schema
	After  int64  // the device's cursor: it has seen everything up to here
	// Wake is called whenever the subscription has something new to tell. It must not block;
	// the session then calls Next to learn what.
	Wake func()
}

// Subscribe registers a connection. It must be called before the user's current seq is read
// from the database, and that seq then fed in with Advance: an advance committed between the
// two cannot be missed, because the subscription is already in place when it arrives.
func (h *Hub) Subscribe(o SubscribeOptions) *Subscription {
	s := &Subscription{hub: h, user: o.User, source: o.Source, schema: o.Schema, wake: o.Wake, told: o.After, want: o.After}
	sh := h.shard(o.User)
	sh.mu.Lock()
	u := sh.users[o.User]
	if u == nil {
		u = &userSubs{subs: map[*Subscription]struct{}{}}
		sh.users[o.User] = u
	}
	u.subs[s] = struct{}{}
	pending := u.seq > s.want
	if pending {
		s.want = u.seq
	}
	sh.mu.Unlock()
	if pending {
		s.wake()
	}
	return s
}

// Close removes the subscription. The user's entry goes with its last subscription.
func (s *Subscription) Close() {
	sh := s.hub.shard(s.user)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s.gone {
		return
	}
	s.gone = true
	u := sh.users[s.user]
	delete(u.subs, s)
	if len(u.subs) == 0 {
		delete(sh.users, s.user)
	}
}

// Next returns the seq to tell the device and marks it told, or false when there is nothing
// new. since is when the oldest commit it reports was announced (zero if unknown).
func (s *Subscription) Next() (seq int64, since time.Time, ok bool) {
	sh := s.hub.shard(s.user)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s.want <= s.told {
		return 0, time.Time{}, false
	}
	s.told, since, s.since = s.want, s.since, time.Time{}
	return s.want, since, true
}

// Pending reports whether there is something to tell the device, without marking it told: a
// session that may not write yet leaves it in the hub, where later advances replace it.
func (s *Subscription) Pending() bool {
	sh := s.hub.shard(s.user)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return s.want > s.told
}

// Ack records that the device has seen everything up to seq (it moved its cursor), so nothing
// up to seq needs telling any more.
func (s *Subscription) Ack(seq int64) {
	sh := s.hub.shard(s.user)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s.told = max(s.told, seq)
	s.want = max(s.want, seq)
	if s.told == s.want {
		s.since = time.Time{}
	}
}

// User is the subscription's user.
func (s *Subscription) User() string { return s.user }

// Advance delivers one advance to the subscriptions of its user. Advances are idempotent and
// monotonic: one at or below what the hub already knows changes nothing. Users without
// subscriptions are not tracked, so Advance costs one map lookup for them.
func (h *Hub) Advance(a sequencer.Advance) {
	sh := h.shard(a.User)
	var wake []func()
	sh.mu.Lock()
	u := sh.users[a.User]
	if u == nil || a.Seq <= u.seq {
		sh.mu.Unlock()
		return
	}
	u.seq = a.Seq
	for s := range u.subs {
		if s.offer(a) {
			wake = append(wake, s.wake)
		}
	}
	sh.mu.Unlock()
	for _, w := range wake {
		w()
	}
}

// offer applies a to s and reports whether s must be woken. An advance that only carries
// commits the device does not care about — its own, or of other schemas than it watches — and
// that directly follows everything it was told, moves both marks silently. Anything else wakes
// it: when in doubt, tell (a device that downloads and finds nothing loses a round trip; one that
// is not told loses changes).
func (s *Subscription) offer(a sequencer.Advance) bool {
	if a.Seq <= s.want {
		return false
	}
	if s.want == s.told && a.From == s.want+1 && s.irrelevant(a) {
		s.want, s.told = a.Seq, a.Seq
		return false
	}
	if s.want == s.told {
		s.since = a.At
	}
	s.want = a.Seq
	return true
}

// irrelevant reports whether every commit in a is known not to interest s.
func (s *Subscription) irrelevant(a sequencer.Advance) bool {
	if a.Source != "" && a.Source == s.source {
		return true
	}
	if s.schema == "" || len(a.Schemas) == 0 {
		return false
	}
	for _, schema := range a.Schemas {
		if schema == s.schema {
			return false
		}
	}
	return true
}

// Users returns the users that have subscriptions, for reconciliation.
func (h *Hub) Users() []string {
	var users []string
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		for u := range sh.users {
			users = append(users, u)
		}
		sh.mu.Unlock()
	}
	return users
}

// Connections returns the number of subscriptions.
func (h *Hub) Connections() int {
	n := 0
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		for _, u := range sh.users {
			n += len(u.subs)
		}
		sh.mu.Unlock()
	}
	return n
}
