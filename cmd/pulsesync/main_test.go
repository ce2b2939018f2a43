package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/httpapi/auth"
	"github.com/pulsesync/pulsesync/internal/pgtest"
	"github.com/pulsesync/pulsesync/internal/servertest"
)

func TestMain(m *testing.M) {
	pgtest.Main(m, pgtest.Options{Template: servertest.Template})
}

// TestBinary runs the built pulsesync the way an operator does. The binary is built once, into
// this test's temporary directory, and shared by the subtests.
func TestBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "pulsesync")
	// -buildvcs=true stamps the revision even where GOFLAGS turns stamping off: --version must
	// show it.
	if out, err := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	p := pulsesync{bin: bin}
	t.Run("HelpPrintsNoSecret", p.testHelpPrintsNoSecret)
	t.Run("Version", p.testVersion)
	t.Run("UsageErrors", p.testUsageErrors)
	t.Run("StartupFailures", p.testStartupFailures)
	t.Run("Precedence", p.testPrecedence)
}

// pulsesync runs the built binary.
type pulsesync struct{ bin string }

// result is how a run of the binary ended.
type result struct {
	stdout, stderr string
	code           int
}

// run runs the binary with args in an environment of env alone (plus PATH and HOME), so that
// the developer's own settings cannot leak in, and waits for it to exit.
func (p pulsesync) run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run %v: %v", args, err)
	}
	r := result{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
	if strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine ") {
		t.Fatalf("%v crashed:\n%s", args, r.stderr)
	}
	return r
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func (p pulsesync) testHelpPrintsNoSecret(t *testing.T) {
	env := []string{"JWT_SECRET=s3cret", "PULSESYNC_JWT_SECRET=s3cret",
		"DATABASE_URL=postgres://sync:hunter2@db/app", "NATS_URL=nats://nuser:natspass@nats:4222"}
	for _, args := range [][]string{{"serve", "--help"}, {"dev", "--help"}, {"migrate", "--help"},
		{"token", "--help"}, {"--help"}, {"serve", "-h"}} {
		r := p.run(t, env, args...)
		if r.code != 0 {
			t.Errorf("%v: exit %d, want 0\n%s", args, r.code, r.stderr)
		}
		for _, secret := range []string{"s3cret", "hunter2", "natspass"} {
			if strings.Contains(r.stdout+r.stderr, secret) {
				t.Errorf("%v printed the secret %q:\n%s", args, secret, r.stdout)
			}
		}
		if !strings.Contains(r.stdout, "Usage: pulsesync") {
			t.Errorf("%v printed no usage:\n%s", args, r.stdout)
		}
	}
}

func (p pulsesync) testVersion(t *testing.T) {
	// The revision the build stamped, read by the go tool (other commits may land while the
	// test runs, so HEAD now is not necessarily what was built).
	out, err := exec.Command("go", "version", "-m", p.bin).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	var rev string
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) == 2 && strings.HasPrefix(f[1], "vcs.revision=") {
			rev = strings.TrimPrefix(f[1], "vcs.revision=")
		}
	}
	if len(rev) != 40 {
		t.Fatalf("the build stamped no revision:\n%s", out)
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		r := p.run(t, nil, args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "pulsesync ") || !strings.Contains(r.stdout, "revision "+rev) {
			t.Errorf("%v: exit %d, %q; want exit 0 and a line naming revision %s", args, r.code, r.stdout, rev)
		}
	}
}

func (p pulsesync) testUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{args: nil, want: "expected one of"},
		{args: []string{"nonsense"}, want: "nonsense"},
		{args: []string{"serve", "--bogus"}, want: "--bogus"},
		// A typed boolean takes no value: the next flag stays a flag.
		{args: []string{"serve", "--allow-no-exp", "--tables", "x", "--extra"}, want: "--extra"},
		{args: []string{"serve", "--max-body", "9999999999GiB"}, want: "--max-body"},
		{args: []string{"serve", "--max-body", "99999999999999999999"}, want: "does not fit in 64 bits"},
		{args: []string{"serve"}, env: []string{"PULSESYNC_V1_MAX_CHUNK=-1"}, want: "--v1-max-chunk"},
		{args: []string{"serve", "--heartbeat", "-1s"}, want: "--heartbeat"},
		{args: []string{"serve", "--push-max-per-user", "1e3"}, want: "--push-max-per-user"},
		{args: []string{"serve", "--conns-per-ip", "0"}, want: "--conns-per-ip"},
		{args: []string{"serve", "--schema-version", "0"}, want: "--schema-version"},
		{args: []string{"serve", "--watermark-cache-entries", "99999999999999999999"}, want: "--watermark-cache-entries"},
		{args: []string{"serve", "--log-level", "loud"}, want: "--log-level"},
		{args: []string{"serve", "--v1-tables", "nodot"}, want: "--v1-tables"},
		{args: []string{"serve", "--config", "/nonexistent/pulsesync.yaml"}, want: "--config"},
		{args: []string{"token", "--did", "d"}, want: "--sub"},
		// The NATS connection's files must exist, named by their setting, wherever they were set.
		{args: []string{"serve", "--nats-creds", "/nonexistent/user.creds"}, want: "--nats-creds"},
		{args: []string{"serve", "--nats-nkey", "/nonexistent/user.nk"}, want: "--nats-nkey"},
		{args: []string{"serve"}, env: []string{"PULSESYNC_NATS_TLS_CA=/nonexistent/ca.pem"}, want: "--nats-tls-ca"},
		{args: []string{"serve", "--nats-tls-key", "/nonexistent/key.pem"}, want: "--nats-tls-key"},
		{args: []string{"serve", "--nats-tls-cert", p.bin}, want: "--nats-tls-key"},
	} {
		r := p.run(t, tc.env, tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v %v: exit %d, stderr %q; want exit %d naming %q", tc.env, tc.args, r.code, r.stderr, exitUsage, tc.want)
		}
	}
}

func (p pulsesync) testStartupFailures(t *testing.T) {
	db := pgtest.NewDB(t)
	tables := "--tables=business.users,business.posts"
	shared := filepath.Join(t.TempDir(), "pulsesync.yaml")
	if err := os.WriteFile(shared, []byte("tables: business.users\nheartbeat: 20s\ndatabase-url: postgres://sync:hunter2@"+
		closedAddr(t)+"/app\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{name: "no secret", args: []string{"serve", "--database-url", db, tables}, want: "--jwt-secret"},
		{name: "no database", env: []string{"JWT_SECRET=x"}, args: []string{"serve", tables}, want: "--database-url"},
		{name: "unreachable database", env: []string{"JWT_SECRET=x", "DATABASE_URL=postgres://sync:hunter2@" + closedAddr(t) + "/app"},
			args: []string{"serve", tables}, want: "--database-url"},
		{name: "unreachable JWKS", args: []string{"serve", "--database-url", db, tables,
			"--jwt-jwks-url", "http://" + closedAddr(t) + "/jwks.json"}, want: "--jwt-jwks-url"},
		{name: "missing table", env: []string{"JWT_SECRET=x"}, args: []string{"serve", "--database-url", db,
			"--tables", "business.nonexistent"}, want: "--tables"},
		{name: "no table", env: []string{"JWT_SECRET=x"}, args: []string{"serve", "--database-url", db}, want: "--tables"},
		{name: "bad v1 table", env: []string{"JWT_SECRET=x"}, args: []string{"serve", "--database-url", db, tables,
			"--v1-tables", "business.users"}, want: "--v1-tables"},
		{name: "address taken", env: []string{"JWT_SECRET=x"}, args: []string{"serve", "--database-url", db, tables,
			"--addr", "256.0.0.1:1"}, want: "--addr"},
		{name: "migrate without database", args: []string{"migrate"}, want: "--database-url"},
		// serve's config file serves migrate too: its other keys are no error.
		{name: "migrate with serve's file", args: []string{"migrate", "--config", shared}, want: "--database-url"},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			r := p.run(t, tc.env, tc.args...)
			if r.code == 0 {
				t.Fatalf("exit 0, want a failure; stderr:\n%s", r.stderr)
			}
			var failures []string
			for line := range strings.Lines(r.stderr) {
				if strings.HasPrefix(line, "pulsesync: ") {
					failures = append(failures, line)
				}
			}
			if len(failures) != 1 || !strings.Contains(failures[0], tc.want) {
				t.Fatalf("want one line naming %s, got stderr:\n%s", tc.want, r.stderr)
			}
			if strings.Contains(r.stderr, "hunter2") {
				t.Fatalf("the database password was printed:\n%s", r.stderr)
			}
		})
	}
}

// testPrecedence starts serve from a config file, variables and flags that disagree, and reads
// what it chose from its "serving" log line: a flag beats a variable and the file, a variable
// beats the file, the file beats the default. The running node also shows that serve leaves
// /dummy-signin out, serves its metrics on --metrics-addr and reports the file's schema-version.
func (p pulsesync) testPrecedence(t *testing.T) {
	db := pgtest.NewDB(t)
	fileAddr, envAddr, flagAddr, metricsAddr := closedAddr(t), closedAddr(t), closedAddr(t), closedAddr(t)
	config := filepath.Join(t.TempDir(), "pulsesync.yaml")
	if err := os.WriteFile(config, []byte(`# settings keyed by flag name
addr: `+fileAddr+`
node-id: from-file
tables: [business.users]
jwt-secret: file-secret
shutdown-timeout: 5s
schema-version: 7
metrics-addr: `+metricsAddr+`
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), p.bin, "serve", "--addr", flagAddr)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "PULSESYNC_CONFIG=" + config, "DATABASE_URL=" + db,
		"PULSESYNC_ADDR=" + envAddr, "PULSESYNC_NODE_ID=from-env"}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	serving := make(chan map[string]any, 1)
	var logged bytes.Buffer
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logged.Write(sc.Bytes())
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "pulsesync serving" {
				serving <- line
			}
		}
		exited <- cmd.Wait()
	}()
	var line map[string]any
	select {
	case line = <-serving:
	case err := <-exited:
		t.Fatalf("serve exited before serving: %v\n%s", err, logged.String())
	case <-time.After(time.Minute):
		t.Fatal("serve did not start within a minute")
	}
	want := map[string]any{"addr": flagAddr, "node": "from-env", "tables": float64(1)}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("serving line %s = %v, want %v", k, line[k], v)
		}
	}
	token, err := auth.Mint([]byte("file-secret"), "alice", "phone", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodGet, "http://"+flagAddr+"/sync/download?after=0&limit=10&schema=business", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a token signed with the file's jwt-secret got %d, want 200", resp.StatusCode)
	}
	req.URL.Path, req.URL.RawQuery = "/sync/schema-version", ""
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var version struct {
		SchemaVersion int `json:"schema_version"`
	}
	err = json.NewDecoder(resp.Body).Decode(&version)
	resp.Body.Close()
	if err != nil || version.SchemaVersion != 7 {
		t.Errorf("GET /sync/schema-version: %+v, %v; want the file's schema-version 7", version, err)
	}
	resp, err = http.Post("http://"+flagAddr+"/dummy-signin", "application/json",
		strings.NewReader(`{"user":"bob","password":"x","device":"tablet"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("serve answered POST /dummy-signin with %d, want 404", resp.StatusCode)
	}
	metrics, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(metrics.Body)
	metrics.Body.Close()
	if err != nil || metrics.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("pulsesync_")) {
		t.Errorf("GET /metrics on --metrics-addr: %d, %v; want 200 with the pulsesync metrics", metrics.StatusCode, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM\n%s", err, logged.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("serve did not exit within a minute of SIGTERM")
	}
}

// TestConfigFile checks how a file's keys and values are read: lists become comma-separated,
// keys of other commands are accepted (one file serves serve and migrate), and a key that is no
// setting, or a nested value, is refused by name.
func TestConfigFile(t *testing.T) {
	settings := map[string]bool{"tables": true, "max-body": true, "heartbeat": true, "config": true}
	write := func(t *testing.T, text string) string {
		path := filepath.Join(t.TempDir(), "pulsesync.yaml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	values, err := readConfigFile(write(t, "tables: [a.b, c.d]\nmax-body: 64MiB\nheartbeat: 20s\n"), settings)
	if err != nil {
		t.Fatal(err)
	}
	want := fileValues{"tables": "a.b,c.d", "max-body": "64MiB", "heartbeat": "20s"}
	if !maps.Equal(values, want) {
		t.Errorf("read %v, want %v", values, want)
	}
	for text, wantErr := range map[string]string{
		"tabels: a.b\n":        `"tabels" is not a setting`,
		"config: other.yaml\n": `"config" is not a setting`,
		"tables: {a: b}\n":     "tables: a mapping",
		"- just\n- a list\n":   "not a YAML mapping",
	} {
		if _, err := readConfigFile(write(t, text), settings); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: error %v, want one naming %q", text, err, wantErr)
		}
	}
}
