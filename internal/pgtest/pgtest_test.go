package pgtest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pulsesync/pulsesync/internal/pgtest"
)

// failTemplateEnv makes TestMain's template fail, for the test that runs this binary again.
const failTemplateEnv = "PGTEST_TEST_FAIL_TEMPLATE"

func TestMain(m *testing.M) {
	opts := pgtest.Options{Template: createFixture}
	if os.Getenv(failTemplateEnv) != "" {
		opts.Template = func(context.Context, string) error { return errors.New("fixture exploded") }
	}
	pgtest.Main(m, opts)
}

// createFixture is the template every NewDB database starts from.
func createFixture(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE TABLE fixture (v text); INSERT INTO fixture VALUES ('from template')")
	return err
}

// connect opens a connection that the test's cleanup closes (before the database is dropped).
func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// queryString runs a one-value query.
func queryString(t *testing.T, conn *pgx.Conn, sql string, args ...any) string {
	t.Helper()
	var s string
	if err := conn.QueryRow(t.Context(), sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func TestNewDB_ClonesTemplate(t *testing.T) {
	t.Parallel()
	conn := connect(t, pgtest.NewDB(t))
	if got := queryString(t, conn, "SELECT v FROM fixture"); got != "from template" {
		t.Errorf("fixture row = %q, want %q", got, "from template")
	}
}

func TestNewDB_DatabasesAreIsolated(t *testing.T) {
	t.Parallel()
	a := connect(t, pgtest.NewDB(t))
	b := connect(t, pgtest.NewDB(t))
	if _, err := a.Exec(t.Context(), "CREATE TABLE only_a (v int); INSERT INTO fixture VALUES ('a')"); err != nil {
		t.Fatalf("write to a: %v", err)
	}
	if got := queryString(t, b, "SELECT count(*)::text FROM fixture"); got != "1" {
		t.Errorf("fixture rows in b = %s, want 1 (the template's)", got)
	}
	if got := queryString(t, b, "SELECT coalesce(to_regclass('only_a')::text, 'absent')"); got != "absent" {
		t.Errorf("table only_a in b: %s, want absent", got)
	}
}

func TestNewDB_ParallelCallsGetDistinctDatabases(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[string]string{} // database name → test
	t.Run("group", func(t *testing.T) {
		for _, name := range []string{"a", "b", "c", "d", "e", "f"} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				db := queryString(t, connect(t, pgtest.NewDB(t)), "SELECT current_database()")
				mu.Lock()
				defer mu.Unlock()
				if other, ok := seen[db]; ok {
					t.Errorf("database %s given to both %s and %s", db, other, t.Name())
				}
				seen[db] = t.Name()
			})
		}
	})
	if len(seen) != 6 {
		t.Errorf("%d distinct databases for 6 tests, want 6", len(seen))
	}
}

func TestNewDB_CleanupDropsDatabaseLeftConnected(t *testing.T) {
	t.Parallel()
	var name string
	var leaked *pgx.Conn
	t.Run("leaves a connection open", func(t *testing.T) {
		var err error
		leaked, err = pgx.Connect(t.Context(), pgtest.NewDB(t))
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		name = leaked.Config().Database
	})
	if leaked == nil {
		t.FailNow()
	}
	defer leaked.Close(context.Background())

	admin := connect(t, pgtest.Cluster(t).URL("postgres"))
	if got := queryString(t, admin, "SELECT count(*)::text FROM pg_database WHERE datname = $1", name); got != "0" {
		t.Errorf("database %s still exists after its test ended", name)
	}
	if _, err := leaked.Exec(t.Context(), "SELECT 1"); err == nil {
		t.Error("connection left open still works, want it terminated")
	}
}

func TestMain_FailedTemplateExitsNonZero(t *testing.T) {
	if os.Getenv(failTemplateEnv) != "" {
		t.Fatal("ran although the template failed")
	}
	t.Parallel()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestNewDB_ClonesTemplate$", "-test.v")
	cmd.Env = append(os.Environ(), failTemplateEnv+"=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("test binary with a failing template: %v, want exit status 1; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "fixture exploded") {
		t.Errorf("output does not say why setup failed:\n%s", out)
	}
	if strings.Contains(string(out), "=== RUN") {
		t.Errorf("tests ran although setup failed:\n%s", out)
	}
}
