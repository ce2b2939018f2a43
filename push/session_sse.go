package push

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// SSERequest is an authenticated, admitted GET /sync/events.
type SSERequest struct {
	Peer   Peer
	Ticket *Ticket
	After  int64 // from ?after, or Last-Event-ID when the browser resumes
	Schema string
	// Frames is the dialect the events are written in; nil means the push protocol's own
	// (V0Frames).
	Frames *SSEFrames
}

// SSEFrames is one dialect of events on an SSE stream: the hub, coalescing and lifetime rules
// are the same for every dialect, only the bytes differ.
type SSEFrames struct {
	// Ready is the first event, written once the session is subscribed; nil writes none.
	Ready func(seq int64, heartbeat time.Duration) []byte
	// Changes is the event telling that the user's stream reached seq.
	Changes func(seq int64) []byte
	// Heartbeat is written every Heartbeat interval to keep proxies and clients from timing out.
	Heartbeat []byte
}

// V0Frames is the push protocol's own SSE dialect: a ready event with the retry hint, changes
// events whose id: is the seq (so a browser resumes with Last-Event-ID), ": ping" heartbeats.
var V0Frames = &SSEFrames{
	Ready: func(seq int64, heartbeat time.Duration) []byte {
		return fmt.Appendf(nil, "retry: 2000\ndata: %s\n\n", readyFrame(seq, heartbeat))
	},
	Changes: func(seq int64) []byte {
		event := append([]byte("id: "), strconv.FormatInt(seq, 10)...)
		return append(append(append(event, "\ndata: "...), changesFrame(seq)...), "\n\n"...)
	},
	Heartbeat: []byte(": ping\n\n"),
}

// ServeSSE streams the push protocol's frames as Server-Sent Events until the client goes, its
// token expires, it stops reading for WriteTimeout while a notification waits (see drainGate)
// or the service shuts down. Each changes event carries id: seq, so a browser's automatic
// reconnect resumes with Last-Event-ID. Whatever ends the stream ends the response and, on
// HTTP/1, its connection: the client sees the end and reconnects. It returns an error, having
// written nothing, when the session cannot start; the caller answers it.
func (s *Service) ServeSSE(w http.ResponseWriter, r *http.Request, req SSERequest) error {
	defer req.Ticket.Release()
	ctx := r.Context()
	end := make(chan struct{})
	var endOnce sync.Once
	stop := func() { endOnce.Do(func() { close(end) }) }
	if !req.Ticket.onShutdown(stop) {
		return ErrShuttingDown
	}
	wake := make(chan struct{}, 1)
	sub, seq, err := s.subscribe(ctx, SubscribeOptions{User: req.Peer.User, Source: req.Peer.Source, Schema: req.Schema,
		After: req.After, Wake: func() {
			if !signal(wake) {
				s.sseCoalesced.Inc()
			}
		}})
	if err != nil {
		return err
	}
	defer sub.Close()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx and friends must not hold events back
	if r.ProtoMajor == 1 {
		// A stream's connection is not worth keeping for another request, and closing it makes
		// the end plain to any client or proxy, whether it frames the body by chunks or by EOF.
		h.Set("Connection", "close")
	}
	rc := http.NewResponseController(w)
	// net/http writes the end of the chunked body after the handler returns: it gets a fresh
	// deadline, or a stream quiet for longer than WriteTimeout would end in a failed write
	// instead of a clean end.
	defer func() { _ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout)) }()
	send := func(event []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		if _, err := w.Write(event); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	frames := req.Frames
	if frames == nil {
		frames = V0Frames
	}
	if frames.Ready != nil {
		if !send(frames.Ready(seq, s.cfg.Heartbeat)) {
			return nil
		}
	} else if !send(nil) { // flush the headers: the client learns at once that the stream is open
		return nil
	}
	var expired <-chan time.Time
	if !req.Peer.Expires.IsZero() {
		t := time.NewTimer(time.Until(req.Peer.Expires))
		defer t.Stop()
		expired = t.C
	}
	heartbeat := time.NewTicker(s.cfg.Heartbeat)
	defer heartbeat.Stop()

	gate := newDrainGate(connOf(r))
	var drained *time.Timer // brings the next look at an undrained socket; nil until first needed
	defer func() {
		if drained != nil {
			drained.Stop()
		}
	}()
	var lookAgain <-chan time.Time // drained's channel while it is set
	// notify writes the pending notification once the socket has drained. It reports false
	// when the stream must end: the write failed, or the client stalled.
	notify := func() bool {
		if lookAgain != nil || !sub.Pending() {
			return true
		}
		wait, stalled := gate.check(s.cfg.WriteTimeout)
		switch {
		case stalled:
			s.observeStalled("sse")
			return false
		case wait > 0:
			if drained == nil {
				drained = time.NewTimer(wait)
			} else {
				drained.Reset(wait)
			}
			lookAgain = drained.C
			return true
		}
		seq, since, ok := sub.Next()
		if !ok {
			return true
		}
		if !send(frames.Changes(seq)) {
			return false
		}
		s.observeSent("sse", since)
		return true
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-end:
			return nil
		case <-expired:
			return nil // the client reconnects with a fresh token
		case <-heartbeat.C:
			// Behind bytes the client has not taken, a heartbeat would only queue; it counts
			// towards a stall like a notification.
			wait, stalled := gate.check(s.cfg.WriteTimeout)
			if stalled {
				s.observeStalled("sse")
				return nil
			}
			if wait == 0 && !send(frames.Heartbeat) {
				return nil
			}
		case <-lookAgain:
			lookAgain = nil
			if !notify() {
				return nil
			}
		case <-wake:
			if !notify() {
				return nil
			}
		}
	}
}

// signal does a non-blocking send on a one-slot channel: one pending signal stands for any
// number of wakes. It reports false when a signal was already pending.
func signal(ch chan<- struct{}) bool {
	select {
	case ch <- struct{}{}:
		return true
	default:
		return false
	}
}
