package pgtest

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulsesync/pulsesync/internal/pgcluster"
)

// dbOpTimeout bounds creating or dropping one database.
const dbOpTimeout = 30 * time.Second

// dbSeq numbers the databases of this test binary. The pid in the name makes leftovers from a
// crashed binary easy to tell apart when looking at a cluster by hand.
var dbSeq atomic.Uint64

// NewDB creates a fresh database (a clone of the Options.Template database, or of template1) and
// returns its URL. The database is dropped when the test ends, after the test's own cleanups,
// with any sessions the test left open terminated first. Safe for parallel tests.
func NewDB(t testing.TB) string {
	t.Helper()
	h := mustHarness(t)
	name := fmt.Sprintf("pgtest_%d_%d", os.Getpid(), dbSeq.Add(1))
	ident := pgx.Identifier{name}.Sanitize()

	ctx, cancel := context.WithTimeout(t.Context(), dbOpTimeout)
	defer cancel()
	create := "CREATE DATABASE " + ident + " TEMPLATE " + pgx.Identifier{h.template}.Sanitize() + h.strategy
	if err := h.exec(ctx, create); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	// Cleanups run in reverse order of registration, so this one runs after those the test
	// registers later (closing its pools), and FORCE ends whatever is still connected.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), dbOpTimeout)
		defer cancel()
		if err := h.exec(ctx, "DROP DATABASE "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return h.cluster.URL(name)
}

// Cluster returns the test binary's cluster, for fault-injection tests (Restart, StopServer) and
// admin connections. A test that stops the server must start it again before it ends, or
// dropping its databases fails.
func Cluster(t testing.TB) *pgcluster.Cluster {
	t.Helper()
	return mustHarness(t).cluster
}

func mustHarness(t testing.TB) *harness {
	t.Helper()
	h := current.Load()
	if h == nil {
		t.Fatal("pgtest: no cluster; call pgtest.Main from TestMain")
	}
	return h
}

// exec runs one statement on a connection of its own to the postgres database. Opening one per
// call costs about a millisecond and survives a test restarting the cluster.
func (h *harness) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, h.cluster.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}
