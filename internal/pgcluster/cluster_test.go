package pgcluster

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startCluster starts a cluster that the test's cleanup stops.
func startCluster(t *testing.T, cfg Config) *Cluster {
	t.Helper()
	c, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return c
}

// connect opens a connection that the test's cleanup closes.
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
func queryString(t *testing.T, conn *pgx.Conn, sql string) string {
	t.Helper()
	var s string
	if err := conn.QueryRow(t.Context(), sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func TestStart_ServesQueriesAndStopRemovesEverything(t *testing.T) {
	t.Parallel()
	c, err := Start(t.Context(), Config{})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	conn, err := pgx.Connect(t.Context(), c.URL("postgres"))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	if got := queryString(t, conn, "SELECT 1::text"); got != "1" {
		t.Errorf("SELECT 1 = %q, want 1", got)
	}
	_ = conn.Close(t.Context())

	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(c.dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("cluster dir %s after Stop: stat error %v, want not exist", c.dir, err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port())))
	if err != nil {
		t.Errorf("port %d after Stop: %v, want free", c.Port(), err)
	} else {
		_ = ln.Close()
	}
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop: %v, want nil", err)
	}
	if err := c.Restart(t.Context()); !errors.Is(err, ErrStopped) {
		t.Errorf("Restart after Stop: %v, want ErrStopped", err)
	}
}

func TestStart_AppliesSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want map[string]string
	}{
		{
			name: "defaults are fast and roomy",
			cfg:  Config{},
			want: map[string]string{"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
				"max_connections": "400", "shared_buffers": "256MB", "server_encoding": "UTF8", "lc_collate": "C"},
		},
		{
			name: "durable with overrides",
			cfg:  Config{Durable: true, Settings: map[string]string{"max_connections": "50", "work_mem": "8MB"}},
			want: map[string]string{"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on",
				"max_connections": "50", "work_mem": "8MB"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conn := connect(t, startCluster(t, tt.cfg).URL("postgres"))
			for name, want := range tt.want {
				if got := queryString(t, conn, "SHOW "+name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

func TestRestart_KeepsDataAndDropsConnections(t *testing.T) {
	t.Parallel()
	c := startCluster(t, Config{})
	before := connect(t, c.URL("postgres"))
	if _, err := before.Exec(t.Context(), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')"); err != nil {
		t.Fatalf("create table: %v", err)
	}
	port := c.Port()

	if err := c.Restart(t.Context()); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if c.Port() != port {
		t.Errorf("port after Restart = %d, want %d", c.Port(), port)
	}
	if _, err := before.Exec(t.Context(), "SELECT 1"); err == nil {
		t.Error("connection opened before Restart still works, want it lost")
	}
	after := connect(t, c.URL("postgres"))
	if got := queryString(t, after, "SELECT v FROM kept"); got != "still here" {
		t.Errorf("row after Restart = %q, want %q", got, "still here")
	}
}

func TestStopServer_RefusesConnectionsUntilStartServer(t *testing.T) {
	t.Parallel()
	c := startCluster(t, Config{})
	if err := c.StopServer(); err != nil {
		t.Fatalf("StopServer: %v", err)
	}
	if err := c.StopServer(); err != nil {
		t.Errorf("second StopServer: %v, want nil", err)
	}
	if conn, err := pgx.Connect(t.Context(), c.URL("postgres")); err == nil {
		_ = conn.Close(t.Context())
		t.Fatal("connect while stopped succeeded, want refused")
	}
	if err := c.StartServer(t.Context()); err != nil {
		t.Fatalf("StartServer: %v", err)
	}
	if got := queryString(t, connect(t, c.URL("postgres")), "SELECT 1::text"); got != "1" {
		t.Errorf("SELECT 1 after StartServer = %q, want 1", got)
	}
}

func TestStart_ConcurrentClustersGetDifferentPorts(t *testing.T) {
	t.Parallel()
	clusters := make([]*Cluster, 2)
	var wg sync.WaitGroup
	for i := range clusters {
		wg.Go(func() {
			c, err := Start(t.Context(), Config{})
			if err != nil {
				t.Errorf("Start %d: %v", i, err)
				return
			}
			clusters[i] = c
		})
	}
	wg.Wait()
	for _, c := range clusters {
		if c != nil {
			t.Cleanup(func() { _ = c.Stop() })
		}
	}
	if t.Failed() {
		return
	}
	if clusters[0].Port() == clusters[1].Port() {
		t.Fatalf("both clusters on port %d", clusters[0].Port())
	}
	for _, c := range clusters {
		if got := queryString(t, connect(t, c.URL("postgres")), "SHOW data_directory"); got != c.dataDir() {
			t.Errorf("port %d serves data directory %s, want %s", c.Port(), got, c.dataDir())
		}
	}
}

func TestStart_BogusBinDirFails(t *testing.T) {
	t.Parallel()
	bogus := t.TempDir()
	_, err := Start(t.Context(), Config{BinDir: bogus})
	if !errors.Is(err, ErrNoBinaries) {
		t.Fatalf("Start with BinDir %s: %v, want ErrNoBinaries", bogus, err)
	}
	if !strings.Contains(err.Error(), bogus) {
		t.Errorf("error %q does not name the BinDir %s", err, bogus)
	}
}

func TestStart_DirUnreachableByServerUserFails(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root hands the cluster to another user")
	}
	t.Parallel()
	private := t.TempDir() // mode 0700, owned by root
	_, err := Start(t.Context(), Config{Dir: private})
	if err == nil || !strings.Contains(err.Error(), "cannot reach") || !strings.Contains(err.Error(), private) {
		t.Errorf("Start in %s: %v, want an error saying the server user cannot reach it", private, err)
	}
	if entries, _ := os.ReadDir(private); len(entries) != 0 {
		t.Errorf("%s holds %d entries after the failed Start, want none", private, len(entries))
	}
}

func TestStart_RejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"managed port", Config{Settings: map[string]string{"port": "5432"}}, `"port" is managed`},
		{"managed listen address", Config{Settings: map[string]string{"listen_addresses": "*"}}, `"listen_addresses" is managed`},
		{"name with equals sign", Config{Settings: map[string]string{"a=b": "c"}}, "not a parameter name"},
		{"port out of range", Config{Port: 70000}, "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Start(t.Context(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Start: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestStart_ServerFailureQuotesServerLog(t *testing.T) {
	t.Parallel()
	_, err := Start(t.Context(), Config{Settings: map[string]string{"shared_buffers": "plenty"}})
	if err == nil {
		t.Fatal("Start with shared_buffers=plenty succeeded, want an error")
	}
	if want := `invalid value for parameter "shared_buffers"`; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not quote the server log line %q", err, want)
	}
}

func TestStart_TakenPortFails(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	_, err = Start(t.Context(), Config{Port: port})
	if !errors.Is(err, errExitedEarly) || !strings.Contains(err.Error(), "could not bind") {
		t.Errorf("Start on taken port %d: %v, want early exit quoting the bind failure", port, err)
	}
}

func TestSortNewestFirst_ComparesVersionsNumerically(t *testing.T) {
	dirs := []string{
		"/usr/lib/postgresql/9.6/bin",
		"/usr/lib/postgresql/devel/bin",
		"/usr/lib/postgresql/15/bin",
		"/usr/lib/postgresql/10/bin",
	}
	sortNewestFirst(dirs)
	want := []string{
		"/usr/lib/postgresql/15/bin",
		"/usr/lib/postgresql/10/bin",
		"/usr/lib/postgresql/9.6/bin",
		"/usr/lib/postgresql/devel/bin",
	}
	if !slices.Equal(dirs, want) {
		t.Errorf("sorted = %v, want %v", dirs, want)
	}
}
