package main

import (
	"bytes"
	"net/url"
	"strings"
	"testing"

	"github.com/pulsesync/pulsesync/internal/oversynctest"
	"github.com/pulsesync/pulsesync/internal/pgtest"
	"github.com/pulsesync/pulsesync/pg"
	"github.com/pulsesync/pulsesync/pg/importv0"
)

// withPassword returns dbURL carrying password; the test cluster trusts local connections, so
// the password only has to stay out of every output.
func withPassword(t *testing.T, dbURL, password string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("parse %s: %v", dbURL, err)
	}
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String()
}

// runImport runs `pulsesync import-v0 args…` in-process and returns its outputs.
func runImport(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(t.Context(), append([]string{"import-v0"}, args...), &out, &errOut, func(int) {})
	return out.String(), errOut.String(), err
}

// TestImportV0Command runs a dry run, an import and a re-run through the command line against
// a go-oversync-shaped database, and checks the source's password is printed nowhere and no
// progress bar is drawn when stderr is not a terminal.
func TestImportV0Command(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-of-the-source"
	srcURL := pgtest.NewDB(t)
	src, err := pg.Connect(t.Context(), pg.PoolConfig{URL: srcURL})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(src.Close)
	if err := oversynctest.CreateSchema(t.Context(), src, "json"); err != nil {
		t.Fatal(err)
	}
	pk := "6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"
	err = oversynctest.Record(t.Context(), src,
		oversynctest.Entry{ID: 1, User: "alice", Source: "phone", SCID: 1, Table: "users", Op: "INSERT", PK: pk, Payload: `{"name":"Ann"}`, Version: 1},
		oversynctest.Entry{ID: 3, User: "bob", Source: "tablet", SCID: 1, Table: "users", Op: "INSERT", PK: pk, Payload: `{"name":"Bo"}`, Version: 1},
		oversynctest.Entry{ID: 2, User: "alice", Source: "phone", SCID: 2, Table: "users", Op: "DELETE", PK: pk, Version: 2})
	if err != nil {
		t.Fatal(err)
	}
	from := withPassword(t, srcURL, secret)
	target := pgtest.NewDB(t)

	tests := []struct {
		name string
		args []string
		want []string // lines of stdout, in order
	}{
		{"dry run", []string{"--dry-run"}, []string{
			"source: 3 change-log entries (1 deletes) of 2 users, highest server_id 3; 2 rows (1 deleted); 0 materialization failures",
			"action: import"}},
		{"import", nil, []string{
			"source: 3 change-log entries (1 deletes) of 2 users, highest server_id 3; 2 rows (1 deleted); 0 materialization failures",
			"action: import",
			"target now holds: 3 changes, 2 rows, 1 business-row owners, 0 failures, 2 user sequences (continuing above 3)"}},
		{"re-run", nil, []string{
			"source: 3 change-log entries (1 deletes) of 2 users, highest server_id 3; 2 rows (1 deleted); 0 materialization failures",
			"action: nothing to do (already imported)",
			"target now holds: 3 changes, 2 rows, 1 business-row owners, 0 failures, 2 user sequences (continuing above 3)"}},
	}
	for _, tt := range tests {
		stdout, stderr, err := runImport(t, append([]string{"--from", from, "--database-url", target}, tt.args...)...)
		if err != nil {
			t.Fatalf("%s: %v\n%s", tt.name, err, stderr)
		}
		if got := strings.Split(strings.TrimSpace(stdout), "\n"); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("%s printed\n%s\nwant\n%s", tt.name, stdout, strings.Join(tt.want, "\n"))
		}
		if strings.Contains(stdout+stderr, secret) {
			t.Errorf("%s printed the source's password:\n%s%s", tt.name, stdout, stderr)
		}
		if strings.Contains(stderr, "\r") {
			t.Errorf("%s drew a progress bar on a stderr that is no terminal: %q", tt.name, stderr)
		}
	}
}

// TestImportV0Command_Failures checks that each mistake is one clear error that names its
// setting and never shows the source's password.
func TestImportV0Command_Failures(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-of-the-source"
	unreachable := "postgres://sync:" + secret + "@" + closedAddr(t) + "/app?sslmode=disable&connect_timeout=5"
	target := pgtest.NewDB(t)
	tests := []struct {
		name  string
		args  []string
		want  string
		usage bool
	}{
		{"no source", []string{"--database-url", target}, "--from / PULSESYNC_IMPORT_FROM: no go-oversync database given", true},
		{"no target", []string{"--from", unreachable}, "--database-url / PULSESYNC_DATABASE_URL: no target database given", true},
		{"zero batch", []string{"--from", unreachable, "--database-url", target, "--batch-size", "0"}, "--batch-size", true},
		{"unreachable source", []string{"--from", unreachable, "--database-url", target}, "--from / PULSESYNC_IMPORT_FROM: reach database", false},
		{"not a go-oversync database", []string{"--from", target, "--database-url", target, "--dry-run"}, "has no table sync.server_change_log", false},
	}
	for _, tt := range tests {
		stdout, stderr, err := runImport(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.want)
			continue
		}
		if got := exitCode(err) == exitUsage; got != tt.usage {
			t.Errorf("%s: usage error %v, want %v", tt.name, got, tt.usage)
		}
		if strings.Contains(err.Error()+stdout+stderr, secret) {
			t.Errorf("%s showed the source's password: %v\n%s%s", tt.name, err, stdout, stderr)
		}
	}
}

func TestRenderBar(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p    importv0.Progress
		want string
	}{
		{importv0.Progress{Phase: "changes", Done: 0, Total: 10}, "changes  [                              ]   0% 0/10"},
		{importv0.Progress{Phase: "rows", Done: 5, Total: 10}, "rows     [===============               ]  50% 5/10"},
		{importv0.Progress{Phase: "failures", Done: 0, Total: 0}, "failures [==============================] 100% 0/0"},
	}
	for _, tt := range tests {
		if got := renderBar(tt.p); got != tt.want {
			t.Errorf("renderBar(%+v) = %q, want %q", tt.p, got, tt.want)
		}
	}
}
