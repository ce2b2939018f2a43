package scenarios

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/pulsesync/pulsesync/loadtest"
)

// backoff is the wait before reconnect attempt n (0 for the first after a
// drop): base doubled n times, capped at ceiling, plus up to 100 % random
// jitter, as docs/push.md §4 asks of clients so that the devices of a dropped
// node do not come back together.
func backoff(n int, base, ceiling time.Duration, r *rand.Rand) time.Duration {
	d := base
	for i := 0; i < n && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	return d + time.Duration(r.Int64N(int64(d)+1))
}

// seqDigest summarises a set of server ids independently of order: how many
// and the sum of a mix of each. Two digests of sets that differ in any id,
// a missing or a duplicated one, differ but for a 2⁻⁶⁴ chance.
type seqDigest struct {
	n   int64
	sum uint64
}

// add puts id into the set.
func (d *seqDigest) add(id int64) {
	d.n++
	d.sum += mix64(uint64(id))
}

// mix64 is splitmix64's finaliser: consecutive ids get unrelated values, so
// a sum cannot hide one missing id behind another.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// verdict is the oracle's judgement of one device at the end.
type verdict int

const (
	// inSync: the cursor is at the user's head and the device saw exactly
	// the entries the server holds for it.
	inSync verdict = iota
	// behind: the cursor stopped below the user's head.
	behind
	// differs: the cursor reached the head but the entries seen are not
	// the server's (a page skipped, or one read twice).
	differs
)

func (v verdict) String() string {
	return [...]string{"in sync", "behind", "saw other entries than the server's"}[v]
}

// judge compares a device's end state (its cursor and the digest of what it
// downloaded) with the server's: the user's head and the digest of a
// download of the same window by the same device.
func judge(head, cursor int64, seen, want seqDigest) verdict {
	switch {
	case cursor < head:
		return behind
	case seen != want:
		return differs
	}
	return inSync
}

// oracle answers, once uploads have stopped, what each device should have:
// the head of its user (shared by the user's devices) and the entries of its
// window, read through the download API as the device itself.
type oracle struct {
	p    Params
	head *loadtest.Endpoint
	ep   *loadtest.Endpoint

	mu    sync.Mutex
	heads map[string]*userHead
}

type userHead struct {
	once sync.Once
	seq  int64
	err  error
}

func newOracle(p Params, h *loadtest.HTTP) *oracle {
	return &oracle{
		p:     p,
		head:  h.Endpoint(loadtest.Tags{"endpoint": "oracle_head"}),
		ep:    h.Endpoint(loadtest.Tags{"endpoint": "oracle"}),
		heads: map[string]*userHead{},
	}
}

// userHead is the head of cred's user, read once for all its devices. Call
// it only when no upload can start any more, so that it is final.
func (o *oracle) userHead(ctx context.Context, cred *credential) (int64, error) {
	o.mu.Lock()
	h := o.heads[cred.user]
	if h == nil {
		h = &userHead{}
		o.heads[cred.user] = h
	}
	o.mu.Unlock()
	h.once.Do(func() {
		bearer, err := cred.bearer(time.Now())
		if err != nil {
			h.err = err
			return
		}
		page, _, err := getDownload(ctx, o.head, o.p, bearer, 0, 1)
		h.seq, h.err = page.WindowUntil, err
	})
	if h.err != nil {
		return 0, fmt.Errorf("oracle: head of %s: %w", cred.user, h.err)
	}
	return h.seq, nil
}

// expected is the digest of the entries in (from, head] that cred's device
// must have downloaded: the download API's answer for that device, pinned to
// the window with until=head.
func (o *oracle) expected(ctx context.Context, cred *credential, from, head int64) (seqDigest, error) {
	var d seqDigest
	until := url.Values{"until": {strconv.FormatInt(head, 10)}}
	for after := from; after < head; {
		bearer, err := cred.bearer(time.Now())
		if err != nil {
			return d, err
		}
		page, _, err := getDownloadQuery(ctx, o.ep, o.p, bearer, after, o.p.Limit, until)
		if err != nil {
			return d, fmt.Errorf("oracle: download of %s after %d: %w", cred.device, after, err)
		}
		for _, c := range page.Changes {
			d.add(c.ServerID)
		}
		if !page.HasMore {
			break
		}
		if page.NextAfter <= after {
			return d, fmt.Errorf("oracle: download of %s after=%d: next_after %d does not advance", cred.device, after, page.NextAfter)
		}
		after = page.NextAfter
	}
	return d, nil
}
