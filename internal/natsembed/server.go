package natsembed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// readyTimeout bounds how long Start and Restart wait for the server to accept clients.
const readyTimeout = 10 * time.Second

// Config configures a Server. The zero value means the documented defaults.
type Config struct {
	Host   string       // interface to listen on; "" = 127.0.0.1, this machine only
	Port   int          // 0 = a free port, chosen by Start and kept by Restart
	Logger *slog.Logger // receives the server's notices, warnings and errors; nil = silent
}

func (c Config) withDefaults() Config {
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	return c
}

// Server is an in-process NATS server. Its methods are safe for concurrent use.
type Server struct {
	cfg Config

	mu   sync.Mutex
	srv  *server.Server // nil while stopped
	port int            // fixed by the first start
}

// Start starts a server and waits until it accepts clients.
func Start(cfg Config) (*Server, error) {
	s := &Server{cfg: cfg.withDefaults()}
	s.port = s.cfg.Port
	if s.port == 0 {
		s.port = server.RANDOM_PORT
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.startLocked(); err != nil {
		return nil, err
	}
	return s, nil
}

// URL is the address clients connect to, nats://host:port. It stays the same across Restart.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "nats://" + net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.port))
}

// Stop shuts the server down and waits until it has: clients see their connection drop. The
// port stays reserved for Restart in name only; nothing listens on it until then. Stopping a
// stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.srv = nil
}

// Restart starts the server again on the port it had, stopping it first if it runs. Clients
// that kept retrying reconnect to it; subscriptions live in the clients, so they come back
// with them.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
	return s.startLocked()
}

// startLocked starts a server on s.port and records the port it got.
func (s *Server) startLocked() error {
	opts := &server.Options{
		Host:   s.cfg.Host,
		Port:   s.port,
		NoSigs: true, // signals belong to the process that embeds the server
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("configure NATS server: %w", err)
	}
	log := &serverLog{log: s.cfg.Logger, fatal: make(chan string, 1)}
	if log.log == nil {
		log.log = slog.New(slog.DiscardHandler)
	}
	srv.SetLoggerV2(log, log.log.Enabled(context.Background(), slog.LevelDebug), false, false)
	srv.Start()
	if err := waitReady(srv, log.fatal); err != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("start NATS server on %s: %w", net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.port)), err)
	}
	addr, ok := srv.Addr().(*net.TCPAddr)
	if !ok {
		srv.Shutdown()
		srv.WaitForShutdown()
		return errors.New("start NATS server: no TCP listener")
	}
	s.port = addr.Port
	s.srv = srv
	return nil
}

// waitReady waits until srv accepts clients. A server that cannot listen reports it through
// its logger's Fatalf and never becomes ready, so that report ends the wait early.
func waitReady(srv *server.Server, fatal <-chan string) error {
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		if srv.ReadyForConnections(20 * time.Millisecond) {
			return nil
		}
		select {
		case msg := <-fatal:
			return errors.New(msg)
		default:
		}
	}
	return fmt.Errorf("not ready within %s", readyTimeout)
}

// serverLog hands the server's log lines to slog and keeps its first fatal error for
// waitReady. Tracing stays off: it would log every protocol line, credentials included.
type serverLog struct {
	log   *slog.Logger
	fatal chan string // capacity 1: the first fatal error
}

func (l *serverLog) Noticef(format string, v ...any) { l.log.Info(fmt.Sprintf(format, v...)) }
func (l *serverLog) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *serverLog) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *serverLog) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLog) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }

// Fatalf logs an error the server cannot go on after; unlike the server's own logger it does
// not exit the process.
func (l *serverLog) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error(msg)
	select {
	case l.fatal <- msg:
	default:
	}
}
