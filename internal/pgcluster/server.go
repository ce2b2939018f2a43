package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// errExitedEarly means the server process ended before it accepted connections.
var errExitedEarly = errors.New("postgres exited during startup")

const (
	// stopTimeout is how long a fast shutdown may take before the server is killed.
	stopTimeout = 10 * time.Second
	// readyPollInterval spaces connection attempts while the server starts (usually 100-300 ms).
	readyPollInterval = 20 * time.Millisecond
	// probeTimeout bounds one connection attempt, so a hung attempt cannot eat the start budget.
	probeTimeout = 2 * time.Second
	// logTailLines is how much of a log an error quotes.
	logTailLines = 20
	// logTailBytes bounds how much of a long-running server's log is read to find its tail.
	logTailBytes = 16 << 10
)

// server is one run of the postmaster.
type server struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been reaped
}

// launch starts the postmaster and returns once it accepts connections on c.port. The process
// is not tied to ctx: it runs until stop.
func (c *Cluster) launch(ctx context.Context) (*server, error) {
	logFile, err := os.OpenFile(c.logPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open server log: %w", err)
	}
	// The child gets its own descriptor at Start; ours is only needed until then.
	defer logFile.Close()

	cmd := exec.Command(filepath.Join(c.binDir, "postgres"),
		serverArgs(c.dataDir(), c.socketDir(), c.port, c.settings)...)
	cmd.Dir = c.dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr(c.cred)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run postgres: %w", err)
	}
	s := &server{cmd: cmd, done: make(chan struct{})}
	// Owned by s: it ends when the process does, which stop guarantees.
	go func() {
		_ = cmd.Wait() // the exit status is read from cmd.ProcessState once done is closed
		close(s.done)
	}()

	if err := c.waitReady(ctx, s); err != nil {
		_ = s.stop(c.logger)
		return nil, err
	}
	c.logger.Debug("postgres server ready", "port", c.port, "pid", cmd.Process.Pid)
	return s, nil
}

// waitReady polls until the server accepts connections, exits, or ctx ends.
func (c *Cluster) waitReady(ctx context.Context, s *server) error {
	// A probe can hang on a stranger that took the port and accepts without answering; our
	// server's exit cuts it short.
	probeCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-probeCtx.Done():
		}
	}()
	tick := time.NewTicker(readyPollInterval)
	defer tick.Stop()
	for {
		probeErr := c.probe(probeCtx)
		if probeErr == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("%w (%v); server log:\n%s", errExitedEarly, s.cmd.ProcessState, c.logTail())
		case <-ctx.Done():
			return fmt.Errorf("wait for postgres on port %d: %w (last attempt: %v); server log:\n%s",
				c.port, ctx.Err(), probeErr, c.logTail())
		case <-tick.C:
		}
	}
}

// probe connects once and checks that the server answering is ours: if another process took the
// port, our server fails to bind and exits, but until then a stranger could answer.
func (c *Cluster) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var dataDir string
	if err := conn.QueryRow(ctx, "SHOW data_directory").Scan(&dataDir); err != nil {
		return err
	}
	if !sameFile(dataDir, c.dataDir()) {
		return fmt.Errorf("port %d is served by another cluster (data directory %s)", c.port, dataDir)
	}
	return nil
}

// sameFile reports whether paths a and b name the same file, whatever symlinks lie on the way.
func sameFile(a, b string) bool {
	ai, err := os.Stat(a)
	if err != nil {
		return false
	}
	bi, err := os.Stat(b)
	return err == nil && os.SameFile(ai, bi)
}

// stop asks for a fast shutdown and waits for the process to exit, killing it after stopTimeout.
func (s *server) stop(logger *slog.Logger) error {
	// Signal fails only when the process has already exited, which is what we want.
	_ = s.cmd.Process.Signal(os.Interrupt)
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-s.done:
		return nil
	case <-timer.C:
	}
	logger.Warn("postgres ignored fast shutdown; killing it", "pid", s.cmd.Process.Pid, "dur_ms", stopTimeout.Milliseconds())
	_ = s.cmd.Process.Kill()
	<-s.done
	return fmt.Errorf("postgres did not shut down within %v and was killed", stopTimeout)
}

// logTail returns the last lines of the server log, or why it could not be read.
func (c *Cluster) logTail() string {
	f, err := os.Open(c.logPath())
	if err != nil {
		return fmt.Sprintf("(server log unreadable: %v)", err)
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && info.Size() > logTailBytes {
		_, _ = f.Seek(-logTailBytes, io.SeekEnd)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(server log unreadable: %v)", err)
	}
	return lastLines(data, logTailLines)
}

// lastLines returns the last n lines of out, trimmed of surrounding blank space.
func lastLines(out []byte, n int) string {
	lines := strings.Split(string(bytes.TrimSpace(out)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
