package pgcluster

import (
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strconv"
)

// Config describes the cluster to start. The zero value is a fast, non-durable cluster on a free
// port, built from the first PostgreSQL installation found.
type Config struct {
	// BinDir holds the initdb and postgres binaries. "" searches, in order: initdb on PATH
	// (symlinks resolved), `pg_config --bindir`, then the newest /usr/lib/postgresql/*/bin.
	BinDir string
	// Dir is the directory in which the cluster's own directory is created. "" means
	// os.TempDir(). When running as root, the "postgres" user must be able to reach it.
	Dir string
	// Port is the TCP port on 127.0.0.1. 0 picks a free one.
	Port int
	// Durable keeps PostgreSQL's crash-safety settings. false (the default) turns off fsync,
	// synchronous_commit and full_page_writes: an operating-system crash may corrupt the
	// cluster, which is harmless for throwaway data and makes tests and dev much faster.
	Durable bool
	// Settings are extra server settings, passed as -c name=value; they override the defaults.
	// listen_addresses, port and unix_socket_directories belong to pgcluster and are rejected.
	Settings map[string]string
	// Logger receives start and stop events, and initdb's output at debug level. nil discards.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// settingName is what PostgreSQL accepts as a parameter name, including custom "ext.name" ones.
// It also keeps '=' out of the -c name=value argument.
var settingName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`)

func (c Config) validate() error {
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("port %d out of range", c.Port)
	}
	for name := range c.Settings {
		if !settingName.MatchString(name) {
			return fmt.Errorf("setting %q: not a parameter name", name)
		}
		switch name {
		case "listen_addresses", "port", "unix_socket_directories":
			// They decide where the server listens, which Port and URL report.
			return fmt.Errorf("setting %q is managed by pgcluster", name)
		}
	}
	return nil
}

// serverSettings returns the server settings before the managed ones: pgcluster's defaults with
// the caller's Settings on top.
//
// The defaults suit a sync server under load tests on a small box (2 cores, tens of GB): enough
// connections for several server nodes' pools plus admin sessions, and a buffer pool that holds
// a test data set without crowding other clusters started by parallel test binaries.
func (c Config) serverSettings() map[string]string {
	s := map[string]string{
		"max_connections": "400",
		"shared_buffers":  "256MB",
		// The log goes to a file we read back on failure; English keeps it readable there.
		"lc_messages": "C",
	}
	if !c.Durable {
		s["fsync"] = "off"
		s["synchronous_commit"] = "off"
		s["full_page_writes"] = "off"
	}
	maps.Copy(s, c.Settings)
	return s
}

// serverArgs is the postgres command line for one server run, sorted so it is reproducible.
func serverArgs(dataDir, socketDir string, port int, settings map[string]string) []string {
	s := maps.Clone(settings)
	s["listen_addresses"] = "127.0.0.1"
	s["port"] = strconv.Itoa(port)
	s["unix_socket_directories"] = socketDir
	args := []string{"-D", dataDir}
	for _, name := range slices.Sorted(maps.Keys(s)) {
		args = append(args, "-c", name+"="+s[name])
	}
	return args
}
