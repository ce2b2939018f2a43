package sequencer

import (
	"sync"
	"time"
)

// Watermarks caches, on one node, the last committed seq of users who poll, so that an empty
// poll is answered without a database round trip. An entry is trusted only while the node's
// stream of advances has been healthy since the entry was read from the database, and for at
// most MaxAge: an advance lost without the stream noticing (a node killed between commit and
// announcement) can delay a poller by MaxAge at most, never make it skip a change, because an
// empty answer leaves its cursor where it was.
type Watermarks struct {
	maxAge     time.Duration
	maxEntries int
	now        func() time.Time

	mu      sync.Mutex
	healthy bool
	epoch   uint64 // bumped whenever the stream breaks: older entries are void
	entries map[string]*watermark
}

type watermark struct {
	seq    int64
	epoch  uint64
	filled time.Time // zero while the database read is in flight
}

// WatermarksConfig configures Watermarks. The zero value means the documented defaults.
type WatermarksConfig struct {
	MaxAge     time.Duration    // how long a database read is trusted; 0 = 5 s
	MaxEntries int              // users cached at most; 0 = 1,000,000 (roughly 100 MB)
	Now        func() time.Time // the clock; nil = time.Now
}

// NewWatermarks returns an empty cache. It trusts nothing until SetHealthy(true).
func NewWatermarks(cfg WatermarksConfig) *Watermarks {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 5 * time.Second
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 1_000_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Watermarks{maxAge: cfg.MaxAge, maxEntries: cfg.MaxEntries, now: cfg.Now, entries: map[string]*watermark{}}
}

// Lookup returns user's last committed seq if it is known to be current.
func (w *Watermarks) Lookup(user string) (seq int64, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.entries[user]
	if !w.healthy || e == nil || e.epoch != w.epoch || e.filled.IsZero() || w.now().Sub(e.filled) > w.maxAge {
		return 0, false
	}
	return e.seq, true
}

// Begin announces that user's seq is about to be read from the database. Call it before the
// read and pass the value to Fill after: advances arriving in between are kept, so none can
// be missed between the read and the fill.
func (w *Watermarks) Begin(user string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e := w.entries[user]; e != nil && e.epoch == w.epoch {
		return
	}
	if len(w.entries) >= w.maxEntries {
		clear(w.entries) // crude, but bounded: the next polls refill what is still in use
	}
	w.entries[user] = &watermark{epoch: w.epoch}
}

// Fill records seq, read from the database after Begin, as user's current watermark.
func (w *Watermarks) Fill(user string, seq int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.entries[user]
	if e == nil || e.epoch != w.epoch {
		return // the stream broke since Begin: the read cannot be trusted
	}
	e.seq = max(e.seq, seq)
	e.filled = w.now()
}

// Advance applies an advance to the user's entry, if the user is cached.
func (w *Watermarks) Advance(a Advance) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e := w.entries[a.User]; e != nil && e.epoch == w.epoch {
		e.seq = max(e.seq, a.Seq)
	}
}

// SetHealthy tells the cache whether the node's stream of advances is flowing. Any change
// voids every entry: while unhealthy nothing is trusted, and entries read while the stream was
// down may have missed advances, so after it recovers the cache starts afresh.
func (w *Watermarks) SetHealthy(healthy bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if healthy != w.healthy {
		w.epoch++
		clear(w.entries)
	}
	w.healthy = healthy
}
