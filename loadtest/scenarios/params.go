package scenarios

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/pulsesync/pulsesync/loadtest"
)

// DevSecret is the HS256 secret of `pulsesync dev` and of the reference
// server's test setup (docs/protocol-v0.md §1.5).
const DevSecret = "your-secret-key-change-in-production"

// Params are the parameters of every scenario, as written in a scenario's
// "params" object. Each exec accepts only the keys it uses (an unused or
// misspelt key is an error); a zero value means the default noted beside the
// field.
type Params struct {
	// URL is the server's base URL; default http://127.0.0.1:8080.
	URL string `json:"url,omitempty"`
	// Secret signs the HS256 tokens; default DevSecret.
	Secret string `json:"secret,omitempty"`
	// Users is how many users the VUs are spread over; default 100.
	Users int `json:"users,omitempty"`
	// DevicesPerUser is how many consecutive VUs share a user (in the v1
	// scenarios: sources per user); default 1.
	DevicesPerUser int `json:"devices_per_user,omitempty"`
	// TokenTTL is the lifetime of minted tokens; they are re-minted when a
	// tenth of it is left. Default 1h.
	TokenTTL loadtest.Duration `json:"token_ttl,omitempty"`
	// Timeout bounds one HTTP request or WebSocket handshake; default 60s.
	Timeout loadtest.Duration `json:"timeout,omitempty"`
	// Schema is the schema of the business tables; default "business" (v0
	// scenarios) or "app" (v1 scenarios).
	Schema string `json:"schema,omitempty"`
	// RunTag, when set, goes into every user and device id and seeds row ids,
	// so repeated runs against one database never collide on idempotency keys
	// or primary keys, nor find the rows of an earlier run. The binary sets a
	// fresh one per run.
	RunTag string `json:"run_tag,omitempty"`
	// UserPool names the users a scenario's VUs are: load-user[-<run tag>]-<pool>-<n>.
	// Scenarios of one pool share users, so one's uploads reach the other's
	// devices; scenarios of different pools never meet, so one's uploads cannot
	// break another's checks (a download counting rows, a listener's seq).
	// Default: the scenario's name, or SharedUserPool for the execs that meet
	// others on a board (push_listener, push_uploader, v1_watch, …).
	UserPool string `json:"user_pool,omitempty"`
	// scenario is the name of the scenario being built, the default pool; set
	// by Registry, not a config key.
	scenario string

	// Batch is the number of INSERTs per upload request (upload); default 100.
	Batch int `json:"batch,omitempty"`
	// Rows is the number of INSERTs per pushed bundle (v1_push,
	// v1_watch_uploader); default 100.
	Rows int `json:"rows,omitempty"`
	// PrefillRows are uploaded (v1: committed), spread over the users, by
	// Setup before the measured phase (upload, download, poll, v1_pull,
	// v1_snapshot); default 0 (upload, poll) or 100,000 (download, v1_pull,
	// v1_snapshot).
	PrefillRows int `json:"prefill_rows,omitempty"`
	// PrefillBatch is the number of rows per prefill request (v1: per
	// bundle); default 1000.
	PrefillBatch int `json:"prefill_batch,omitempty"`
	// PrefillConcurrency is the number of concurrent prefill requests; default 8.
	PrefillConcurrency int `json:"prefill_concurrency,omitempty"`

	// Limit is the download page size (download), the bundles per pull page
	// (v1_pull: max_bundles) or the rows per snapshot chunk (v1_snapshot:
	// max_rows, capped by the server's maximum); default 1000.
	Limit int `json:"limit,omitempty"`

	// Transport is how listeners are woken (push_listener): "ws" (default) or "sse".
	Transport string `json:"transport,omitempty"`
	// Board names the in-process board where push_uploader publishes what it
	// uploaded and push_listener matches what it receives; default "push".
	// Scenarios that should meet use the same board.
	Board string `json:"board,omitempty"`
	// PushTimeout: a listener that has not been told about an upload this
	// long after the upload started counts in push_missed; default 5s.
	PushTimeout loadtest.Duration `json:"push_timeout,omitempty"`

	// Connections is the number of idle WebSockets to hold (idle_ws),
	// shared out over the scenario's VUs; default 1000.
	Connections int `json:"connections,omitempty"`
	// SourceIPs spreads client sockets over 127.0.0.2 … 127.0.0.(1+SourceIPs),
	// since one source address has only ~28k ephemeral ports (idle_ws,
	// push_listener); default 0: the system's choice.
	SourceIPs int `json:"source_ips,omitempty"`
	// ServerPID, when set, makes idle_ws sample /proc/<pid>/status VmRSS every
	// second into server_rss_bytes and report the server's memory per open
	// connection.
	ServerPID int `json:"server_pid,omitempty"`
	// ServerInProcess tells that the server runs inside the load generator's
	// own process (--embedded): compare_meter then measures this process's
	// CPU, client included, and says so. Not a config key.
	ServerInProcess bool `json:"-"`
	// DatabaseURL is the server's PostgreSQL (compare_meter): transactions
	// are read from pg_stat_database, and the postmaster found through a
	// backend's parent process to sum PostgreSQL's CPU.
	DatabaseURL string `json:"database_url,omitempty"`
	// PollInterval is how often a polling device downloads (compare_poller);
	// default 1s.
	PollInterval loadtest.Duration `json:"poll_interval,omitempty"`
}

// override returns p with every field that o sets replaced by o's value.
func (p Params) override(o Params) Params {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	setInt := func(dst *int, v int) {
		if v != 0 {
			*dst = v
		}
	}
	setDur := func(dst *loadtest.Duration, v loadtest.Duration) {
		if v != 0 {
			*dst = v
		}
	}
	set(&p.URL, o.URL)
	set(&p.Secret, o.Secret)
	setInt(&p.Users, o.Users)
	setInt(&p.DevicesPerUser, o.DevicesPerUser)
	setDur(&p.TokenTTL, o.TokenTTL)
	setDur(&p.Timeout, o.Timeout)
	set(&p.Schema, o.Schema)
	set(&p.RunTag, o.RunTag)
	set(&p.UserPool, o.UserPool)
	set(&p.scenario, o.scenario)
	setInt(&p.Batch, o.Batch)
	setInt(&p.Rows, o.Rows)
	setInt(&p.PrefillRows, o.PrefillRows)
	setInt(&p.PrefillBatch, o.PrefillBatch)
	setInt(&p.PrefillConcurrency, o.PrefillConcurrency)
	setInt(&p.Limit, o.Limit)
	set(&p.Transport, o.Transport)
	set(&p.Board, o.Board)
	setDur(&p.PushTimeout, o.PushTimeout)
	setInt(&p.Connections, o.Connections)
	setInt(&p.SourceIPs, o.SourceIPs)
	setInt(&p.ServerPID, o.ServerPID)
	p.ServerInProcess = p.ServerInProcess || o.ServerInProcess
	set(&p.DatabaseURL, o.DatabaseURL)
	setDur(&p.PollInterval, o.PollInterval)
	return p
}

func (p Params) withDefaults() Params {
	return Params{
		URL: "http://127.0.0.1:8080", Secret: DevSecret, Users: 100, DevicesPerUser: 1,
		TokenTTL: loadtest.Duration(time.Hour), Timeout: loadtest.Duration(time.Minute), Schema: "business",
		Batch: 100, Rows: 100, PrefillBatch: 1000, PrefillConcurrency: 8, Limit: 1000,
		Transport: "ws", Board: "push", PushTimeout: loadtest.Duration(5 * time.Second), Connections: 1000,
		PollInterval: loadtest.Duration(time.Second),
	}.override(p)
}

func (p Params) validate() error {
	switch {
	case p.Users < 1 || p.DevicesPerUser < 1:
		return errors.New("users and devices_per_user must be at least 1")
	case p.Batch < 1 || p.Rows < 1 || p.PrefillBatch < 1 || p.PrefillConcurrency < 1 || p.PrefillRows < 0:
		return errors.New("batch, rows, prefill_batch and prefill_concurrency must be at least 1, prefill_rows not negative")
	case p.Limit < 1 || p.Limit > 1000:
		return errors.New("limit must be between 1 and 1000 (docs/protocol-v0.md §4.1)")
	case p.Transport != "ws" && p.Transport != "sse":
		return fmt.Errorf("transport %q must be ws or sse", p.Transport)
	case p.Connections < 1 || p.SourceIPs < 0 || p.SourceIPs > 253 || p.ServerPID < 0:
		return errors.New("connections must be at least 1, source_ips 0…253, server_pid not negative")
	case p.PollInterval < loadtest.Duration(10*time.Millisecond):
		return errors.New("poll_interval must be at least 10ms")
	case p.TokenTTL < loadtest.Duration(time.Minute):
		return errors.New("token_ttl must be at least 1m")
	case !strings.HasPrefix(p.URL, "http://") && !strings.HasPrefix(p.URL, "https://"):
		return fmt.Errorf("url %q must start with http:// or https://", p.URL)
	case p.UserPool != "" && !poolName.MatchString(p.UserPool):
		return fmt.Errorf("user pool %q (user_pool, or else the scenario's name) must be 1…64 letters, digits, '.', '_' or '-'; "+
			"name one with the user_pool param", p.UserPool)
	}
	return nil
}

// SharedUserPool is the default user pool of the execs that meet others on a board: they
// must share users (an uploader writes for the users its listeners hold), so they share one
// pool unless user_pool says otherwise.
const SharedUserPool = "shared"

// poolName is what a user pool may be called: it goes into user ids and token subjects.
var poolName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// commonKeys are the params every exec accepts.
func commonKeys() []string {
	return []string{"url", "secret", "users", "devices_per_user", "token_ttl", "timeout", "schema", "run_tag", "user_pool"}
}

// decodeParams reads raw strictly, refusing keys outside commonKeys and
// extra, then applies the overrides and the defaults.
func decodeParams(raw json.RawMessage, overrides Params, extra ...string) (Params, error) {
	return decodeParamsOver(Params{}, raw, overrides, extra...)
}

// decodeV1Params is decodeParams for the v1 scenarios, whose tables live in
// the schema "app" unless a param or override names another.
func decodeV1Params(raw json.RawMessage, overrides Params, extra ...string) (Params, error) {
	return decodeParamsOver(Params{Schema: "app"}, raw, overrides, extra...)
}

// decodeParamsOver is decodeParams with base's fields as defaults that take
// precedence over the common ones.
func decodeParamsOver(base Params, raw json.RawMessage, overrides Params, extra ...string) (Params, error) {
	var p Params
	if len(bytes.TrimSpace(raw)) > 0 {
		allowed := append(commonKeys(), extra...)
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(raw, &keys); err != nil {
			return Params{}, fmt.Errorf("params must be a JSON object: %w", err)
		}
		for k := range keys {
			if !slices.Contains(allowed, k) {
				return Params{}, fmt.Errorf("unknown param %q (this exec takes %s)", k, strings.Join(allowed, ", "))
			}
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			return Params{}, fmt.Errorf("decode params: %w", err)
		}
	}
	p = base.override(p).override(overrides).withDefaults()
	if p.UserPool == "" && slices.Contains(extra, "board") {
		p.UserPool = SharedUserPool
	}
	if p.UserPool == "" {
		p.UserPool = p.scenario
	}
	if err := p.validate(); err != nil {
		return Params{}, err
	}
	return p, nil
}

// userOf is the user of a scenario's idx-th (0-based) VU or connection.
func (p Params) userOf(idx int) string { return p.user(idx / p.DevicesPerUser % p.Users) }

// user is the pool's k-th (0-based) user: load-user[-<run tag>][-<pool>]-<k+1>. Only params
// built outside a scenario (unit tests) have no pool.
func (p Params) user(k int) string {
	u := "load-user"
	for _, part := range []string{p.RunTag, p.UserPool} {
		if part != "" {
			u += "-" + part
		}
	}
	return fmt.Sprintf("%s-%d", u, k+1)
}

// device is the device id of VU vuID, with an optional suffix for VUs that
// hold several connections.
func (p Params) device(vuID int, suffix string) string { return p.writer("load-dev", vuID, suffix) }

// source is the v1 source id (Oversync-Source-ID) of VU vuID, with an
// optional suffix for VUs that push as several sources.
func (p Params) source(vuID int, suffix string) string { return p.writer("load-src", vuID, suffix) }

// writer is <kind>[-<run tag>]-<n>[-<suffix>].
func (p Params) writer(kind string, n int, suffix string) string {
	w := fmt.Sprintf("%s-%d", kind, n)
	if p.RunTag != "" {
		w = fmt.Sprintf("%s-%s-%d", kind, p.RunTag, n)
	}
	if suffix != "" {
		w += "-" + suffix
	}
	return w
}
