package main

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kong"

	"github.com/pulsesync/pulsesync/pgv1"
)

// serverFlags are the settings of serve and dev. Each is a flag, an environment variable
// (PULSESYNC_ and the flag's name in capitals; a few older names are accepted too) and a key of
// the --config file (the flag's name); the flag wins over the variable, the variable over the
// file, the file over the default. Secrets carry no default, so --help never shows one.
type serverFlags struct {
	Config configFile `name:"config" env:"PULSESYNC_CONFIG" placeholder:"FILE" help:"YAML file of settings, keyed by flag name (flags and environment variables win over it)"`

	DatabaseURL string `group:"Database" name:"database-url" env:"PULSESYNC_DATABASE_URL,DATABASE_URL" placeholder:"URL" help:"PostgreSQL connection URL (serve: required; dev: default is a throwaway cluster)"`
	DBMaxConns  int32  `group:"Database" name:"db-max-conns" env:"PULSESYNC_DB_MAX_CONNS" default:"32" help:"database pool size, unless the URL sets pool_max_conns"`

	JWTSecret     string   `group:"Tokens" name:"jwt-secret" env:"PULSESYNC_JWT_SECRET,JWT_SECRET" placeholder:"SECRET" help:"HMAC secret for HS256/384/512 tokens"`
	JWKSURL       string   `group:"Tokens" name:"jwt-jwks-url" env:"PULSESYNC_JWT_JWKS_URL,JWT_JWKS_URL" placeholder:"URL" help:"JWKS URL for RS*/PS*/ES* tokens (keys cached, fetched again every --jwt-jwks-refresh and on an unknown kid)"`
	JWKSRefresh   period   `group:"Tokens" name:"jwt-jwks-refresh" env:"PULSESYNC_JWT_JWKS_REFRESH" default:"5m" help:"how often the JWK Set is fetched again"`
	AllowNoExp    bool     `group:"Tokens" name:"allow-no-exp" env:"PULSESYNC_ALLOW_NO_EXP" help:"accept tokens without an exp claim (they never expire)"`
	Tables        string   `group:"v0 protocol" name:"tables" env:"PULSESYNC_TABLES" placeholder:"LIST" help:"v0 tables, comma-separated schema.table; each needs a uuid primary key"`
	MaxPayload    byteSize `group:"v0 protocol" name:"max-payload" env:"PULSESYNC_MAX_PAYLOAD" default:"0" help:"largest payload of one v0 change; 0 = only the body limit"`
	MaxChanges    count    `group:"v0 protocol" name:"max-changes" env:"PULSESYNC_MAX_CHANGES" default:"0" help:"most changes in one v0 upload, answered batch_too_large beyond; 0 = no limit (recommended, docs/protocol-v0.md §9.3)"`
	SchemaVersion count    `group:"v0 protocol" name:"schema-version" env:"PULSESYNC_SCHEMA_VERSION" default:"1" help:"what GET /sync/schema-version reports: raise it when the app's tables change"`
	MaxBody       byteSize `group:"HTTP" name:"max-body" env:"PULSESYNC_MAX_BODY" default:"32MiB" help:"largest request body (bytes, or with KiB/MiB/GiB); Sep-2025 KMP clients upload their whole queue at once"`

	Addr              string   `group:"HTTP" name:"addr" env:"PULSESYNC_ADDR" placeholder:"ADDR" help:"listen address (serve: :8080, dev: 127.0.0.1:8080)"`
	ReadHeaderTimeout period   `group:"HTTP" name:"read-header-timeout" env:"PULSESYNC_READ_HEADER_TIMEOUT" default:"10s" help:"time to read a request's line and headers"`
	MaxHeaderBytes    byteSize `group:"HTTP" name:"max-header-bytes" env:"PULSESYNC_MAX_HEADER_BYTES" default:"64KiB" help:"largest request line and headers (431 beyond)"`
	IdleTimeout       period   `group:"HTTP" name:"idle-timeout" env:"PULSESYNC_IDLE_TIMEOUT" default:"60s" help:"closes a keep-alive connection idle this long"`
	BodyGrace         period   `group:"HTTP" name:"body-grace" env:"PULSESYNC_BODY_GRACE" default:"10s" help:"time a request body gets before --min-body-rate applies"`
	MinBodyRate       byteSize `group:"HTTP" name:"min-body-rate" env:"PULSESYNC_MIN_BODY_RATE" default:"1KiB" help:"slowest a request body may arrive, bytes per second"`
	WriteTimeout      period   `group:"HTTP" name:"write-timeout" env:"PULSESYNC_WRITE_TIMEOUT" default:"2m" help:"time to write an ordinary answer (streams have per-write deadlines)"`
	ConnsPerIP        limit    `group:"HTTP" name:"conns-per-ip" env:"PULSESYNC_CONNS_PER_IP" default:"256" help:"most open connections of one client address (IPv6: /64); -1 = no limit (SECURITY.md)"`
	ConnectRate       float64  `group:"HTTP" name:"connect-rate" env:"PULSESYNC_CONNECT_RATE" default:"50" help:"new connections per second one client address may open after --connect-burst; -1 = no limit"`
	ConnectBurst      count    `group:"HTTP" name:"connect-burst" env:"PULSESYNC_CONNECT_BURST" default:"100" help:"connections one client address may open at once"`
	LimitExempt       string   `group:"HTTP" name:"limit-exempt" env:"PULSESYNC_LIMIT_EXEMPT" placeholder:"CIDRS" help:"client addresses the connection limits skip, comma-separated CIDRs (e.g. your load balancer's)"`
	CORSOrigins       string   `group:"HTTP" name:"cors-origins" env:"PULSESYNC_CORS_ORIGINS" placeholder:"ORIGINS" help:"browser origins allowed on the v1 routes, comma-separated; * = any; empty = no CORS"`

	NATSURL        string `group:"Push" name:"nats-url" env:"PULSESYNC_NATS_URL,NATS_URL" placeholder:"URL" help:"NATS server URL for the fan-out between nodes (credentials in the URL, tls:// for TLS); empty = Postgres LISTEN/NOTIFY"`
	NATSCreds      string `group:"Push" name:"nats-creds" env:"PULSESYNC_NATS_CREDS" type:"existingfile" placeholder:"FILE" help:"NATS user credentials file (user JWT and NKey seed) for a server in operator mode"`
	NATSNKey       string `group:"Push" name:"nats-nkey" env:"PULSESYNC_NATS_NKEY" type:"existingfile" placeholder:"FILE" help:"file holding a NATS user NKey seed, for a server that lists its public key"`
	NATSTLSCA      string `group:"Push" name:"nats-tls-ca" env:"PULSESYNC_NATS_TLS_CA" type:"existingfile" placeholder:"FILE" help:"PEM authorities the NATS server's certificate must chain to (turns TLS on); empty = the system's"`
	NATSTLSCert    string `group:"Push" name:"nats-tls-cert" env:"PULSESYNC_NATS_TLS_CERT" type:"existingfile" placeholder:"FILE" help:"PEM client certificate for a NATS server that verifies clients (with --nats-tls-key)"`
	NATSTLSKey     string `group:"Push" name:"nats-tls-key" env:"PULSESYNC_NATS_TLS_KEY" type:"existingfile" placeholder:"FILE" help:"PEM key of --nats-tls-cert"`
	WatermarkCache count  `group:"Push" name:"watermark-cache-entries" env:"PULSESYNC_WATERMARK_CACHE_ENTRIES" default:"1000000" help:"users whose last server id this node caches (about 100 bytes each)"`
	ReconcileEvery period `group:"Push" name:"reconcile-every" env:"PULSESYNC_RECONCILE_EVERY" default:"5s" help:"how late at most a device hears of an advance the fan-out lost"`
	Heartbeat      period `group:"Push" name:"heartbeat" env:"PULSESYNC_HEARTBEAT" default:"25s" help:"WebSocket ping and SSE comment interval, told to clients"`
	PongTimeout    period `group:"Push" name:"pong-timeout" env:"PULSESYNC_PONG_TIMEOUT" default:"10s" help:"an unanswered WebSocket ping drops the peer after this"`
	PushWriteTO    period `group:"Push" name:"push-write-timeout" env:"PULSESYNC_PUSH_WRITE_TIMEOUT" default:"10s" help:"a push peer that takes no bytes (or acknowledges nothing) this long is dropped"`
	AuthTimeout    period `group:"Push" name:"auth-timeout" env:"PULSESYNC_AUTH_TIMEOUT" default:"5s" help:"time a WebSocket gets to send its auth message"`
	PushPerUser    count  `group:"Push" name:"push-max-per-user" env:"PULSESYNC_PUSH_MAX_PER_USER" default:"100" help:"live push sessions of one user"`
	PushPerNode    count  `group:"Push" name:"push-max-per-node" env:"PULSESYNC_PUSH_MAX_PER_NODE" default:"200000" help:"live push sessions of this node"`

	V1Tables          string   `group:"v1 protocol" name:"v1-tables" env:"PULSESYNC_V1_TABLES" placeholder:"LIST" help:"v1 tables, comma-separated schema.table[:key_column]; each needs a _sync_scope_id owner column (docs/operations.md)"`
	V1RetainBundles   count    `group:"v1 protocol" name:"v1-retain-bundles" env:"PULSESYNC_V1_RETAIN_BUNDLES" default:"10000" help:"v1 bundles kept pullable per user; clients behind the discarded history rebuild from a snapshot"`
	V1SchemaVersion   count    `group:"v1 protocol" name:"v1-schema-version" env:"PULSESYNC_V1_SCHEMA_VERSION" default:"1" help:"schema_version reported to v1 clients by /sync/capabilities"`
	V1ReservedSources string   `group:"v1 protocol" name:"v1-reserved-sources" env:"PULSESYNC_V1_RESERVED_SOURCES" placeholder:"LIST" help:"source ids kept for the server's own writes, comma-separated; clients may not use them"`
	V1Watch           bool     `group:"v1 protocol" name:"v1-watch" env:"PULSESYNC_V1_WATCH" default:"true" negatable:"" help:"serve GET /sync/watch to v1 clients (off: they poll)"`
	V1AppName         string   `group:"v1 protocol" name:"v1-app-name" env:"PULSESYNC_V1_APP_NAME" placeholder:"NAME" help:"app_name reported to v1 clients by /sync/capabilities"`
	V1MaxBody         byteSize `group:"v1 protocol" name:"v1-max-body" env:"PULSESYNC_V1_MAX_BODY" default:"1MiB" help:"largest v1 body other than a chunk"`
	V1MaxChunk        byteSize `group:"v1 protocol" name:"v1-max-chunk" env:"PULSESYNC_V1_MAX_CHUNK" default:"64MiB" help:"largest v1 chunk body (--max-body applies too)"`
	V1PruneBatch      count    `group:"v1 protocol" name:"v1-prune-batch" env:"PULSESYNC_V1_PRUNE_BATCH" default:"1000" help:"most bundles one commit discards"`
	V1PushSessionTTL  period   `group:"v1 protocol" name:"v1-push-session-ttl" env:"PULSESYNC_V1_PUSH_SESSION_TTL" default:"15m" help:"lifetime of a push session after its last create or chunk"`
	V1LeaseTTL        period   `group:"v1 protocol" name:"v1-lease-ttl" env:"PULSESYNC_V1_LEASE_TTL" default:"15m" help:"lifetime of a scope initialization lease"`
	V1RowsPerChunk    count    `group:"v1 protocol" name:"v1-max-rows-per-chunk" env:"PULSESYNC_V1_MAX_ROWS_PER_CHUNK" default:"5000" help:"most rows of one push chunk request"`
	V1MaxStaged       byteSize `group:"v1 protocol" name:"v1-max-staged-bytes" env:"PULSESYNC_V1_MAX_STAGED_BYTES" default:"1GiB" help:"most payload bytes one push session may stage"`
	V1SnapshotTTL     period   `group:"v1 protocol" name:"v1-snapshot-ttl" env:"PULSESYNC_V1_SNAPSHOT_TTL" default:"15m" help:"lifetime of a snapshot session after its creation or last chunk read"`
	V1SnapshotMaxLife period   `group:"v1 protocol" name:"v1-snapshot-max-lifetime" env:"PULSESYNC_V1_SNAPSHOT_MAX_LIFETIME" default:"2h" help:"how far reads can slide a snapshot's expiry"`
	V1SnapshotsPerUsr count    `group:"v1 protocol" name:"v1-max-snapshots-per-user" env:"PULSESYNC_V1_MAX_SNAPSHOTS_PER_USER" default:"4" help:"live snapshot sessions of one user; one more retires the oldest"`
	V1SnapshotBuilds  count    `group:"v1 protocol" name:"v1-max-snapshot-builds" env:"PULSESYNC_V1_MAX_SNAPSHOT_BUILDS" default:"8" help:"concurrent snapshot builds of this node (429 beyond)"`
	V1SnapshotChunks  count    `group:"v1 protocol" name:"v1-max-snapshot-chunks" env:"PULSESYNC_V1_MAX_SNAPSHOT_CHUNKS" default:"4" help:"concurrent snapshot chunk reads of this node (429 beyond)"`
	V1SnapshotRows    count    `group:"v1 protocol" name:"v1-max-snapshot-rows" env:"PULSESYNC_V1_MAX_SNAPSHOT_ROWS" default:"0" help:"most rows of one snapshot; 0 = no limit"`
	V1SnapshotBytes   byteSize `group:"v1 protocol" name:"v1-max-snapshot-bytes" env:"PULSESYNC_V1_MAX_SNAPSHOT_BYTES" default:"0" help:"most bytes of one snapshot; 0 = no limit"`
	V1SnapshotRowSize byteSize `group:"v1 protocol" name:"v1-max-snapshot-row-bytes" env:"PULSESYNC_V1_MAX_SNAPSHOT_ROW_BYTES" default:"4MiB" help:"largest snapshot row on the wire"`
	V1MaxPullBytes    byteSize `group:"v1 protocol" name:"v1-max-pull-bytes" env:"PULSESYNC_V1_MAX_PULL_BYTES" default:"8MiB" help:"byte budget of one pull page (one bundle always fits)"`
	V1LockWait        period   `group:"v1 protocol" name:"v1-lock-wait" env:"PULSESYNC_V1_LOCK_WAIT" default:"10s" help:"how long a mutating v1 call waits for its user's lock (503 beyond)"`

	NodeID          string `group:"Operations" name:"node-id" env:"PULSESYNC_NODE_ID" help:"this node's name in logs and metrics; empty = hostname-pid"`
	LogLevel        string `group:"Operations" name:"log-level" env:"PULSESYNC_LOG_LEVEL" default:"info" enum:"debug,info,warn,error" help:"debug, info, warn or error"`
	ShutdownTimeout period `group:"Operations" name:"shutdown-timeout" env:"PULSESYNC_SHUTDOWN_TIMEOUT" default:"20s" help:"how long a graceful shutdown waits for in-flight requests"`
	MetricsAddr     string `group:"Operations" name:"metrics-addr" env:"PULSESYNC_METRICS_ADDR" placeholder:"ADDR" help:"also serve GET /metrics on this address, e.g. a private one; empty = only on --addr"`
	DebugAddr       string `group:"Operations" name:"debug-addr" env:"PULSESYNC_DEBUG_ADDR" placeholder:"ADDR" help:"listen address for Go's /debug/pprof profiles; empty = off (never expose it publicly)"`
}

// settings is serverFlags with its lists parsed and its cross-field rules checked.
type settings struct {
	serverFlags
	v1Tables    []pgv1.TableSpec
	corsOrigins []string
	limitExempt []netip.Prefix
}

// parse checks what the flag types cannot and reports the first bad setting by its flag and
// variable.
func (f serverFlags) parse() (settings, error) {
	s := settings{serverFlags: f}
	var err error
	if f.MaxBody <= 0 {
		return s, fmt.Errorf("--max-body / PULSESYNC_MAX_BODY: %d is not a positive size", f.MaxBody)
	}
	if f.DBMaxConns < 1 {
		return s, fmt.Errorf("--db-max-conns / PULSESYNC_DB_MAX_CONNS: %d is not a positive count", f.DBMaxConns)
	}
	for _, c := range []struct {
		n       count
		setting string
	}{{f.SchemaVersion, "--schema-version / PULSESYNC_SCHEMA_VERSION"}, {f.V1SchemaVersion, "--v1-schema-version / PULSESYNC_V1_SCHEMA_VERSION"},
		{f.WatermarkCache, "--watermark-cache-entries / PULSESYNC_WATERMARK_CACHE_ENTRIES"},
		{f.V1RetainBundles, "--v1-retain-bundles / PULSESYNC_V1_RETAIN_BUNDLES"}} {
		if c.n < 1 {
			return s, fmt.Errorf("%s: %d is not a positive count", c.setting, c.n)
		}
	}
	if !(f.ConnectRate > 0 || f.ConnectRate == -1) {
		return s, fmt.Errorf("--connect-rate / PULSESYNC_CONNECT_RATE: %v is not a positive rate or -1", f.ConnectRate)
	}
	if (f.NATSTLSCert == "") != (f.NATSTLSKey == "") {
		return s, fmt.Errorf("--nats-tls-cert / PULSESYNC_NATS_TLS_CERT and --nats-tls-key / PULSESYNC_NATS_TLS_KEY: give both or neither")
	}
	if s.v1Tables, err = v1TableSpecs(f.V1Tables); err != nil {
		return s, err
	}
	s.corsOrigins = splitList(f.CORSOrigins)
	for _, cidr := range splitList(f.LimitExempt) {
		p, err := netip.ParsePrefix(cidr)
		if err != nil {
			return s, fmt.Errorf("--limit-exempt / PULSESYNC_LIMIT_EXEMPT: %q is not a CIDR", cidr)
		}
		s.limitExempt = append(s.limitExempt, p.Masked())
	}
	if s.NodeID == "" {
		host, _ := os.Hostname()
		s.NodeID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	return s, nil
}

// v1TableSpecs parses PULSESYNC_V1_TABLES: schema.table, optionally :key_column.
func v1TableSpecs(list string) ([]pgv1.TableSpec, error) {
	var specs []pgv1.TableSpec
	for _, part := range splitList(list) {
		name, key, _ := strings.Cut(part, ":")
		schema, table, ok := strings.Cut(name, ".")
		if !ok || schema == "" || table == "" || strings.Contains(table, ".") {
			return nil, fmt.Errorf("--v1-tables / PULSESYNC_V1_TABLES: %q is not schema.table[:key_column]", part)
		}
		specs = append(specs, pgv1.TableSpec{Schema: schema, Table: table, KeyColumn: key})
	}
	return specs, nil
}

// splitList splits a comma-separated setting, dropping blanks around and between items.
func splitList(list string) []string {
	var items []string
	for _, part := range strings.Split(list, ",") {
		if part = strings.TrimSpace(part); part != "" {
			items = append(items, part)
		}
	}
	return items
}

// byteSize is a non-negative byte count, written plainly or with a KiB, MiB or GiB suffix.
// A size that does not fit in 64 bits is refused rather than wrapped.
type byteSize int64

// Decode reads a size for kong.
func (b *byteSize) Decode(ctx *kong.DecodeContext) error {
	return decodeWith(ctx, "size", func(s string) error {
		n, err := parseSize(s)
		*b = byteSize(n)
		return err
	})
}

// sizeUnits are the suffixes parseSize understands, longest match first.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}

// parseSize reads a byte count, optionally with a KiB, MiB or GiB suffix.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	switch {
	case err != nil && strings.Contains(err.Error(), "out of range"):
		return 0, fmt.Errorf("%q does not fit in 64 bits", s)
	case err != nil:
		return 0, fmt.Errorf("%q is not a size (bytes, or with KiB, MiB or GiB)", s)
	case n < 0:
		return 0, fmt.Errorf("%q is negative", s)
	case n > (1<<63-1)/mult:
		return 0, fmt.Errorf("%q with its unit does not fit in 64 bits", s)
	}
	return n * mult, nil
}

// count is a non-negative number of things that fits in an int.
type count int

// Decode reads a count for kong.
func (c *count) Decode(ctx *kong.DecodeContext) error {
	return decodeWith(ctx, "count", func(s string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, strconv.IntSize)
		if err != nil || n < 0 {
			return fmt.Errorf("%q is not a count (a whole number from 0 up that fits in %d bits)", s, strconv.IntSize)
		}
		*c = count(n)
		return nil
	})
}

// limit is a positive count or -1 for "no limit".
type limit int

// Decode reads a limit for kong.
func (l *limit) Decode(ctx *kong.DecodeContext) error {
	return decodeWith(ctx, "limit", func(s string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, strconv.IntSize)
		if err != nil || n == 0 || n < -1 {
			return fmt.Errorf("%q is not a positive count or -1", s)
		}
		*l = limit(n)
		return nil
	})
}

// period is a non-negative duration such as 250ms, 10s or 2h.
type period time.Duration

// Decode reads a period for kong.
func (p *period) Decode(ctx *kong.DecodeContext) error {
	return decodeWith(ctx, "duration", func(s string) error {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || d < 0 {
			return fmt.Errorf("%q is not a duration (e.g. 250ms, 10s, 2h)", s)
		}
		*p = period(d)
		return nil
	})
}

// decodeWith takes the next value kong scanned, from a flag, a variable or the config file, as
// text and hands it to parse.
func decodeWith(ctx *kong.DecodeContext, what string, parse func(string) error) error {
	token, err := ctx.Scan.PopValue(what)
	if err != nil {
		return err
	}
	return parse(fmt.Sprint(token.Value))
}
