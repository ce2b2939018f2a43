package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pulsesync/pulsesync/cluster"
	"github.com/pulsesync/pulsesync/httpapi"
	"github.com/pulsesync/pulsesync/httpapi/auth"
	"github.com/pulsesync/pulsesync/internal/node"
	"github.com/pulsesync/pulsesync/pg"
	"github.com/pulsesync/pulsesync/pgv1"
	"github.com/pulsesync/pulsesync/push"
)

// nodeExtras are what dev adds to a plain serve.
type nodeExtras struct {
	setupSQL  string              // run after migrations, before table discovery
	devSignIn *httpapi.DevSignIn  // mount /dummy-signin
	onListen  func(addr net.Addr) // called once the listener is open
	// v1TestRoutes mounts the v1 conformance suites' unauthenticated test routes.
	v1TestRoutes bool
}

// runNode runs one pulsesync node until ctx is cancelled, then shuts it down gracefully: stop
// accepting, let in-flight requests finish (up to the shutdown timeout), close the pool. Each
// start-up failure names the setting to fix.
func runNode(ctx context.Context, s settings, extras nodeExtras, log *slog.Logger) error {
	if s.DatabaseURL == "" {
		return usageError{"--database-url / PULSESYNC_DATABASE_URL: no database given"}
	}
	if s.JWTSecret == "" && s.JWKSURL == "" {
		return usageError{"--jwt-secret / PULSESYNC_JWT_SECRET or --jwt-jwks-url / PULSESYNC_JWT_JWKS_URL: no token key given, so no token could be verified"}
	}
	names, err := tableNames(s.Tables)
	if err != nil {
		return err
	}
	if len(names)+len(s.v1Tables) == 0 {
		return usageError{"--tables / PULSESYNC_TABLES or --v1-tables / PULSESYNC_V1_TABLES: no table registered, e.g. business.users,business.posts"}
	}
	pool, err := connect(ctx, s.DatabaseURL, s.DBMaxConns)
	if err != nil {
		return err
	}
	defer pool.Close()
	applied, err := migrateAll(ctx, pool)
	if err != nil {
		return fmt.Errorf("migrate the sync schemas: %w", err)
	}
	if len(applied) > 0 {
		log.Info("migrated the sync schemas", "applied", strings.Join(applied, ","))
	}
	if extras.setupSQL != "" {
		if _, err := pool.Exec(ctx, extras.setupSQL); err != nil {
			return fmt.Errorf("create demo schema: %w", err)
		}
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	n, err := node.New(ctx, s.nodeConfig(pool, names, extras, log, registry))
	if err != nil {
		return nameSetting(err)
	}
	defer n.Close()
	if s.DebugAddr != "" {
		stopDebug, err := serveDebug(s.DebugAddr, log)
		if err != nil {
			return fmt.Errorf("--debug-addr / PULSESYNC_DEBUG_ADDR: %w", err)
		}
		defer stopDebug()
	}
	if s.MetricsAddr != "" {
		stopMetrics, err := serveMetrics(s.MetricsAddr, registry, log)
		if err != nil {
			return fmt.Errorf("--metrics-addr / PULSESYNC_METRICS_ADDR: %w", err)
		}
		defer stopMetrics()
	}
	ln, err := n.Listen(s.Addr)
	if err != nil {
		return fmt.Errorf("--addr / PULSESYNC_ADDR: %w", err)
	}
	srv := n.HTTPServer()
	fanout := "postgres LISTEN/NOTIFY"
	if s.NATSURL != "" {
		fanout = "NATS"
	}
	log.Info("pulsesync serving", "addr", ln.Addr().String(), "node", s.NodeID, "tables", len(names), "fanout", fanout)
	if extras.onListen != nil {
		extras.onListen(ln.Addr())
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", time.Duration(s.ShutdownTimeout).String())
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(s.ShutdownTimeout))
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	return nil
}

// tableNames parses PULSESYNC_TABLES.
func tableNames(list string) ([]pg.TableName, error) {
	var names []pg.TableName
	for _, part := range splitList(list) {
		n, err := pg.ParseTableName(part)
		if err != nil {
			return nil, usageError{fmt.Sprintf("--tables / PULSESYNC_TABLES: %v", err)}
		}
		names = append(names, n)
	}
	return names, nil
}

// connect opens the pool and reaches the database, naming the setting when it cannot.
func connect(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	pool, err := pg.Connect(ctx, pg.PoolConfig{URL: url, MaxConns: maxConns})
	if err != nil {
		return nil, fmt.Errorf("--database-url / PULSESYNC_DATABASE_URL: %w", err)
	}
	return pool, nil
}

// nameSetting prefixes a node's start-up failure with the setting that governs it.
func nameSetting(err error) error {
	for _, m := range []struct {
		cause   error
		setting string
	}{
		{node.ErrTables, "--tables / PULSESYNC_TABLES"},
		{node.ErrV1Tables, "--v1-tables / PULSESYNC_V1_TABLES"},
		{node.ErrAuth, "--jwt-secret / PULSESYNC_JWT_SECRET, --jwt-jwks-url / PULSESYNC_JWT_JWKS_URL"},
		{node.ErrFanout, "--nats-url / PULSESYNC_NATS_URL, --nats-* / PULSESYNC_NATS_*"},
	} {
		if errors.Is(err, m.cause) {
			return fmt.Errorf("%s: %w", m.setting, err)
		}
	}
	return fmt.Errorf("start node: %w", err)
}

// nodeConfig is the node's configuration from the settings.
func (s settings) nodeConfig(pool *pgxpool.Pool, names []pg.TableName, extras nodeExtras, log *slog.Logger, registry *prometheus.Registry) node.Config {
	return node.Config{
		Pool:     pool,
		Tables:   names,
		V1Tables: s.v1Tables,
		V1Store: pgv1.Config{
			RetainBundles:               int64(s.V1RetainBundles),
			PruneBatch:                  int(s.V1PruneBatch),
			PushSessionTTL:              time.Duration(s.V1PushSessionTTL),
			LeaseTTL:                    time.Duration(s.V1LeaseTTL),
			MaxRowsPerChunk:             int(s.V1RowsPerChunk),
			MaxStagedBytes:              int64(s.V1MaxStaged),
			SnapshotTTL:                 time.Duration(s.V1SnapshotTTL),
			SnapshotMaxLifetime:         time.Duration(s.V1SnapshotMaxLife),
			MaxSnapshotsPerUser:         int(s.V1SnapshotsPerUsr),
			MaxConcurrentSnapshotBuilds: int(s.V1SnapshotBuilds),
			MaxConcurrentSnapshotChunks: int(s.V1SnapshotChunks),
			MaxRowsPerSnapshot:          int64(s.V1SnapshotRows),
			MaxBytesPerSnapshot:         int64(s.V1SnapshotBytes),
			MaxBytesPerSnapshotRow:      int64(s.V1SnapshotRowSize),
			MaxPullBytes:                int64(s.V1MaxPullBytes),
			LockWait:                    time.Duration(s.V1LockWait),
			ReservedSources:             splitList(s.V1ReservedSources),
		},
		V1: httpapi.V1Config{AppName: s.V1AppName, SchemaVersion: int(s.V1SchemaVersion), Watch: s.V1Watch, AllowedOrigins: s.corsOrigins,
			MaxBodyBytes: int64(s.V1MaxBody), MaxChunkBytes: int64(s.V1MaxChunk), TestRoutes: extras.v1TestRoutes},
		Store:                 pg.StoreConfig{MaxPayloadBytes: int(s.MaxPayload), MaxChanges: int(s.MaxChanges)},
		SchemaVersion:         int(s.SchemaVersion),
		WatermarkCacheEntries: int(s.WatermarkCache),
		Auth: auth.Config{Secret: []byte(s.JWTSecret), JWKSURL: s.JWKSURL, JWKSRefresh: time.Duration(s.JWKSRefresh),
			AllowNoExp: s.AllowNoExp},
		MaxBodyBytes: int64(s.MaxBody),
		DevSignIn:    extras.devSignIn,
		HTTP: node.HTTPConfig{
			ReadHeaderTimeout: time.Duration(s.ReadHeaderTimeout),
			MaxHeaderBytes:    int(s.MaxHeaderBytes),
			IdleTimeout:       time.Duration(s.IdleTimeout),
			Deadlines: httpapi.Deadlines{BodyGrace: time.Duration(s.BodyGrace), MinBodyRate: int64(s.MinBodyRate),
				WriteTimeout: time.Duration(s.WriteTimeout)},
			MaxConnsPerIP: int(s.ConnsPerIP),
			ConnectRate:   s.ConnectRate,
			ConnectBurst:  int(s.ConnectBurst),
			Exempt:        s.limitExempt,
		},
		NATSURL: s.NATSURL,
		NATSSecurity: cluster.NATSSecurity{CredsFile: s.NATSCreds, NKeyFile: s.NATSNKey, CAFile: s.NATSTLSCA,
			CertFile: s.NATSTLSCert, KeyFile: s.NATSTLSKey},
		NodeID:         s.NodeID,
		ReconcileEvery: time.Duration(s.ReconcileEvery),
		Push: push.Config{
			Heartbeat:    time.Duration(s.Heartbeat),
			PongTimeout:  time.Duration(s.PongTimeout),
			WriteTimeout: time.Duration(s.PushWriteTO),
			AuthTimeout:  time.Duration(s.AuthTimeout),
			MaxPerUser:   int(s.PushPerUser),
			MaxPerNode:   int(s.PushPerNode),
		},
		Logger:   log,
		Registry: registry,
	}
}
