package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// unknownKidRefreshInterval bounds fetches caused by tokens with a kid the cache does not
	// know, so a stream of forged kids cannot hammer the JWKS server: at most one such fetch
	// per interval, on top of the periodic ones.
	unknownKidRefreshInterval = 30 * time.Second
	// maxJWKSBytes caps the JWKS response; real sets are a few kilobytes.
	maxJWKSBytes = 1 << 20
)

var (
	errUnknownKey     = errors.New("unknown signing key")
	errKeyAlgMismatch = errors.New("signing key does not fit the token's algorithm")
	errNoUsableKeys   = errors.New("jwks has no usable signing keys")
)

// keySet is an immutable snapshot of the JWKS keys by kid. It is replaced whole on refresh, so
// the hot path reads it with one atomic load and no lock.
type keySet struct {
	byKid map[string]publicKey
}

// keySource keeps the public keys of a JWKS URL: fetched at start, refreshed periodically and
// when a token names an unknown kid. At most one fetch runs at a time; tokens waiting for keys
// share it. When a fetch fails the previous keys stay in use.
type keySource struct {
	url         string
	client      *http.Client
	ownedClient bool // created by us, so Close may drop its idle connections
	log         *slog.Logger

	keys atomic.Pointer[keySet]

	ctx    context.Context // ends on close; bounds background fetches
	cancel context.CancelFunc
	wg     sync.WaitGroup // the refresher and any running fetch

	mu           sync.Mutex // guards the fields below; never held across I/O
	inflight     chan struct{}
	lastKidFetch time.Time
	closed       bool
}

// newKeySource fetches the JWKS once with ctx, failing if that fetch fails, and then starts the
// periodic refresher, which runs until close.
func newKeySource(ctx context.Context, cfg Config) (*keySource, error) {
	s := &keySource{url: cfg.JWKSURL, client: cfg.HTTPClient, log: cfg.Logger}
	if s.client == nil {
		s.client = newHTTPClient()
		s.ownedClient = true
	}
	if err := s.fetch(ctx); err != nil {
		if s.ownedClient {
			s.client.CloseIdleConnections()
		}
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.wg.Add(1)
	go s.refreshPeriodically(cfg.JWKSRefresh)
	return s, nil
}

// newHTTPClient returns the default JWKS client: a private transport, so close can drop its
// idle connections without touching anybody else's, and a 10 s limit per fetch.
func newHTTPClient() *http.Client {
	return &http.Client{
		Transport: http.DefaultTransport.(*http.Transport).Clone(),
		Timeout:   10 * time.Second,
	}
}

// key returns the verification key for a token's kid and alg, or errUnknownKey.
func (s *keySource) key(kid, alg string) (any, error) {
	k, ok := s.keys.Load().byKid[kid]
	if !ok {
		return nil, errUnknownKey
	}
	if !k.accepts(alg) {
		return nil, errKeyAlgMismatch
	}
	return k.key, nil
}

// refreshForUnknownKid starts a fetch on behalf of a token with an unknown kid and returns a
// channel closed when the fetch ends. It joins a fetch already running; otherwise it starts one
// at most once per unknownKidRefreshInterval and returns nil when rate limited or closed.
func (s *keySource) refreshForUnknownKid() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight != nil {
		return s.inflight
	}
	now := time.Now()
	if !s.lastKidFetch.IsZero() && now.Sub(s.lastKidFetch) < unknownKidRefreshInterval {
		return nil
	}
	s.lastKidFetch = now
	return s.startFetchLocked()
}

// startFetchLocked runs one fetch in the background unless one is running or s is closed. The
// caller holds s.mu.
func (s *keySource) startFetchLocked() chan struct{} {
	if s.inflight != nil || s.closed {
		return s.inflight
	}
	done := make(chan struct{})
	s.inflight = done
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.fetch(s.ctx); err != nil && s.ctx.Err() == nil {
			s.log.Warn("refresh jwks failed, keeping cached keys", "url", s.url, "err", err)
		}
		s.mu.Lock()
		s.inflight = nil
		s.mu.Unlock()
		close(done)
	}()
	return done
}

func (s *keySource) refreshPeriodically(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.mu.Lock()
			s.startFetchLocked()
			s.mu.Unlock()
		}
	}
}

// fetch downloads and parses the JWKS and replaces the cached keys. Keys that cannot be used
// are skipped; a set without a single usable key is an error and leaves the cache as it was.
func (s *keySource) fetch(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return fmt.Errorf("build jwks request: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("get jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get jwks: unexpected status %s", resp.Status)
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJWKSBytes)).Decode(&set); err != nil {
		return fmt.Errorf("decode jwks: %w", err)
	}

	byKid := make(map[string]publicKey, len(set.Keys))
	for _, j := range set.Keys {
		k, err := parseJWK(j)
		switch {
		case errors.Is(err, errUnsupportedKey):
			s.log.Debug("skip jwks key", "kid", j.Kid, "err", err)
			continue
		case err != nil:
			s.log.Warn("skip malformed jwks key", "kid", j.Kid, "err", err)
			continue
		}
		if _, dup := byKid[j.Kid]; dup {
			s.log.Warn("skip jwks key with duplicate kid", "kid", j.Kid)
			continue
		}
		byKid[j.Kid] = k
	}
	if len(byKid) == 0 {
		return errNoUsableKeys
	}
	s.keys.Store(&keySet{byKid: byKid})
	s.log.Debug("jwks refreshed", "url", s.url, "keys", len(byKid))
	return nil
}

// close stops the refresher, cancels a running fetch and waits for both. It is idempotent.
func (s *keySource) close() {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if already {
		return
	}
	s.cancel()
	s.wg.Wait()
	if s.ownedClient {
		s.client.CloseIdleConnections()
	}
}
