package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulsesync/pulsesync/internal/pgcluster"
)

// Options configures the cluster Main starts.
type Options struct {
	// Template, if set, runs once against a template database before any test; every NewDB is then
	// a clone of it, which is much faster than repeating the setup (migrations, fixtures) per test.
	// It must close the connections it opens.
	Template func(ctx context.Context, url string) error
}

// setupTimeout bounds starting the cluster and running Options.Template.
const setupTimeout = 2 * time.Minute

// templateDB is the database Options.Template fills; plain template1 is cloned without one.
const templateDB = "pgtest_template"

// harness is what Main shares with NewDB and Cluster.
type harness struct {
	cluster  *pgcluster.Cluster
	template string // database every NewDB clones
	strategy string // the CREATE DATABASE clause choosing a file copy, "" where unsupported
}

// current is the harness of this test binary. It has to be a package variable: testing.M offers
// no way to hand values to tests, and NewDB receives only the test. Main stores it once, before
// any test runs.
var current atomic.Pointer[harness]

// Main starts one cluster for the test binary, runs Options.Template, runs the tests, stops the
// cluster and exits with the tests' status. Use it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m, pgtest.Options{}) }
//
// If the cluster or the template cannot be set up, Main prints why and exits with status 1:
// database tests are never skipped silently. SIGINT and SIGTERM stop the cluster before exiting.
func Main(m *testing.M, opts Options) {
	os.Exit(run(m, opts))
}

func run(m *testing.M, opts Options) int {
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	h, err := setUp(ctx, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		return 1
	}
	defer func() {
		if err := h.cluster.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		}
	}()

	// An interrupted test binary would otherwise leave the cluster's files behind; the
	// goroutine ends with run.
	testsDone := make(chan struct{})
	defer close(testsDone)
	go func() {
		select {
		case <-ctx.Done():
			_ = h.cluster.Stop()
			fmt.Fprintln(os.Stderr, "pgtest: interrupted; PostgreSQL stopped")
			os.Exit(1)
		case <-testsDone:
		}
	}()

	current.Store(h)
	return m.Run()
}

// ramDir is Linux's tmpfs for shared memory, writable by every user.
const ramDir = "/dev/shm"

// ramDirMinFree is the room ramDir must have before the cluster goes there. Docker gives
// containers 64 MB by default, too little for a test suite's databases.
const ramDirMinFree = 2 << 30

// clusterParentDir returns where the cluster's files go: ramDir when it has room, because a
// CREATE DATABASE there takes about 8 ms instead of about 80 ms on ext4, and the data dies with
// the test binary anyway. An explicit TMPDIR wins, and "" means os.TempDir().
func clusterParentDir() string {
	if os.Getenv("TMPDIR") != "" {
		return ""
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(ramDir, &fs); err != nil || uint64(fs.Bavail)*uint64(fs.Bsize) < ramDirMinFree {
		return ""
	}
	return ramDir
}

// setUp starts the cluster and prepares the database NewDB clones.
func setUp(ctx context.Context, opts Options) (*harness, error) {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	cluster, err := pgcluster.Start(ctx, pgcluster.Config{Dir: clusterParentDir()})
	if err != nil {
		return nil, err
	}
	h := &harness{cluster: cluster, template: "template1"}
	if err := h.prepare(ctx, opts); err != nil {
		_ = cluster.Stop()
		return nil, err
	}
	return h, nil
}

func (h *harness) prepare(ctx context.Context, opts Options) error {
	conn, err := pgx.Connect(ctx, h.cluster.URL("postgres"))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())

	var version int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return fmt.Errorf("read server version: %w", err)
	}
	switch {
	case version < 130000: // DROP DATABASE ... WITH (FORCE)
		return fmt.Errorf("PostgreSQL 13 or newer needed, found version number %d", version)
	case version >= 150000:
		// 15 made WAL_LOG the default, which writes the whole template to the WAL; copying
		// the files is faster for the small databases tests use (about 8 ms against 13 ms
		// per clone in /dev/shm).
		h.strategy = " STRATEGY FILE_COPY"
	}

	if opts.Template == nil {
		return nil
	}
	tmpl := pgx.Identifier{templateDB}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+tmpl); err != nil {
		return fmt.Errorf("create template database: %w", err)
	}
	if err := opts.Template(ctx, h.cluster.URL(templateDB)); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	// Cloning needs the template to have no sessions; refuse new ones so a test cannot connect
	// to it by mistake, and end any the setup left behind.
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+tmpl+" WITH ALLOW_CONNECTIONS false IS_TEMPLATE true"); err != nil {
		return fmt.Errorf("seal template database: %w", err)
	}
	if _, err := conn.Exec(ctx, terminateSessions, templateDB); err != nil {
		return fmt.Errorf("end template database sessions: %w", err)
	}
	h.template = templateDB
	return nil
}

// terminateSessions ends every other session on database $1. CREATE DATABASE waits a few seconds
// for terminated sessions to go away, so no wait is needed here.
const terminateSessions = `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE datname = $1 AND pid <> pg_backend_pid()`
