// Command pulsesync is the pulsesync sync server: `serve` runs a node, `dev` runs one on a
// throwaway PostgreSQL with a demo schema, `migrate` updates the sync schema, `token` mints a
// development token, `version` prints the build.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `pulsesync — a streaming sync server for SQLite clients, on PostgreSQL

Usage:
  pulsesync serve    [flags]   run a node (DATABASE_URL, PULSESYNC_TABLES, JWT_SECRET or JWT_JWKS_URL)
  pulsesync dev      [flags]   run a node on a throwaway PostgreSQL with the demo schema and a dev token
  pulsesync migrate  [flags]   apply the sync schema's migrations and exit
  pulsesync token    [flags]   mint an HS256 token (--sub, --did, --ttl)
  pulsesync version            print the version

Run "pulsesync <command> --help" for the command's flags. Every server flag has an environment
variable twin; the flag wins when both are set.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "pulsesync:", err)
		}
		stop()
		os.Exit(exitCode(err))
	}
}

// exitCode is 2 for usage errors (as flag does), 1 for everything else.
func exitCode(err error) int {
	var usageErr usageError
	if errors.As(err, &usageErr) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// run dispatches to a subcommand.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command given"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serveCommand(ctx, rest, stderr)
	case "dev":
		return devCommand(ctx, rest, stdout, stderr)
	case "migrate":
		return migrateCommand(ctx, rest, stdout, stderr)
	case "token":
		return tokenCommand(rest, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "pulsesync", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Sprintf("unknown command %q", cmd)}
}

// newFlagSet returns a flag set for command that reports errors instead of exiting.
func newFlagSet(command, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(command, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: pulsesync %s [flags]\n\n%s\n\nFlags:\n", command, summary)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args into fs, turning flag errors into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// newLogger returns the process logger: JSON lines for serve, readable text for dev.
func newLogger(w io.Writer, level string, text bool) *slog.Logger {
	lvl, _ := parseLevel(level)
	opts := &slog.HandlerOptions{Level: lvl}
	if text {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// parseLevel reads a log level name.
func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
		return 0, fmt.Errorf("--log-level / PULSESYNC_LOG_LEVEL: %q is not debug, info, warn or error", s)
	}
	return l, nil
}

// serveCommand runs a production node.
func serveCommand(ctx context.Context, args []string, stderr io.Writer) error {
	var c config
	fs := newFlagSet("serve", "Run a pulsesync node.", stderr)
	c.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	s, err := c.parse()
	if err != nil {
		return usageError{err.Error()}
	}
	return runNode(ctx, s, nodeExtras{}, newLogger(stderr, s.logLevel, false))
}
