package scenarios

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/pulsesync/pulsesync/loadtest"
)

// The kinds of mixed devices: three push channels (docs/push.md §1–§3) and
// plain pollers.
const (
	kindWS       = "ws"
	kindSSE      = "sse"
	kindLongPoll = "longpoll"
	kindPoll     = "poll"
)

// mixedKinds is the order in which shares are laid out.
var mixedKinds = []string{kindWS, kindSSE, kindLongPoll, kindPoll}

// mixedParams are the params only the mixed exec takes, beside the common
// ones (users, devices_per_user, …), limit, board and poll_interval (how
// often a poller downloads).
type mixedParams struct {
	// Shares weigh the kinds of devices: "ws", "sse", "longpoll" (push
	// channels) and "poll" (no push); default 4:2:2:2.
	Shares map[string]float64 `json:"shares,omitempty"`
	// UploadEvery is the mean time between a device's bursts (each gap drawn
	// from 0.5–1.5 times it); default 10s.
	UploadEvery loadtest.Duration `json:"upload_every,omitempty"`
	// Burst is the number of changes of one burst, sent as one upload; default 5.
	Burst int `json:"burst,omitempty"`
	// StormAt is when, from the start of the scenario, every push
	// connection is dropped at once; default 15s.
	StormAt loadtest.Duration `json:"storm_at,omitempty"`
	// BackoffBase and BackoffMax shape the reconnect backoff: base doubled
	// per failed attempt up to max, plus up to 100 % jitter; default 500ms
	// and 30s (docs/push.md §4).
	BackoffBase loadtest.Duration `json:"backoff_base,omitempty"`
	BackoffMax  loadtest.Duration `json:"backoff_max,omitempty"`
	// LongPollWait is the long-poll's wait= in seconds (1…60); default 20.
	LongPollWait int `json:"longpoll_wait,omitempty"`
	// CatchUp bounds the quiescence at the end: once uploads have stopped,
	// a device still behind its user's head after this long counts in
	// missed_or_late_seq; default 10s.
	CatchUp loadtest.Duration `json:"catchup_timeout,omitempty"`
}

func (m mixedParams) withDefaults() mixedParams {
	if m.Shares == nil {
		m.Shares = map[string]float64{kindWS: 4, kindSSE: 2, kindLongPoll: 2, kindPoll: 2}
	}
	def := func(d *loadtest.Duration, v time.Duration) {
		if *d == 0 {
			*d = loadtest.Duration(v)
		}
	}
	def(&m.UploadEvery, 10*time.Second)
	def(&m.StormAt, 15*time.Second)
	def(&m.BackoffBase, 500*time.Millisecond)
	def(&m.BackoffMax, 30*time.Second)
	def(&m.CatchUp, 10*time.Second)
	if m.Burst == 0 {
		m.Burst = 5
	}
	if m.LongPollWait == 0 {
		m.LongPollWait = 20
	}
	return m
}

func (m mixedParams) validate() error {
	total := 0.0
	for k, w := range m.Shares {
		if !slices.Contains(mixedKinds, k) {
			return fmt.Errorf("shares: unknown kind %q (kinds: %s)", k, strings.Join(mixedKinds, ", "))
		}
		if w < 0 || math.IsInf(w, 0) || math.IsNaN(w) {
			return fmt.Errorf("shares: %s must be a finite weight ≥ 0", k)
		}
		total += w
	}
	switch {
	case total <= 0:
		return errors.New("shares: at least one kind needs a weight above 0")
	case m.UploadEvery < 0 || m.StormAt < 0 || m.CatchUp < 0:
		return errors.New("upload_every, storm_at and catchup_timeout must not be negative")
	case m.BackoffBase <= 0 || m.BackoffMax < m.BackoffBase:
		return errors.New("backoff_base must be above 0 and backoff_max at least backoff_base")
	case m.Burst < 1:
		return errors.New("burst must be at least 1")
	case m.LongPollWait < 1 || m.LongPollWait > 60:
		return errors.New("longpoll_wait must be between 1 and 60 (docs/push.md §3)")
	}
	return nil
}

// kindOf lays the kinds out over the scenario's devices in proportion to
// their shares: device idx (0-based) takes the kind at the point
// frac(idx·φ) of the cumulative shares, a low-discrepancy sequence, so even
// a handful of devices gets every kind with a share.
func (m mixedParams) kindOf(idx int) string {
	total := 0.0
	for _, k := range mixedKinds {
		total += m.Shares[k]
	}
	_, pos := math.Modf(float64(idx) * 0.6180339887498949)
	pos *= total
	last := ""
	for _, k := range mixedKinds {
		if m.Shares[k] <= 0 {
			continue
		}
		last = k
		if pos < m.Shares[k] {
			return k
		}
		pos -= m.Shares[k]
	}
	return last
}

// mixedKeys are the JSON keys of mixedParams.
var mixedKeys = []string{"shares", "upload_every", "burst", "storm_at", "backoff_base", "backoff_max", "longpoll_wait", "catchup_timeout"}

// decodeMixedParams splits raw into the common params (with limit, board
// and poll_interval) and mixed's own, each decoded strictly.
func decodeMixedParams(raw json.RawMessage, o Params) (Params, mixedParams, error) {
	common := []string{"limit", "board", "poll_interval"}
	own, rest := map[string]json.RawMessage{}, map[string]json.RawMessage{}
	if len(bytes.TrimSpace(raw)) > 0 {
		var all map[string]json.RawMessage
		if err := json.Unmarshal(raw, &all); err != nil {
			return Params{}, mixedParams{}, fmt.Errorf("params must be a JSON object: %w", err)
		}
		for k, v := range all {
			switch {
			case slices.Contains(mixedKeys, k):
				own[k] = v
			case slices.Contains(commonKeys(), k) || slices.Contains(common, k):
				rest[k] = v
			default:
				allowed := append(append(commonKeys(), common...), mixedKeys...)
				return Params{}, mixedParams{}, fmt.Errorf("unknown param %q (this exec takes %s)", k, strings.Join(allowed, ", "))
			}
		}
	}
	restJSON, err := json.Marshal(rest)
	if err != nil {
		return Params{}, mixedParams{}, fmt.Errorf("encode params: %w", err)
	}
	p, err := decodeParams(restJSON, o, common...)
	if err != nil {
		return Params{}, mixedParams{}, err
	}
	ownJSON, err := json.Marshal(own)
	if err != nil {
		return Params{}, mixedParams{}, fmt.Errorf("encode params: %w", err)
	}
	var m mixedParams
	if err := json.Unmarshal(ownJSON, &m); err != nil {
		return Params{}, mixedParams{}, fmt.Errorf("decode params: %w", err)
	}
	m = m.withDefaults()
	if err := m.validate(); err != nil {
		return Params{}, mixedParams{}, err
	}
	return p, m, nil
}
