package deploytest

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// minOpenFiles is the least open-file limit a node should run with: tens of thousands of
// devices each hold a socket.
const minOpenFiles = 65536

// readKeys returns the key=value lines of a systemd unit or an environment file, comments
// skipped; a key given twice keeps its values in order.
func readKeys(t *testing.T, name string) map[string][]string {
	t.Helper()
	f, err := os.Open(deployFile(t, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			keys[k] = append(keys[k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestSystemd_UnitOutlastsGracefulShutdown checks deploy/systemd/pulsesync.service against its
// example settings: systemd waits longer than pulsesync's graceful shutdown before it kills
// (else in-flight requests are cut), the process is restarted on failure but not on a usage error (exit 2), runs as its own
// unprivileged user, reads its settings from the environment file and may hold many sockets.
func TestSystemd_UnitOutlastsGracefulShutdown(t *testing.T) {
	unit := readKeys(t, "systemd/pulsesync.service")
	env := readKeys(t, "systemd/pulsesync.env")
	one := func(keys map[string][]string, k string) string {
		t.Helper()
		if len(keys[k]) != 1 {
			t.Fatalf("%s set %d times, want once", k, len(keys[k]))
		}
		return keys[k][0]
	}
	stop, err := time.ParseDuration(one(unit, "TimeoutStopSec"))
	if err != nil {
		t.Fatalf("TimeoutStopSec: %v", err)
	}
	shutdown, err := time.ParseDuration(one(env, "PULSESYNC_SHUTDOWN_TIMEOUT"))
	if err != nil {
		t.Fatalf("PULSESYNC_SHUTDOWN_TIMEOUT: %v", err)
	}
	if stop <= shutdown {
		t.Errorf("TimeoutStopSec %v, want above PULSESYNC_SHUTDOWN_TIMEOUT %v", stop, shutdown)
	}
	for k, want := range map[string]string{
		"Restart": "on-failure",
		// Usage errors (exit 2) cannot be fixed by a restart: the unit must not loop on them.
		"RestartPreventExitStatus": "2",
		"DynamicUser":              "yes",
		"NoNewPrivileges":          "yes",
		"KillSignal":               "SIGTERM",
		"EnvironmentFile":          "/etc/pulsesync/pulsesync.env",
		"ExecStart":                "/usr/local/bin/pulsesync serve",
	} {
		if got := one(unit, k); got != want {
			t.Errorf("%s=%s, want %s", k, got, want)
		}
	}
	if n, err := strconv.Atoi(one(unit, "LimitNOFILE")); err != nil || n < minOpenFiles {
		t.Errorf("LimitNOFILE=%s, want at least %d: one descriptor per push connection", one(unit, "LimitNOFILE"), minOpenFiles)
	}
}
