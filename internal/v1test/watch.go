package v1test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/pgv1/wire"
)

// Wait is how long a watch read waits before the test fails: generous, because the machine is
// shared; tests bound latencies they care about themselves.
const Wait = 10 * time.Second

// maxLine bounds an SSE line and an event, as the client does (docs/protocol-v1.md §3.12).
const maxLine = 1 << 20

// Event is the data of one `event: bundle` of a watch stream.
type Event struct {
	BundleSeq      int64  `json:"bundle_seq"`
	SourceID       string `json:"source_id"`
	SourceBundleID int64  `json:"source_bundle_id"`
}

// OpenWatch sends GET /sync/watch?after_bundle_seq=after and returns the answer unread,
// whatever its status; the caller closes its body. A test that wants a reader that never
// reads uses it directly.
func (c *Client) OpenWatch(ctx context.Context, after int64) (*http.Response, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "/sync/watch?after_bundle_seq="+strconv.FormatInt(after, 10), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("open watch: %w", err)
	}
	return resp, nil
}

// Watch is an open /sync/watch stream whose bundle events a goroutine parses as they come.
type Watch struct {
	t      testing.TB
	events chan Event
	err    error         // why the stream ended, nil for a clean end; set before events closes
	closed chan struct{} // closed by Close: the parser stops handing out events
	close  func()
}

// Watch opens a watch stream after the checkpoint after and fails the test unless it answers
// 200 text/event-stream. The stream closes with Close or when the test ends.
func (c *Client) Watch(t testing.TB, after int64) *Watch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := c.OpenWatch(ctx, after)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	closed := make(chan struct{})
	closeOnce := sync.OnceFunc(func() {
		close(closed)
		cancel()
		resp.Body.Close()
	})
	t.Cleanup(closeOnce)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		t.Fatalf("open watch after %d: %d %s %s, want 200 text/event-stream", after, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	w := &Watch{t: t, events: make(chan Event, 64), closed: closed, close: closeOnce}
	go w.read(resp.Body)
	return w
}

// Close ends the stream from the client's side; a Next waiting meanwhile returns an error.
func (w *Watch) Close() { w.close() }

// read parses the stream as the client does: comments, id:, retry: and other event types are
// ignored, multi-line data is joined, a bundle event needs bundle_seq > 0 and a valid
// source_id when it has one. It stops at the first violation.
func (w *Watch) read(body io.Reader) {
	defer close(w.events)
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 4<<10), maxLine)
	var typ string
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch {
		case len(line) == 0:
			if typ == "bundle" {
				var e Event
				if err := json.Unmarshal(data, &e); err != nil || e.BundleSeq <= 0 || e.SourceID != "" && !wire.ValidSourceID(e.SourceID) {
					w.err = fmt.Errorf("bad bundle event %q", data)
					return
				}
				select {
				case w.events <- e:
				case <-w.closed: // nobody reads any more
					return
				}
			}
			typ, data = "", data[:0]
		case string(field) == "event":
			typ = string(value)
		case string(field) == "data":
			if len(data) > 0 {
				data = append(data, '\n')
			}
			if data = append(data, value...); len(data) > maxLine {
				w.err = errors.New("event over 1 MiB")
				return
			}
		}
	}
	w.err = sc.Err()
}

// Next returns the next bundle event, or an error when none comes within d or the stream ends.
func (w *Watch) Next(d time.Duration) (Event, error) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case e, ok := <-w.events:
		if !ok {
			return Event{}, fmt.Errorf("watch stream ended: %v", w.err)
		}
		return e, nil
	case <-timer.C:
		return Event{}, fmt.Errorf("no bundle event within %v", d)
	}
}

// Read returns the next bundle event, failing the test if none comes within Wait.
func (w *Watch) Read() Event {
	w.t.Helper()
	e, err := w.Next(Wait)
	if err != nil {
		w.t.Fatal(err)
	}
	return e
}

// ReadUntil reads events until one reports at least bundleSeq and returns it, failing the test
// if that takes longer than Wait.
func (w *Watch) ReadUntil(bundleSeq int64) Event {
	w.t.Helper()
	deadline := time.Now().Add(Wait)
	for {
		e, err := w.Next(time.Until(deadline))
		if err != nil {
			w.t.Fatalf("waiting for bundle %d: %v", bundleSeq, err)
		}
		if e.BundleSeq >= bundleSeq {
			return e
		}
	}
}
