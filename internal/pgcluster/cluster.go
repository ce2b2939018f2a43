package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// ErrStopped is returned by methods called after Stop.
var ErrStopped = errors.New("cluster stopped")

const (
	// superuser is the role initdb creates; every URL connects as it, without a password.
	superuser = "postgres"
	// defaultStartTimeout bounds Start when its context has no deadline.
	defaultStartTimeout = 30 * time.Second
	// portAttempts is how often Start picks a new free port when another process takes the one
	// it picked before the server could bind it.
	portAttempts = 3
	// unixSocketPathMax is the longest unix socket path the kernel accepts (sun_path minus NUL).
	unixSocketPathMax = 107
)

// Cluster is a running throwaway PostgreSQL cluster. Its methods are safe for concurrent use.
type Cluster struct {
	port     int    // fixed once Start returns
	dir      string // the cluster's private directory: data/, server.log and the unix socket
	binDir   string
	settings map[string]string // server settings other than the managed ones
	cred     *syscall.Credential
	logger   *slog.Logger

	mu      sync.Mutex
	srv     *server // nil while the server is stopped
	removed bool    // Stop has run
}

// Start creates a new cluster with initdb, starts its server and returns once the server accepts
// connections. ctx bounds the whole start (30 s when it has no deadline); on any failure every
// file created so far is removed and the error carries the end of the server's log.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultStartTimeout)
		defer cancel()
	}
	began := time.Now()
	binDir, err := findBinDir(ctx, cfg.BinDir)
	if err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	dir, err := makeClusterDir(cfg.Dir, cred)
	if err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	c := &Cluster{
		port:     cfg.Port,
		dir:      dir,
		binDir:   binDir,
		settings: cfg.serverSettings(),
		cred:     cred,
		logger:   cfg.Logger,
	}
	if err := c.start(ctx, cfg); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	c.logger.Info("postgres cluster started", "port", c.port, "dir", dir, "bin_dir", binDir,
		"dur_ms", time.Since(began).Milliseconds())
	return c, nil
}

// start runs initdb and the first server, picking a new port when a picked one was taken.
func (c *Cluster) start(ctx context.Context, cfg Config) error {
	if err := c.initdb(ctx, cfg.Durable); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		if cfg.Port == 0 {
			port, err := freePort()
			if err != nil {
				return err
			}
			c.port = port
		}
		srv, err := c.launch(ctx)
		if err == nil {
			c.srv = srv
			return nil
		}
		// Between closing the probe listener in freePort and the server binding the port,
		// another process (often a parallel test binary) may have taken it.
		if cfg.Port != 0 || attempt == portAttempts || !errors.Is(err, errExitedEarly) || portFree(c.port) {
			return err
		}
		c.logger.Debug("postgres port taken before the server bound it; picking another", "port", c.port)
	}
}

// initdb creates the data directory.
func (c *Cluster) initdb(ctx context.Context, durable bool) error {
	args := []string{"-D", c.dataDir(), "-U", superuser, "--auth=trust", "-E", "UTF8", "--no-locale"}
	if !durable {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, "initdb"), args...)
	cmd.Dir = c.dir
	cmd.SysProcAttr = sysProcAttr(c.cred)
	out, err := cmd.CombinedOutput()
	c.logger.Debug("initdb finished", "output", string(out))
	if err != nil {
		return fmt.Errorf("initdb: %w; output:\n%s", err, lastLines(out, logTailLines))
	}
	return nil
}

// URL returns a connection URL for database as the superuser, who needs no password.
func (c *Cluster) URL(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(superuser),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port returns the TCP port the server listens on, on 127.0.0.1. It stays the same across
// StopServer, StartServer and Restart.
func (c *Cluster) Port() int { return c.port }

// StopServer shuts the server down (fast shutdown: open transactions roll back, clients are
// disconnected) and keeps the data and port, so a test can watch the database disappear.
// It waits up to 10 s, then kills the server. Stopping a stopped server does nothing.
func (c *Cluster) StopServer() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed {
		return ErrStopped
	}
	return c.stopServer()
}

// StartServer starts the server again on the same port and data after StopServer, and returns
// once it accepts connections or ctx ends. Starting a running server does nothing.
func (c *Cluster) StartServer(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed {
		return ErrStopped
	}
	return c.startServer(ctx)
}

// Restart is StopServer followed by StartServer: every connection is lost, committed data stays.
func (c *Cluster) Restart(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed {
		return ErrStopped
	}
	if err := c.stopServer(); err != nil {
		return err
	}
	return c.startServer(ctx)
}

// Stop shuts the server down like StopServer and removes every file the cluster created.
// Calling it again does nothing and returns nil.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed {
		return nil
	}
	c.removed = true
	err := c.stopServer()
	if rmErr := os.RemoveAll(c.dir); rmErr != nil {
		err = errors.Join(err, fmt.Errorf("remove cluster dir: %w", rmErr))
	}
	c.logger.Info("postgres cluster stopped", "port", c.port, "dir", c.dir)
	return err
}

func (c *Cluster) stopServer() error {
	if c.srv == nil {
		return nil
	}
	err := c.srv.stop(c.logger)
	c.srv = nil
	return err
}

func (c *Cluster) startServer(ctx context.Context) error {
	if c.srv != nil {
		return nil
	}
	srv, err := c.launch(ctx)
	if err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	c.srv = srv
	return nil
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }
func (c *Cluster) logPath() string { return filepath.Join(c.dir, "server.log") }

// socketDir is where the server puts its unix socket, for psql -h; "" (TCP only) when the
// cluster's directory is too deep for a socket path.
func (c *Cluster) socketDir() string {
	if len(c.dir)+len("/.s.PGSQL.65535") > unixSocketPathMax {
		return ""
	}
	return c.dir
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// portFree reports whether port on 127.0.0.1 can be bound right now.
func portFree(port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}
