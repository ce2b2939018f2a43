package main

import (
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/pulsesync/pulsesync/httpapi"
	"github.com/pulsesync/pulsesync/httpapi/auth"
	"github.com/pulsesync/pulsesync/internal/demo"
	"github.com/pulsesync/pulsesync/internal/natsembed"
	"github.com/pulsesync/pulsesync/internal/pgcluster"
)

// devTokenTTL is the lifetime of the tokens dev prints: a working day of poking at the server.
const devTokenTTL = 24 * time.Hour

// devCmd runs a node for development: without --database-url on a throwaway PostgreSQL
// started from the machine's own binaries (removed on exit), without --nats-url with an
// in-process NATS server, with the demo schemas registered, the KMP test suite's JWT secret,
// /dummy-signin, and ready-to-paste tokens and curl lines. It listens on 127.0.0.1 unless told
// otherwise: /dummy-signin gives anyone a token.
type devCmd struct {
	serverFlags `embed:""`
}

// Run starts the development node and serves until the process is told to stop.
func (cmd *devCmd) Run(e *runEnv) error {
	ctx, stdout := e.ctx, e.stdout
	s, err := cmd.parse()
	if err != nil {
		return usageError{err.Error()}
	}
	if s.Addr == "" {
		s.Addr = "127.0.0.1:8080"
	}
	log := newLogger(e.stderr, s.LogLevel, true)
	extras := nodeExtras{}
	if s.Tables == "" {
		s.Tables = strings.Join(demo.Tables(), ",")
		extras.setupSQL = demo.SchemaSQL
	}
	if len(s.v1Tables) == 0 {
		s.v1Tables = demo.V1Tables()
		extras.setupSQL += demo.V1SchemaSQL
	}
	extras.v1TestRoutes = true
	if s.JWTSecret == "" && s.JWKSURL == "" {
		s.JWTSecret = demo.Secret
	}
	if s.JWTSecret != "" {
		extras.devSignIn = &httpapi.DevSignIn{Secret: []byte(s.JWTSecret)}
	}
	if s.DatabaseURL == "" {
		log.Info("starting a throwaway PostgreSQL from the local binaries")
		cluster, err := pgcluster.Start(ctx, pgcluster.Config{Logger: log})
		if err != nil {
			return fmt.Errorf("start throwaway PostgreSQL: %w", err)
		}
		defer func() {
			if err := cluster.Stop(); err != nil {
				log.Warn("stop throwaway PostgreSQL", "err", err)
			}
		}()
		s.DatabaseURL = cluster.URL("postgres")
	}
	if s.NATSURL == "" {
		nats, err := natsembed.Start(natsembed.Config{Logger: log})
		if err != nil {
			return fmt.Errorf("start in-process NATS: %w", err)
		}
		defer nats.Stop()
		s.NATSURL = nats.URL()
		log.Info("in-process NATS serving", "url", s.NATSURL)
	}
	extras.onListen = func(addr net.Addr) {
		if err := printBanner(stdout, addr, s.JWTSecret); err != nil {
			log.Warn("print dev banner", "err", err)
		}
	}
	return runNode(ctx, s, extras, log)
}

// printBanner prints dev tokens for two devices of one user and curl lines that use them.
func printBanner(w io.Writer, addr net.Addr, secret string) error {
	base := "http://" + addr.String()
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		base = fmt.Sprintf("http://localhost:%d", tcp.Port)
	}
	if secret == "" {
		_, err := fmt.Fprintf(w, "\npulsesync dev is serving on %s (tokens come from your JWKS issuer)\n\n", base)
		return err
	}
	phone, err := auth.Mint([]byte(secret), "alice", "phone", devTokenTTL)
	if err != nil {
		return err
	}
	laptop, err := auth.Mint([]byte(secret), "alice", "laptop", devTokenTTL)
	if err != nil {
		return err
	}
	const pk = "6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"
	_, err = fmt.Fprintf(w, `
pulsesync dev is serving on %[1]s
Demo tables: business.users(id, name, email), business.posts(id, title, content, author_id).
Tokens for user "alice" (valid %[4]s): device "phone" and device "laptop".

export PHONE_TOKEN=%[2]s
export LAPTOP_TOKEN=%[3]s

# the phone uploads a row
curl -s -X POST %[1]s/sync/upload -H "Authorization: Bearer $PHONE_TOKEN" -H 'Content-Type: application/json' \
  -d '{"last_server_seq_seen":0,"changes":[{"source_change_id":1,"schema":"business","table":"users","op":"INSERT","pk":"%[5]s","server_version":0,"payload":{"id":"%[5]s","name":"Ann","email":"ann@example.com"}}]}'

# the laptop downloads it
curl -s "%[1]s/sync/download?after=0&limit=100&schema=business" -H "Authorization: Bearer $LAPTOP_TOKEN"

# the laptop listens for pushes (Server-Sent Events; a WebSocket is at %[6]s/sync/ws?after=0)
curl -sN "%[1]s/sync/events?after=0" -H "Authorization: Bearer $LAPTOP_TOKEN"
websocat -H "Authorization: Bearer $LAPTOP_TOKEN" "%[6]s/sync/ws?after=0"

# a token for any user and device
curl -s -X POST %[1]s/dummy-signin -d '{"user":"bob","password":"x","device":"tablet"}'

v1 bundle protocol (SQLiteNow 0.7+; docs/protocol-v1.md): base URL %[1]s/, schema "app"
(app.users(id uuid, name, email, visits int4, active bool), app.posts(id uuid, author_id, title,
body, score numeric)). The same tokens work (only sub is read); every request names its source
in the Oversync-Source-ID header (any visible ASCII, e.g. a UUID the app keeps).

curl -s %[1]s/sync/capabilities -H "Authorization: Bearer $PHONE_TOKEN" -H 'Oversync-Source-ID: phone-1'
curl -s -X POST %[1]s/sync/connect -H "Authorization: Bearer $PHONE_TOKEN" -H 'Oversync-Source-ID: phone-1' \
  -H 'Content-Type: application/json' -d '{"has_local_pending_rows":false}'
curl -s "%[1]s/sync/pull?after_bundle_seq=0&max_bundles=1000" -H "Authorization: Bearer $LAPTOP_TOKEN" -H 'Oversync-Source-ID: laptop-1'
curl -sN "%[1]s/sync/watch?after_bundle_seq=0" -H "Authorization: Bearer $LAPTOP_TOKEN" -H 'Oversync-Source-ID: laptop-1'

`, base, phone, laptop, devTokenTTL, pk, "ws"+strings.TrimPrefix(base, "http"))
	return err
}
