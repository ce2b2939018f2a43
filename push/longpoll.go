package push

import (
	"context"
	"sync"
	"time"
)

// LongPollRequest is an authenticated, admitted GET /sync/download with wait=S.
type LongPollRequest struct {
	Peer   Peer
	Ticket *Ticket
	After  int64
	Schema string
	Wait   time.Duration
}

// LongPoll runs poll, and again each time the user's stream moves past req.After, until poll
// reports that it has something to answer or the client goes. When req.Wait elapses, the
// peer's token expires or the service shuts down it polls a last time, so that the caller
// answers exactly what a plain download would; a held answer never outlives its token. The
// hub subscription is in place before the first poll reads the database, so a commit between
// a poll and the wait cannot be slept through.
func (s *Service) LongPoll(ctx context.Context, req LongPollRequest, poll func(ctx context.Context) (done bool, err error)) error {
	defer req.Ticket.Release()
	end := make(chan struct{})
	var endOnce sync.Once
	if !req.Ticket.onShutdown(func() { endOnce.Do(func() { close(end) }) }) {
		return ErrShuttingDown
	}
	if err := s.cfg.Watch(ctx, req.Peer.User); err != nil {
		return err
	}
	wake := make(chan struct{}, 1)
	sub := s.hub.Subscribe(SubscribeOptions{User: req.Peer.User, Source: req.Peer.Source, Schema: req.Schema,
		After: req.After, Wake: func() { signal(wake) }})
	defer sub.Close()
	wait := req.Wait
	if !req.Peer.Expires.IsZero() {
		wait = min(wait, time.Until(req.Peer.Expires))
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		done, err := poll(ctx)
		if done || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-end:
			_, err := poll(ctx)
			return err
		case <-deadline.C:
			_, err := poll(ctx)
			return err
		case <-wake:
			sub.Next()
		}
	}
}
