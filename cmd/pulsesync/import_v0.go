package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pulsesync/pulsesync/pg"
	"github.com/pulsesync/pulsesync/pg/importv0"
)

// importCmd copies a go-oversync v0 deployment's sync state into pulsesync without resetting
// its devices (docs/operations.md "Migrating from go-oversync"). The source URL holds a
// password: it is never printed, only its host and database.
type importCmd struct {
	Config      configFile `name:"config" env:"PULSESYNC_CONFIG" placeholder:"FILE" help:"YAML file of settings, keyed by flag name"`
	DatabaseURL string     `name:"database-url" env:"PULSESYNC_DATABASE_URL,DATABASE_URL" placeholder:"URL" help:"pulsesync's PostgreSQL connection URL, the target (required)"`
	From        string     `name:"from" env:"PULSESYNC_IMPORT_FROM" placeholder:"URL" help:"the go-oversync database's connection URL, only read (required; never printed)"`
	FromSchema  string     `name:"from-schema" env:"PULSESYNC_IMPORT_FROM_SCHEMA" default:"sync" help:"schema of go-oversync's tables in the source (another name if you renamed it to share one database)"`
	DryRun      bool       `name:"dry-run" help:"report what would be imported and write nothing"`
	BatchSize   count      `name:"batch-size" env:"PULSESYNC_IMPORT_BATCH_SIZE" default:"5000" help:"source records written per target transaction"`
}

// Run imports, or with --dry-run reports the plan, and prints the counts.
func (cmd *importCmd) Run(e *runEnv) error {
	switch {
	case cmd.DatabaseURL == "":
		return usageError{"--database-url / PULSESYNC_DATABASE_URL: no target database given"}
	case cmd.From == "":
		return usageError{"--from / PULSESYNC_IMPORT_FROM: no go-oversync database given"}
	case cmd.BatchSize == 0:
		return usageError{"--batch-size / PULSESYNC_IMPORT_BATCH_SIZE: must be at least 1"}
	}
	src, err := pg.Connect(e.ctx, pg.PoolConfig{URL: cmd.From, MaxConns: 2})
	if err != nil {
		return fmt.Errorf("--from / PULSESYNC_IMPORT_FROM: %w", err)
	}
	defer src.Close()
	dst, err := connect(e.ctx, cmd.DatabaseURL, 4)
	if err != nil {
		return err
	}
	defer dst.Close()
	fmt.Fprintf(e.stderr, "go-oversync source %s, pulsesync target %s\n", where(src), where(dst))

	cfg := importv0.Config{SourceSchema: cmd.FromSchema, BatchSize: int(cmd.BatchSize)}
	if cmd.DryRun {
		plan, err := importv0.DryRun(e.ctx, src, dst, cfg)
		if err != nil {
			return importFailure(err)
		}
		printPlan(e.stdout, plan)
		return nil
	}
	if _, err := pg.Migrate(e.ctx, dst); err != nil {
		return fmt.Errorf("migrate the target's sync schema: %w", err)
	}
	if isTerminal(e.stderr) {
		bar := &progressBar{w: e.stderr}
		cfg.Progress = bar.update
		defer bar.end()
	}
	res, err := importv0.Run(e.ctx, src, dst, cfg)
	if err != nil {
		return importFailure(err)
	}
	printPlan(e.stdout, res.Plan)
	fmt.Fprintf(e.stdout, "target now holds: %d changes, %d rows, %d business-row owners, %d failures, %d user sequences (continuing above %d)\n",
		res.Changes, res.Rows, res.Owners, res.Failures, res.Users, res.Floor)
	if res.Orphans > 0 {
		fmt.Fprintf(e.stdout, "not imported: %d source rows without any change-log entry\n", res.Orphans)
	}
	return nil
}

// importFailure says what to do about the refusals an operator can act on.
func importFailure(err error) error {
	switch {
	case errors.Is(err, importv0.ErrTargetNotEmpty), errors.Is(err, importv0.ErrOtherSource):
		return fmt.Errorf("%w (point --database-url at a new database)", err)
	case errors.Is(err, importv0.ErrServed):
		return fmt.Errorf("%w, and the source changed since: stop the go-oversync server and import into a new database", err)
	}
	return err
}

// printPlan prints an import's plan: the source's counts and what the run does.
func printPlan(w io.Writer, plan importv0.Plan) {
	c := plan.Counts
	fmt.Fprintf(w, "source: %d change-log entries (%d deletes) of %d users, highest server_id %d; %d rows (%d deleted); %d materialization failures\n",
		c.Entries, c.Deletes, c.Users, c.Floor, c.Rows, c.Deleted, c.Failures)
	action := plan.Action
	if plan.Phase != "" {
		action += " from the " + plan.Phase + " phase"
	}
	fmt.Fprintln(w, "action:", action)
}

// where names a pool's server and database, never its credentials.
func where(pool *pgxpool.Pool) string {
	cc := pool.Config().ConnConfig
	return fmt.Sprintf("%s:%d/%s", cc.Host, cc.Port, cc.Database)
}

// isTerminal reports whether w is a character device (a terminal), where a progress bar that
// redraws its line belongs; logs and pipes get only the summary.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// progressBar draws an import's progress on one terminal line per phase.
type progressBar struct {
	w     io.Writer
	phase string
	drawn time.Time
}

// barWidth is the bar's length in characters.
const barWidth = 30

// update redraws the line, at most ten times a second and always at a phase's end.
func (b *progressBar) update(p importv0.Progress) {
	if p.Phase != b.phase {
		b.end()
		b.phase = p.Phase
	} else if p.Done < p.Total && time.Since(b.drawn) < 100*time.Millisecond {
		return
	}
	b.drawn = time.Now()
	fmt.Fprint(b.w, "\r"+renderBar(p))
}

// end finishes the current phase's line.
func (b *progressBar) end() {
	if b.phase != "" {
		fmt.Fprintln(b.w)
		b.phase = ""
	}
}

// renderBar draws p as `phase    [=====     ]  50% 5/10`.
func renderBar(p importv0.Progress) string {
	pct := int64(100)
	if p.Total > 0 {
		pct = min(100, p.Done*100/p.Total)
	}
	filled := int(pct) * barWidth / 100
	return fmt.Sprintf("%-8s [%s%s] %3d%% %d/%d", p.Phase, strings.Repeat("=", filled), strings.Repeat(" ", barWidth-filled), pct, p.Done, p.Total)
}
