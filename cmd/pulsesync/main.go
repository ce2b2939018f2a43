// Command pulsesync is the pulsesync sync server: `serve` runs a node, `dev` runs one on a
// throwaway PostgreSQL with a demo schema, `migrate` updates the sync schema, `token` mints a
// development token, `version` prints the build.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"
)

// Exit codes: 0 for success and --help, 2 for a mistake in the command line or the settings, 1
// for a failure at run time.
const (
	exitRuntime = 1
	exitUsage   = 2
)

// cli is the command line. Every server setting is also an environment variable and a config
// file key (serverFlags). A command is a struct of kong-tagged flags with a Run(*runEnv) error
// method, registered here with one line; Run returns usageError for mistakes in its settings.
type cli struct {
	Version kong.VersionFlag `help:"Print the version and exit."`

	Serve      serveCmd   `cmd:"" help:"Run a node (needs --database-url, --tables and/or --v1-tables, --jwt-secret or --jwt-jwks-url)."`
	Dev        devCmd     `cmd:"" help:"Run a development node: throwaway PostgreSQL (unless --database-url is set), demo schemas, dev JWT secret, printed tokens; listens on 127.0.0.1."`
	Migrate    migrateCmd `cmd:"" help:"Apply the migrations of the sync schemas (v0 and v1) and exit."`
	Token      tokenCmd   `cmd:"" help:"Mint an HS256 token signed with --secret."`
	VersionCmd versionCmd `cmd:"" name:"version" help:"Print the version and exit."`
	ImportV0   importCmd  `cmd:"" name:"import-v0" help:"Copy a go-oversync v0 deployment (--from) into --database-url, keeping every device's cursor valid; --dry-run reports counts."`
}

// runEnv is what every command's Run gets: the process context and its output streams.
type runEnv struct {
	ctx            context.Context
	stdout, stderr io.Writer
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Exit); err != nil {
		msg := oneLine(err)
		if exitCode(err) == exitUsage {
			msg += ` (see "pulsesync --help")`
		}
		fmt.Fprintln(os.Stderr, "pulsesync:", msg)
		stop()
		os.Exit(exitCode(err))
	}
}

// run parses args and runs the chosen command. exit ends the process after --help and
// --version (kong's way); main passes os.Exit.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, exit func(int)) error {
	var c cli
	parser, err := kong.New(&c,
		kong.Name("pulsesync"),
		kong.Description("A streaming sync server for SQLite clients, on PostgreSQL. Every server flag is also an environment variable (PULSESYNC_<FLAG>) and a key of the --config file; a flag wins over a variable, a variable over the file."),
		kong.Vars{"version": versionLine()},
		kong.Writers(stdout, stderr),
		kong.Exit(exit),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Bind(&runEnv{ctx: ctx, stdout: stdout, stderr: stderr}),
	)
	if err != nil {
		return fmt.Errorf("build the command line: %w", err)
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		return usageError{err.Error()}
	}
	return kctx.Run()
}

// exitCode is exitUsage for mistakes in the command line or settings, exitRuntime otherwise.
func exitCode(err error) int {
	var usageErr usageError
	if errors.As(err, &usageErr) {
		return exitUsage
	}
	return exitRuntime
}

// usageError is a mistake in the command line or the settings.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// oneLine flattens an error to a single line: operators and process supervisors read the
// last line of a failed start, and some causes (PostgreSQL's, JSON's) span several.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// newLogger returns the process logger: JSON lines for serve, readable text for dev.
func newLogger(w io.Writer, level string, text bool) *slog.Logger {
	var lvl slog.Level
	// The level was checked against kong's enum; an unknown one cannot reach here.
	_ = lvl.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lvl}
	if text {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// serveCmd runs a production node.
type serveCmd struct {
	serverFlags `embed:""`
}

// Run starts the node and serves until the process is told to stop.
func (cmd *serveCmd) Run(e *runEnv) error {
	s, err := cmd.parse()
	if err != nil {
		return usageError{err.Error()}
	}
	if s.Addr == "" {
		s.Addr = ":8080"
	}
	return runNode(e.ctx, s, nodeExtras{}, newLogger(e.stderr, s.LogLevel, false))
}
