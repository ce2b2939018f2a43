package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/pulsesync/pulsesync/httpapi"
	"github.com/pulsesync/pulsesync/httpapi/auth"
	"github.com/pulsesync/pulsesync/internal/node"
	"github.com/pulsesync/pulsesync/pg"
	"github.com/pulsesync/pulsesync/pgv1"
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
// accepting, let in-flight requests finish (up to the shutdown timeout), close the pool.
func runNode(ctx context.Context, s settings, extras nodeExtras, log *slog.Logger) error {
	if s.databaseURL == "" {
		return errors.New("no database: set DATABASE_URL or --database-url")
	}
	names, err := tableNames(s.tables)
	if err != nil {
		return err
	}
	pool, err := pg.Connect(ctx, pg.PoolConfig{URL: s.databaseURL, MaxConns: s.dbMaxConns})
	if err != nil {
		return err
	}
	defer pool.Close()
	applied, err := migrateAll(ctx, pool)
	if err != nil {
		return err
	}
	if len(applied) > 0 {
		log.Info("migrated the sync schemas", "applied", strings.Join(applied, ","))
	}
	if extras.setupSQL != "" {
		if _, err := pool.Exec(ctx, extras.setupSQL); err != nil {
			return fmt.Errorf("create demo schema: %w", err)
		}
	}
	n, err := node.New(ctx, node.Config{
		Pool:         pool,
		Tables:       names,
		V1Tables:     s.v1Tables,
		V1Store:      pgv1.Config{RetainBundles: s.v1RetainBundles},
		V1:           httpapi.V1Config{AppName: s.v1AppName, Watch: s.v1Watch, AllowedOrigins: s.corsOrigins, TestRoutes: extras.v1TestRoutes},
		Store:        pg.StoreConfig{MaxPayloadBytes: s.maxPayload, MaxChanges: s.maxChanges},
		Auth:         auth.Config{Secret: []byte(s.jwtSecret), JWKSURL: s.jwksURL, AllowNoExp: s.allowNoExp},
		MaxBodyBytes: s.maxBody, DevSignIn: extras.devSignIn,
		HTTP:    node.HTTPConfig{MaxConnsPerIP: s.connsPerIP, ConnectRate: s.connectRate, Exempt: s.limitExempt},
		NATSURL: s.natsURL, NodeID: s.nodeID, Logger: log,
	})
	if err != nil {
		return err
	}
	defer n.Close()
	if s.debugAddr != "" {
		stopDebug, err := serveDebug(s.debugAddr, log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}
	ln, err := n.Listen(s.addr)
	if err != nil {
		return err
	}
	srv := n.HTTPServer()
	fanout := "postgres LISTEN/NOTIFY"
	if s.natsURL != "" {
		fanout = "NATS"
	}
	log.Info("pulsesync serving", "addr", ln.Addr().String(), "node", s.nodeID, "tables", len(names), "fanout", fanout)
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
	log.Info("shutting down", "timeout", s.shutdownTimeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	return nil
}

// tableNames parses PULSESYNC_TABLES.
func tableNames(list string) ([]pg.TableName, error) {
	var names []pg.TableName
	for _, part := range strings.Split(list, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		n, err := pg.ParseTableName(part)
		if err != nil {
			return nil, fmt.Errorf("--tables / PULSESYNC_TABLES: %w", err)
		}
		names = append(names, n)
	}
	if len(names) == 0 {
		return nil, errors.New("no registered tables: set PULSESYNC_TABLES or --tables, e.g. business.users,business.posts")
	}
	return names, nil
}
