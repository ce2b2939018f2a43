package main

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pulsesync/pulsesync/pgv1"
)

// knob is one setting of the server: a flag with an environment-variable twin. The variable
// sets the default; the flag, when given, wins.
type knob struct {
	flag, env, def, usage string
	target                *string
}

// config is the server's configuration as read from the environment and flags.
type config struct {
	databaseURL     string
	jwtSecret       string
	jwksURL         string
	addr            string
	tables          string
	maxBody         string
	maxPayload      string
	maxChanges      string
	allowNoExp      string
	dbMaxConns      string
	natsURL         string
	nodeID          string
	logLevel        string
	shutdownTimeout string
	debugAddr       string
	v1Tables        string
	v1RetainBundles string
	v1Watch         string
	v1AppName       string
	corsOrigins     string
	connsPerIP      string
	connectRate     string
	limitExempt     string
}

// knobs lists every setting of serve and dev. --help prints them in this order.
func (c *config) knobs() []knob {
	return []knob{
		{"database-url", "DATABASE_URL", "", "PostgreSQL connection URL (serve: required; dev: default is a throwaway cluster)", &c.databaseURL},
		{"jwt-secret", "JWT_SECRET", "", "HMAC secret for HS256/384/512 tokens", &c.jwtSecret},
		{"jwt-jwks-url", "JWT_JWKS_URL", "", "JWKS URL for RS256/ES256 tokens (keys cached, refreshed every 5 min and on an unknown kid)", &c.jwksURL},
		{"addr", "PULSESYNC_ADDR", ":8080", "listen address", &c.addr},
		{"tables", "PULSESYNC_TABLES", "", "registered tables, comma-separated schema.table; each needs a uuid primary key", &c.tables},
		{"max-body", "PULSESYNC_MAX_BODY", "32MiB", "largest request body (bytes, or with KiB/MiB/GiB); Sep-2025 KMP clients upload their whole queue at once", &c.maxBody},
		{"max-payload", "PULSESYNC_MAX_PAYLOAD", "0", "largest payload of one change in bytes; 0 = only the body limit", &c.maxPayload},
		{"max-changes", "PULSESYNC_MAX_CHANGES", "0", "most changes in one upload, answered batch_too_large beyond; 0 = no limit (recommended, docs/protocol-v0.md §9.3)", &c.maxChanges},
		{"allow-no-exp", "PULSESYNC_ALLOW_NO_EXP", "false", "accept tokens without an exp claim (they never expire)", &c.allowNoExp},
		{"db-max-conns", "PULSESYNC_DB_MAX_CONNS", "32", "database pool size, unless the URL sets pool_max_conns", &c.dbMaxConns},
		{"nats-url", "NATS_URL", "", "NATS server URL for push fan-out between nodes; empty = Postgres LISTEN/NOTIFY", &c.natsURL},
		{"node-id", "PULSESYNC_NODE_ID", "", "this node's name in logs and metrics; empty = hostname-pid", &c.nodeID},
		{"log-level", "PULSESYNC_LOG_LEVEL", "info", "debug, info, warn or error", &c.logLevel},
		{"shutdown-timeout", "PULSESYNC_SHUTDOWN_TIMEOUT", "20s", "how long a graceful shutdown waits for in-flight requests", &c.shutdownTimeout},
		{"debug-addr", "PULSESYNC_DEBUG_ADDR", "", "listen address for Go's /debug/pprof profiles; empty = off (never expose it publicly)", &c.debugAddr},
		{"v1-tables", "PULSESYNC_V1_TABLES", "", "tables of the v1 bundle protocol, comma-separated schema.table[:key_column]; each needs a _sync_scope_id owner column (docs/operations.md)", &c.v1Tables},
		{"v1-retain-bundles", "PULSESYNC_V1_RETAIN_BUNDLES", "10000", "v1 bundles kept pullable per user; older history is discarded and clients behind it rebuild from a snapshot", &c.v1RetainBundles},
		{"v1-watch", "PULSESYNC_V1_WATCH", "true", "serve GET /sync/watch to v1 clients (false: they poll)", &c.v1Watch},
		{"v1-app-name", "PULSESYNC_V1_APP_NAME", "", "app_name reported to v1 clients by /sync/capabilities", &c.v1AppName},
		{"cors-origins", "PULSESYNC_CORS_ORIGINS", "", "browser origins allowed on the v1 routes, comma-separated; * = any; empty = no CORS", &c.corsOrigins},
		{"conns-per-ip", "PULSESYNC_CONNS_PER_IP", "256", "most open connections of one client address (IPv6: /64); -1 = no limit (SECURITY.md)", &c.connsPerIP},
		{"connect-rate", "PULSESYNC_CONNECT_RATE", "50", "new connections per second one client address may open after a burst of 100; -1 = no limit", &c.connectRate},
		{"limit-exempt", "PULSESYNC_LIMIT_EXEMPT", "", "client addresses the two limits above skip, comma-separated CIDRs (e.g. your load balancer's)", &c.limitExempt},
	}
}

// register adds the knobs to fs, with defaults taken from the environment.
func (c *config) register(fs *flag.FlagSet) {
	for _, k := range c.knobs() {
		def := k.def
		if v, ok := os.LookupEnv(k.env); ok {
			def = v
		}
		fs.StringVar(k.target, k.flag, def, fmt.Sprintf("%s (env %s)", k.usage, k.env))
	}
}

// settings is config checked and converted.
type settings struct {
	config
	maxBody         int64
	maxPayload      int
	maxChanges      int
	allowNoExp      bool
	dbMaxConns      int32
	shutdownTimeout time.Duration
	v1Tables        []pgv1.TableSpec
	v1RetainBundles int64
	v1Watch         bool
	corsOrigins     []string
	connsPerIP      int
	connectRate     float64
	limitExempt     []netip.Prefix
}

// parse checks every knob and reports the first bad one by its flag and variable.
func (c config) parse() (settings, error) {
	s := settings{config: c}
	var err error
	if s.maxBody, err = parseSize(c.maxBody); err != nil || s.maxBody <= 0 {
		return s, fmt.Errorf("--max-body / PULSESYNC_MAX_BODY: %q is not a positive size", c.maxBody)
	}
	if s.maxPayload, err = strconv.Atoi(c.maxPayload); err != nil || s.maxPayload < 0 {
		return s, fmt.Errorf("--max-payload / PULSESYNC_MAX_PAYLOAD: %q is not a byte count", c.maxPayload)
	}
	if s.maxChanges, err = strconv.Atoi(c.maxChanges); err != nil || s.maxChanges < 0 {
		return s, fmt.Errorf("--max-changes / PULSESYNC_MAX_CHANGES: %q is not a count", c.maxChanges)
	}
	if s.allowNoExp, err = strconv.ParseBool(c.allowNoExp); err != nil {
		return s, fmt.Errorf("--allow-no-exp / PULSESYNC_ALLOW_NO_EXP: %q is not true or false", c.allowNoExp)
	}
	conns, err := strconv.ParseInt(c.dbMaxConns, 10, 32)
	if err != nil || conns < 1 {
		return s, fmt.Errorf("--db-max-conns / PULSESYNC_DB_MAX_CONNS: %q is not a positive count", c.dbMaxConns)
	}
	s.dbMaxConns = int32(conns)
	if s.shutdownTimeout, err = time.ParseDuration(c.shutdownTimeout); err != nil || s.shutdownTimeout <= 0 {
		return s, fmt.Errorf("--shutdown-timeout / PULSESYNC_SHUTDOWN_TIMEOUT: %q is not a duration", c.shutdownTimeout)
	}
	if s.v1Tables, err = v1TableSpecs(c.v1Tables); err != nil {
		return s, err
	}
	if s.v1RetainBundles, err = strconv.ParseInt(c.v1RetainBundles, 10, 64); err != nil || s.v1RetainBundles < 1 {
		return s, fmt.Errorf("--v1-retain-bundles / PULSESYNC_V1_RETAIN_BUNDLES: %q is not a positive count", c.v1RetainBundles)
	}
	if s.v1Watch, err = strconv.ParseBool(c.v1Watch); err != nil {
		return s, fmt.Errorf("--v1-watch / PULSESYNC_V1_WATCH: %q is not true or false", c.v1Watch)
	}
	s.corsOrigins = splitList(c.corsOrigins)
	if s.connsPerIP, err = strconv.Atoi(c.connsPerIP); err != nil || s.connsPerIP == 0 || s.connsPerIP < -1 {
		return s, fmt.Errorf("--conns-per-ip / PULSESYNC_CONNS_PER_IP: %q is not a positive count or -1", c.connsPerIP)
	}
	if s.connectRate, err = strconv.ParseFloat(c.connectRate, 64); err != nil || !(s.connectRate > 0 || s.connectRate == -1) {
		return s, fmt.Errorf("--connect-rate / PULSESYNC_CONNECT_RATE: %q is not a positive rate or -1", c.connectRate)
	}
	for _, cidr := range splitList(c.limitExempt) {
		p, err := netip.ParsePrefix(cidr)
		if err != nil {
			return s, fmt.Errorf("--limit-exempt / PULSESYNC_LIMIT_EXEMPT: %q is not a CIDR", cidr)
		}
		s.limitExempt = append(s.limitExempt, p.Masked())
	}
	if _, err := parseLevel(c.logLevel); err != nil {
		return s, err
	}
	if s.nodeID == "" {
		host, _ := os.Hostname()
		s.nodeID = fmt.Sprintf("%s-%d", host, os.Getpid())
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

// parseSize reads a byte count, optionally with a KiB, MiB or GiB suffix.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(s, suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, suffix)), m
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, err
	}
	return n * mult, nil
}
