package scenarios

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/loadtest"
)

func TestBackoff_DoublesUpToTheCeilingWithUpTo100PercentJitter(t *testing.T) {
	base, ceiling := 500*time.Millisecond, 30*time.Second
	r := rand.New(rand.NewPCG(1, 2))
	for n, want := range []time.Duration{
		500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second,
	} {
		lo, hi := time.Duration(1<<62), time.Duration(0)
		for range 2000 {
			d := backoff(n, base, ceiling, r)
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo < want || hi > 2*want {
			t.Errorf("attempt %d: waits %v…%v, want within %v…%v", n, lo, hi, want, 2*want)
		}
		// Jitter spreads the waits over most of the range, so devices
		// dropped together do not come back together.
		if hi-lo < want*9/10 {
			t.Errorf("attempt %d: waits %v…%v spread less than 90%% of %v", n, lo, hi, want)
		}
	}
	if d := backoff(1000, base, ceiling, r); d < ceiling || d > 2*ceiling {
		t.Errorf("attempt 1000 waits %v, want the ceiling %v plus jitter", d, ceiling)
	}
}

func digestOf(ids ...int64) seqDigest {
	var d seqDigest
	for _, id := range ids {
		d.add(id)
	}
	return d
}

func TestSeqDigest_SameSetInAnyOrderOnly(t *testing.T) {
	if digestOf(1, 2, 3, 7) != digestOf(7, 3, 1, 2) {
		t.Error("the same ids in another order give another digest")
	}
	for name, other := range map[string]seqDigest{
		"one missing":           digestOf(1, 2, 7),
		"one read twice":        digestOf(1, 2, 3, 3, 7),
		"one replaced":          digestOf(1, 2, 4, 7),
		"neighbours swapped in": digestOf(1, 2, 3, 6),
		"empty":                 {},
	} {
		if other == digestOf(1, 2, 3, 7) {
			t.Errorf("%s: digest equals the full set's", name)
		}
	}
}

func TestJudge(t *testing.T) {
	want := digestOf(11, 12, 14)
	for _, tc := range []struct {
		name         string
		head, cursor int64
		seen         seqDigest
		v            verdict
	}{
		{"at the head, saw all", 15, 15, digestOf(14, 12, 11), inSync},
		{"past the head (own later writes)", 15, 17, digestOf(11, 12, 14), inSync},
		{"one seq below the head", 15, 14, digestOf(11, 12, 14), behind},
		{"behind and missing entries", 15, 12, digestOf(11, 12), behind},
		{"at the head but a page skipped", 15, 15, digestOf(11, 14), differs},
		{"at the head but an entry read twice", 15, 15, digestOf(11, 12, 12, 14), differs},
		{"nothing to see, nothing seen", 10, 10, seqDigest{}, inSync},
	} {
		wantD := want
		if tc.head == 10 {
			wantD = seqDigest{}
		}
		if got := judge(tc.head, tc.cursor, tc.seen, wantD); got != tc.v {
			t.Errorf("%s: judged %s, want %s", tc.name, got, tc.v)
		}
	}
}

func TestMixedDevice_ApplyMovesTheCursorToTheWindowOnTheLastPage(t *testing.T) {
	var d mixedDevice
	d.cursor.Store(10)
	more := d.apply(downloadResponse{Changes: changesOf(11, 12), HasMore: true, NextAfter: 12, WindowUntil: 20})
	if !more || d.cursor.Load() != 12 {
		t.Fatalf("after a full page: more %v, cursor %d; want true, 12", more, d.cursor.Load())
	}
	// The last page ends at 15; 16…20 are the device's own entries, which
	// a download leaves out: the device has everything up to 20.
	more = d.apply(downloadResponse{Changes: changesOf(15), NextAfter: 15, WindowUntil: 20})
	if more || d.cursor.Load() != 20 {
		t.Fatalf("after the last page: more %v, cursor %d; want false, 20", more, d.cursor.Load())
	}
	if d.seen != digestOf(11, 12, 15) {
		t.Errorf("seen %+v, want the digest of 11, 12, 15", d.seen)
	}
}

func changesOf(ids ...int64) []struct {
	ServerID int64 `json:"server_id"`
} {
	out := make([]struct {
		ServerID int64 `json:"server_id"`
	}, len(ids))
	for i, id := range ids {
		out[i].ServerID = id
	}
	return out
}

func TestMixedDevice_HintsAreServedOnceTheCursorReachesThem(t *testing.T) {
	lat := loadtest.NewMetrics().Trend("sync_catchup_duration", loadtest.Time, nil)
	d := &mixedDevice{kind: kindWS, latency: lat}
	d.cursor.Store(10)
	t0 := time.Now()
	if d.take(hint{seq: 9, at: t0, wake: true}) {
		t.Error("a hint below the cursor asks for a download")
	}
	if !d.take(hint{seq: 12, at: t0, wake: true}) || !d.take(hint{seq: 14, at: t0.Add(time.Millisecond), wake: true}) {
		t.Fatal("hints above the cursor ask for no download")
	}
	d.cursor.Store(12)
	d.served(t0.Add(5 * time.Millisecond))
	if len(d.pending) != 1 || d.pending[0].seq != 14 {
		t.Fatalf("pending after reaching 12: %+v, want only 14", d.pending)
	}
	// A long-poll answer that follows the cursor is the download itself.
	if d.take(hint{seq: 16, at: t0, wake: true, after: 12, page: &downloadResponse{Changes: changesOf(14, 16), NextAfter: 16, WindowUntil: 16}}) {
		t.Error("a complete long-poll page asks for another download")
	}
	if len(d.pending) != 0 || d.cursor.Load() != 16 {
		t.Errorf("after the long-poll page: pending %+v, cursor %d; want none, 16", d.pending, d.cursor.Load())
	}
}

func TestMixedParams_KindsFollowTheShares(t *testing.T) {
	m := mixedParams{Shares: map[string]float64{kindWS: 4, kindSSE: 2, kindLongPoll: 2, kindPoll: 2}}
	count := map[string]int{}
	for i := range 1000 {
		count[m.kindOf(i)]++
	}
	for k, want := range map[string]int{kindWS: 400, kindSSE: 200, kindLongPoll: 200, kindPoll: 200} {
		if d := count[k] - want; d < -10 || d > 10 {
			t.Errorf("%s: %d of 1000 devices, want %d±10", k, count[k], want)
		}
	}
	few := map[string]bool{}
	for i := range 5 {
		few[m.kindOf(i)] = true
	}
	if len(few) != 4 {
		t.Errorf("5 devices got the kinds %v, want all 4", few)
	}
	onlyWS := mixedParams{Shares: map[string]float64{kindWS: 1, kindPoll: 0}}
	for i := range 50 {
		if k := onlyWS.kindOf(i); k != kindWS {
			t.Fatalf("device %d is %s with only ws shared", i, k)
		}
	}
}

func TestDecodeMixedParams(t *testing.T) {
	p, m, err := decodeMixedParams(json.RawMessage(`{"users": 7, "limit": 500, "burst": 3, "storm_at": "2s", "shares": {"sse": 1}}`), Params{Users: 9})
	if err != nil {
		t.Fatal(err)
	}
	if p.Users != 9 || p.Limit != 500 || m.Burst != 3 || m.StormAt.D() != 2*time.Second || m.Shares[kindSSE] != 1 || m.Shares[kindWS] != 0 {
		t.Errorf("decoded %+v %+v: want users overridden to 9, limit 500, burst 3, storm_at 2s, only sse", p, m)
	}
	if m.CatchUp.D() != 10*time.Second || m.BackoffBase.D() != 500*time.Millisecond || m.LongPollWait != 20 {
		t.Errorf("defaults %+v, want catchup 10s, backoff base 500ms, wait 20", m)
	}
	for raw, msg := range map[string]string{
		`{"bursts": 3}`:                   `unknown param "bursts"`,
		`{"transport": "ws"}`:             `unknown param "transport"`,
		`{"shares": {"carrier": 1}}`:      `unknown kind "carrier"`,
		`{"shares": {"ws": 0}}`:           "at least one kind",
		`{"longpoll_wait": 61}`:           "longpoll_wait",
		`{"backoff_max": "100ms"}`:        "backoff_max",
		`{"users": 0, "burst": 1}`:        "", // zero means the default
		`{"limit": 1001}`:                 "limit",
		`[1]`:                             "JSON object",
		`{"poll_interval": "soon"}`:       "decode params",
		`{"poll_interval": "1ms"}`:        "poll_interval",
		`{"storm_at": "-1s", "burst": 1}`: "must not be negative",
	} {
		_, _, err := decodeMixedParams(json.RawMessage(raw), Params{})
		switch {
		case msg == "" && err != nil:
			t.Errorf("%s: %v", raw, err)
		case msg != "" && (err == nil || !strings.Contains(err.Error(), msg)):
			t.Errorf("%s: error %v, want one containing %q", raw, err, msg)
		}
	}
}

func TestMixedDay_StormDropsOnlyConnectionsOpenWhenItBreaks(t *testing.T) {
	day := &mixedDay{stormAfter: 20 * time.Millisecond}
	day.begin()
	const before = 50
	var dropped atomic.Int64
	ends := make([]func() (bool, time.Time), before)
	for i := range ends {
		ends[i] = day.onStorm(func() { dropped.Add(1) })
	}
	deadline := time.Now().Add(10 * time.Second)
	for dropped.Load() < before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // polling a condition with a deadline
	}
	if dropped.Load() != before {
		t.Fatalf("%d of %d connections dropped", dropped.Load(), before)
	}
	for i, end := range ends {
		if ok, at := end(); !ok || at.IsZero() {
			t.Errorf("connection %d: dropped %v at %v", i, ok, at)
		}
	}
	after := day.onStorm(func() { t.Error("a connection opened after the storm was dropped") })
	if ok, _ := after(); ok {
		t.Error("a connection opened after the storm reports a drop")
	}
	if day.drops.Load() != before {
		t.Errorf("drops %d, want %d", day.drops.Load(), before)
	}
}

func TestMixedDay_ClosingUploadsWaitsForThoseInFlight(t *testing.T) {
	day := &mixedDay{stormAfter: time.Hour}
	day.begin()
	defer day.timer.Stop()
	inFlight, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	var finished atomic.Bool
	wg.Go(func() {
		day.uploadOpen(func() {
			close(inFlight)
			<-release
			finished.Store(true)
		})
	})
	<-inFlight
	closed := make(chan struct{})
	wg.Go(func() {
		day.closeUploads()
		close(closed)
	})
	select {
	case <-closed:
		t.Fatal("uploads closed while one was in flight")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-closed
	if !finished.Load() {
		t.Error("closeUploads returned before the upload in flight finished")
	}
	if day.uploadOpen(func() { t.Error("an upload ran after uploads were closed") }) {
		t.Error("uploadOpen reports an upload after uploads were closed")
	}
	// A storm still to come breaks with the close, so a short run has one.
	if day.storm.Err() == nil || day.stormedAt.Load() == 0 {
		t.Error("closing uploads an hour before storm_at did not break the storm")
	}
	wg.Wait()
}
