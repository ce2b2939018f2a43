package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/httpapi/auth"
	"github.com/pulsesync/pulsesync/internal/demo"
)

// The fault tests' clients behave as the protocol's clients do (docs/protocol-v0.md §3.9): a
// batch that was not answered 200 is sent again, same ids, until it is. What the server
// acknowledged (200, every change applied) goes into a ledger; at the end the ledger and the
// user's stream must match exactly (invariants I1, I2 and I6 of docs/architecture.md).

// retryPause spaces a device's attempts at one batch, as a client's backoff would.
const retryPause = 50 * time.Millisecond

// attemptTimeout bounds one upload attempt: a node that died mid-request must not hold a device
// forever, and one that is merely slow on a loaded machine must not be abandoned too early.
const attemptTimeout = 20 * time.Second

// finishGrace is how long the batches in flight when a load stops may take to be acknowledged.
const finishGrace = 2 * time.Minute

// changeKey names a change as the protocol's idempotency does: (source, source_change_id).
type changeKey struct {
	source string
	scid   int64
}

// ledger remembers, per user, every batch the server acknowledged. It keeps a few words per
// batch, not per change, so that a long chaos run's own bookkeeping stays small beside the
// server's memory it measures.
type ledger struct {
	mu      sync.Mutex
	batches map[string][]ackedBatch // user → acknowledged batches
	seq     map[string]int64        // user → highest highest_server_seq acknowledged
	times   map[string][]ackTime    // user → when each acknowledgement arrived
	total   int                     // changes acknowledged
}

// ackedBatch is an acknowledged batch: n changes of source with consecutive ids from first,
// as device.nextBatch makes them.
type ackedBatch struct {
	source string
	first  int64
	n      int
}

// ackTime is when a device learnt that its user's stream had reached seq.
type ackTime struct {
	seq int64
	at  time.Time
}

func newLedger() *ledger {
	return &ledger{batches: map[string][]ackedBatch{}, seq: map[string]int64{}, times: map[string][]ackTime{}}
}

func (l *ledger) record(user string, batch []changeKey, highest int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.batches[user] = append(l.batches[user], ackedBatch{batch[0].source, batch[0].scid, len(batch)})
	l.total += len(batch)
	l.seq[user] = max(l.seq[user], highest)
	l.times[user] = append(l.times[user], ackTime{highest, time.Now()})
}

// highest returns the highest seq acknowledged to user so far.
func (l *ledger) highest(user string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq[user]
}

// acksOf returns when user's acknowledgements arrived so far.
func (l *ledger) acksOf(user string) []ackTime {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.times[user])
}

// acked counts the acknowledged changes of every user.
func (l *ledger) acked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

func (l *ledger) users() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	users := make([]string, 0, len(l.batches))
	for u := range l.batches {
		users = append(users, u)
	}
	slices.Sort(users)
	return users
}

// rowPK is the business.users id of a device's change: unique per (source, scid).
func rowPK(source string, scid int64) string {
	h := fnv.New32a()
	h.Write([]byte(source))
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", h.Sum32(), scid)
}

// uploadBody is a batch of INSERTs of new business.users rows, one per key.
func uploadBody(batch []changeKey) []byte {
	b := []byte(`{"changes":[`)
	for i, k := range batch {
		if i > 0 {
			b = append(b, ',')
		}
		pk := rowPK(k.source, k.scid)
		b = fmt.Appendf(b, `{"source_change_id":%d,"schema":"business","table":"users","op":"INSERT","pk":"%s","server_version":0,"payload":{"id":"%s","name":"n%d"}}`,
			k.scid, pk, pk, k.scid)
	}
	return append(b, "]}"...)
}

// uploadAnswer is the part of an upload's 200 answer the fault tests read.
type uploadAnswer struct {
	HighestServerSeq int64 `json:"highest_server_seq"`
	Statuses         []struct {
		SourceChangeID int64  `json:"source_change_id"`
		Status         string `json:"status"`
	} `json:"statuses"`
}

// postUpload makes one attempt: the status and, on 200, the decoded answer; or the transport
// error of an attempt that got no complete answer.
func postUpload(ctx context.Context, client *http.Client, baseURL, token string, body []byte) (int, uploadAnswer, error) {
	var ans uploadAnswer
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/sync/upload", bytes.NewReader(body))
	if err != nil {
		return 0, ans, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, ans, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, ans, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(data, &ans); err != nil {
			return resp.StatusCode, ans, fmt.Errorf("decode answer %.200q: %w", data, err)
		}
	}
	return resp.StatusCode, ans, nil
}

// faultToken mints a token for user's source, valid for longer than any test.
func faultToken(t testing.TB, user, source string) string {
	t.Helper()
	token, err := auth.Mint([]byte(demo.Secret), user, source, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// device is one client of one user: it uploads batches of new rows, each until acknowledged.
type device struct {
	user, source, token string
	client              *http.Client
	next                int64 // the next source_change_id

	// What its failed attempts got, for the tests' pass rules.
	transportErrs atomic.Int64
	statusErrs    sync.Map // HTTP status → *atomic.Int64
}

func newDevice(t testing.TB, client *http.Client, user, source string) *device {
	return &device{user: user, source: source, token: faultToken(t, user, source), client: client, next: 1}
}

// failedWith counts the device's attempts answered with status.
func (d *device) failedWith(status int) int64 {
	if v, ok := d.statusErrs.Load(status); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

// failures lists the non-200 statuses the device got, with counts.
func (d *device) failures() map[int]int64 {
	out := map[int]int64{}
	d.statusErrs.Range(func(k, v any) bool {
		out[k.(int)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

// nextBatch reserves the ids of the device's next n changes.
func (d *device) nextBatch(n int) []changeKey {
	batch := make([]changeKey, n)
	for i := range batch {
		batch[i] = changeKey{d.source, d.next}
		d.next++
	}
	return batch
}

// targets returns the base URLs of the nodes a device may upload to, live ones first; chaos
// changes them while devices run.
type targets func() []string

// nodes is targets that never change.
func nodes(urls ...string) targets { return func() []string { return urls } }

// send uploads batch until a node of urls answers 200 with every change applied, trying the
// nodes in turn after a failure, and records the acknowledgement in l. A 200 that does not
// apply everything is a broken invariant, not a retryable failure. It returns an error only
// when ctx ends first or the server's answer breaks the protocol.
func (d *device) send(ctx context.Context, urls targets, batch []changeKey, l *ledger) (uploadAnswer, error) {
	body := uploadBody(batch)
	for attempt := 0; ; attempt++ {
		live := urls()
		url := live[attempt%len(live)]
		status, ans, err := postUpload(ctx, d.client, url, d.token, body)
		switch {
		case err == nil && status == http.StatusOK:
			if len(ans.Statuses) != len(batch) {
				return ans, fmt.Errorf("%s: %d statuses for %d changes", d.source, len(ans.Statuses), len(batch))
			}
			for i, s := range ans.Statuses {
				if s.Status != "applied" || s.SourceChangeID != batch[i].scid {
					return ans, fmt.Errorf("%s: change %d answered %+v, want applied", d.source, batch[i].scid, s)
				}
			}
			l.record(d.user, batch, ans.HighestServerSeq)
			return ans, nil
		case err != nil && status == 0:
			d.transportErrs.Add(1)
		default:
			v, _ := d.statusErrs.LoadOrStore(status, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
		}
		select {
		case <-ctx.Done():
			return ans, fmt.Errorf("%s: batch from %d not acknowledged before the end: %w", d.source, batch[0].scid, ctx.Err())
		case <-time.After(retryPause):
		}
	}
}

// run sends batches of n until ctx ends, finishing the batch in flight with finish (so that
// every batch it started is acknowledged), and reports a broken answer on errs.
func (d *device) run(ctx, finish context.Context, urls targets, n int, l *ledger, errs chan<- error) {
	for ctx.Err() == nil {
		if _, err := d.send(finish, urls, d.nextBatch(n), l); err != nil {
			errs <- err
			return
		}
	}
}

// load is a set of devices uploading in the background.
type load struct {
	devices []*device
	ledger  *ledger
	stop    context.CancelFunc // ends the load after the batches in flight
	giveUp  context.CancelFunc // abandons the batches in flight
	wg      sync.WaitGroup
	errs    chan error
}

// startLoad starts one device per (user, source) pair, each sending batches of n to urls.
func startLoad(t testing.TB, client *http.Client, urls targets, users []string, perUser, n int) *load {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	// Batches in flight when the load stops get finishGrace to be acknowledged.
	finish, giveUp := context.WithCancel(context.Background())
	ld := &load{ledger: newLedger(), stop: stop, giveUp: giveUp, errs: make(chan error, len(users)*perUser)}
	for _, u := range users {
		for i := range perUser {
			ld.devices = append(ld.devices, newDevice(t, client, u, fmt.Sprintf("%s-dev%d", u, i)))
		}
	}
	for _, d := range ld.devices {
		ld.wg.Go(func() { d.run(ctx, finish, urls, n, ld.ledger, ld.errs) })
	}
	t.Cleanup(func() {
		if t.Failed() { // the batches in flight may wait on a fault the test never repaired
			ld.giveUp()
		}
		ld.finish()
	})
	return ld
}

// waitAcked waits until at least n more changes than now are acknowledged.
func (ld *load) waitAcked(t testing.TB, more int) {
	t.Helper()
	target := ld.ledger.acked() + more
	deadline := time.Now().Add(time.Minute)
	for ld.ledger.acked() < target {
		if time.Now().After(deadline) {
			t.Fatalf("only %d changes acknowledged, want %d within a minute", ld.ledger.acked(), target)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// finish stops the load after the batches in flight are acknowledged. Safe to call twice.
func (ld *load) finish() {
	ld.stop()
	timer := time.AfterFunc(finishGrace, ld.giveUp)
	defer timer.Stop()
	ld.wg.Wait()
	ld.giveUp()
}

// end finishes the load and fails the test if a device saw an answer that broke the protocol.
func (ld *load) end(t testing.TB) {
	t.Helper()
	ld.finish()
	select {
	case err := <-ld.errs:
		t.Fatal(err)
	default:
	}
}

// failures sums the failed attempts of every device: by HTTP status, and transport errors.
func (ld *load) failures() (byStatus map[int]int64, transport int64) {
	byStatus = map[int]int64{}
	for _, d := range ld.devices {
		for s, n := range d.failures() {
			byStatus[s] += n
		}
		transport += d.transportErrs.Load()
	}
	return byStatus, transport
}

// streamEntry is the part of a download entry the checks read.
type streamEntry struct {
	ServerID       int64  `json:"server_id"`
	PK             string `json:"pk"`
	SourceID       string `json:"source_id"`
	SourceChangeID int64  `json:"source_change_id"`
}

// readStream downloads user's whole stream from baseURL, every source included.
func readStream(t testing.TB, client *http.Client, baseURL, user string) []streamEntry {
	t.Helper()
	token := faultToken(t, user, "auditor")
	var all []streamEntry
	for after := int64(0); ; {
		req, err := http.NewRequest(http.MethodGet, baseURL+"/sync/download?include_self=true&limit=1000&after="+strconv.FormatInt(after, 10), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("download %s after %d: %v", user, after, err)
		}
		var page struct {
			Changes   []streamEntry `json:"changes"`
			HasMore   bool          `json:"has_more"`
			NextAfter int64         `json:"next_after"`
		}
		err = decodeJSON(resp, &page)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			t.Fatalf("download %s after %d: status %d, %v", user, after, resp.StatusCode, err)
		}
		all = append(all, page.Changes...)
		if !page.HasMore {
			return all
		}
		after = page.NextAfter
	}
}

// checkStream fails the test unless user's stream is exactly what the ledger acknowledged:
// server ids 1, 2, 3, … without a gap (I1), every acknowledged change once and nothing else
// (I2, I6), each batch in one block of consecutive ids in request order, as one transaction
// commits it (all or nothing, I6), and each row under its own key. It returns the stream's
// length.
func checkStream(t testing.TB, client *http.Client, baseURL, user string, l *ledger) int {
	t.Helper()
	stream := readStream(t, client, baseURL, user)
	at := make(map[changeKey]int, len(stream))
	for i, e := range stream {
		if e.ServerID != int64(i+1) {
			t.Fatalf("%s: stream entry %d has server_id %d, want %d (ids dense from 1)", user, i, e.ServerID, i+1)
		}
		k := changeKey{e.SourceID, e.SourceChangeID}
		if prev, dup := at[k]; dup {
			t.Fatalf("%s: change %+v applied twice, as server ids %d and %d", user, k, prev+1, i+1)
		}
		if e.PK != rowPK(k.source, k.scid) {
			t.Fatalf("%s: change %+v carries pk %s, want %s", user, k, e.PK, rowPK(k.source, k.scid))
		}
		at[k] = i
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	acked := 0
	for _, batch := range l.batches[user] {
		start := changeKey{batch.source, batch.first}
		first, ok := at[start]
		for j := range batch.n {
			k := changeKey{batch.source, batch.first + int64(j)}
			i, found := at[k]
			switch {
			case !found:
				t.Fatalf("%s: acknowledged change %+v is not in the stream (lost)", user, k)
			case !ok || i != first+j:
				t.Fatalf("%s: batch from %+v is not one block of consecutive ids: change %+v at server id %d, batch start %d",
					user, start, k, i+1, first+1)
			}
		}
		acked += batch.n
	}
	if acked != len(stream) {
		t.Fatalf("%s: %d changes in the stream, %d acknowledged: the stream holds changes nobody was told were applied", user, len(stream), acked)
	}
	return len(stream)
}

// checkAll runs checkStream for every user of l and returns the changes checked.
func checkAll(t testing.TB, client *http.Client, baseURL string, l *ledger) int {
	t.Helper()
	n := 0
	for _, u := range l.users() {
		n += checkStream(t, client, baseURL, u, l)
	}
	return n
}

// readyStatus is GET /ready's status, or 0 when the node does not answer.
func readyStatus(client *http.Client, baseURL string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/ready", nil)
	if err != nil {
		return 0
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitReady waits until baseURL's /ready answers want.
func waitReady(t testing.TB, client *http.Client, baseURL string, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for got := readyStatus(client, baseURL); got != want; got = readyStatus(client, baseURL) {
		if time.Now().After(deadline) {
			t.Fatalf("%s/ready answers %d, want %d within 30 s", baseURL, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sendOne uploads one new change of d to baseURL until acknowledged and returns the user's
// seq after it.
func sendOne(t testing.TB, d *device, baseURL string, l *ledger) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ans, err := d.send(ctx, nodes(baseURL), d.nextBatch(1), l)
	if err != nil {
		t.Fatal(err)
	}
	return ans.HighestServerSeq
}
