// Command pulsesync-load is the k6-style load generator for pulsesync: it runs
// the protocol scenarios of package loadtest/scenarios from a k6-shaped JSON
// config (--config) or from flags for the one-scenario case, prints k6's
// end-of-test summary and exits 99 when a threshold fails.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pulsesync/pulsesync/internal/loadtarget"
	"github.com/pulsesync/pulsesync/loadtest"
	"github.com/pulsesync/pulsesync/loadtest/scenarios"
)

// Exit codes; 99, 104 and 105 are k6's.
const (
	exitOK               = 0
	exitError            = 1
	exitUsage            = 2
	exitThresholdsFailed = 99
	exitInvalidConfig    = 104
	exitInterrupted      = 105
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal stops the test and still prints the summary; once it
	// has arrived, the default handling is back, so a second one kills.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// cli holds the parsed flags.
type cli struct {
	config, summaryExport, logLevel string
	trendStats, out                 string
	thresholds                      thresholdFlags
	stages                          stageFlags

	scenario, executor            string
	vus, iterations, preAllocated int
	maxVUs                        int
	duration, timeUnit            time.Duration
	rate                          float64
	seed                          uint64

	params                                   scenarios.Params
	tokenTTL, timeout, pushTTL, pollInterval time.Duration

	embedded bool
	nodes    int
	address  string
}

// shapeFlags describe a single scenario and make no sense with --config.
func shapeFlags() []string {
	return []string{"scenario", "executor", "vus", "duration", "iterations", "stage", "rate", "time-unit", "pre-allocated-vus", "max-vus", "seed"}
}

func newFlags(c *cli, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("pulsesync-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.config, "config", "", "k6-shaped options `file` ({\"scenarios\": {...}, \"thresholds\": {...}}); see loadtest/scenarios/*.json")
	fs.StringVar(&c.summaryExport, "summary-export", "", "write every metric's aggregates and the threshold results as JSON to `file`")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level on stderr: debug, info, warn or error")
	fs.StringVar(&c.out, "out", "", "write every sample to an output: json=`file`, one JSON line per sample in k6's JSON output format")
	fs.StringVar(&c.trendStats, "summary-trend-stats", "", "comma-separated trend values the summary shows, e.g. 'avg,med,p(99.9),max' (avg, min, med, max, count, p(N)); overrides the config's summaryTrendStats")
	fs.StringVar(&c.address, "address", defaultAddress, "serve the control API (k6's REST API: GET and PATCH /v1/status) on `host:port`, for the verbs status, scale, pause, resume and stop; empty: none")
	fs.Var(&c.thresholds, "threshold", "add a threshold `selector=expr`, e.g. 'http_req_duration{endpoint:upload}=p(99)<50' (repeatable)")

	fs.StringVar(&c.scenario, "scenario", "", "run one scenario without --config: upload, download, poll, idle_ws, push_listener, push_uploader, v1_push, v1_pull, v1_snapshot, v1_watch or v1_watch_uploader; or push (v0) or watch (v1): --vus listeners (default 100) and, after a warm-up of a fifth of --duration, --rate uploads per --time-unit (default 20) for their users, measuring push_latency or watch_latency")
	fs.StringVar(&c.executor, "executor", "", "executor of --scenario: constant-vus, ramping-vus, constant-arrival-rate, ramping-arrival-rate, per-vu-iterations, shared-iterations or externally-controlled (--vus at the start, at most --max-vus, for --duration, 0: until stopped); default ramping-vus with --stage, constant-arrival-rate with --rate, shared-iterations with --iterations, else constant-vus")
	fs.IntVar(&c.vus, "vus", 1, "VUs of --scenario (constant-vus, per-vu-iterations, shared-iterations; startVUs of ramping-vus)")
	fs.DurationVar(&c.duration, "duration", 30*time.Second, "duration of --scenario (constant-vus, constant-arrival-rate)")
	fs.IntVar(&c.iterations, "iterations", 0, "iterations of --scenario: shared among the VUs (shared-iterations) or per VU (per-vu-iterations)")
	fs.Var(&c.stages, "stage", "add a stage `duration:target` to --scenario, e.g. 30s:100 (repeatable; ramping-vus: target VUs, ramping-arrival-rate: target rate per --time-unit)")
	fs.Float64Var(&c.rate, "rate", 0, "iterations started per --time-unit (constant-arrival-rate; startRate of ramping-arrival-rate)")
	fs.DurationVar(&c.timeUnit, "time-unit", time.Second, "time unit of --rate and of ramping-arrival-rate's targets")
	fs.IntVar(&c.preAllocated, "pre-allocated-vus", 0, "VUs ready at the start (arrival-rate executors); default --vus")
	fs.IntVar(&c.maxVUs, "max-vus", 0, "most VUs (arrival-rate executors, default --pre-allocated-vus; externally-controlled, default --vus)")
	fs.Uint64Var(&c.seed, "seed", 0, "seed of the VUs' random sources for --scenario")

	p := &c.params
	fs.StringVar(&p.URL, "url", "", "server base URL (default http://127.0.0.1:8080)")
	fs.StringVar(&p.Secret, "secret", "", "HS256 secret for minting tokens; prefer the JWT_SECRET environment variable, which is used when this is empty (default: the dev secret)")
	fs.IntVar(&p.Users, "users", 0, "users of each scenario's pool (load-user-<run tag>-<pool>-1…) the VUs are spread over (default 100)")
	fs.IntVar(&p.DevicesPerUser, "devices-per-user", 0, "consecutive VUs that share a user (default 1)")
	fs.DurationVar(&c.tokenTTL, "token-ttl", 0, "lifetime of minted tokens (default 1h)")
	fs.DurationVar(&c.timeout, "timeout", 0, "bound of one request or handshake (default 60s)")
	fs.StringVar(&p.Schema, "schema", "", "schema of the business tables (default business; v1 scenarios app)")
	fs.StringVar(&p.RunTag, "run-tag", "auto", "tag put into device ids and row ids so runs against one database never collide; auto: derived from the clock; none: no tag")
	fs.IntVar(&p.Batch, "batch", 0, "INSERTs per upload request (upload; default 100)")
	fs.IntVar(&p.Rows, "rows", 0, "INSERTs per pushed v1 bundle (v1_push, v1_watch_uploader; default 100)")
	fs.IntVar(&p.PrefillRows, "prefill-rows", 0, "rows uploaded before the measured phase (upload, poll; download, v1_pull, v1_snapshot default 100000)")
	fs.IntVar(&p.PrefillBatch, "prefill-batch", 0, "rows per prefill request or v1 bundle (default 1000)")
	fs.IntVar(&p.PrefillConcurrency, "prefill-concurrency", 0, "concurrent prefill requests (default 8)")
	fs.IntVar(&p.Limit, "limit", 0, "download page size, v1 pull page in bundles or v1 snapshot chunk in rows, 1…1000 (download, poll, v1_pull, v1_snapshot; default 1000)")
	fs.StringVar(&p.Transport, "transport", "", "push listener transport: ws or sse (default ws)")
	fs.DurationVar(&c.pushTTL, "push-timeout", 0, "a listener not told about an upload this long after it started counts in push_missed (default 5s)")
	fs.IntVar(&p.Connections, "connections", 0, "idle WebSockets to hold (idle_ws; default 1000)")
	fs.IntVar(&p.SourceIPs, "source-ips", 0, "spread client sockets over 127.0.0.2…127.0.0.(1+N) (idle_ws, push_listener)")
	fs.IntVar(&p.ServerPID, "server-pid", 0, "sample this server process's RSS and report memory per connection (idle_ws), or measure its CPU (compare_meter)")
	fs.StringVar(&p.DatabaseURL, "database-url", "", "the server's PostgreSQL, to measure its CPU and transactions (compare_meter); --embedded knows its own")
	fs.DurationVar(&c.pollInterval, "poll-interval", 0, "how often a polling device downloads (compare_poller; default 1s)")

	fs.BoolVar(&c.embedded, "embedded", false, "run against a throwaway deployment started in this process: PostgreSQL from the machine's binaries, --nodes pulsesync nodes on the demo tables (and in-process NATS between them), torn down at the end; excludes --url and --secret")
	fs.IntVar(&c.nodes, "nodes", 1, "pulsesync nodes of --embedded; scenarios, in name order, are served by the nodes in turn")

	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `pulsesync-load runs k6-style load tests against a pulsesync server.

Usage:
  pulsesync-load --config loadtest/scenarios/upload-batch100.json [flags]
  pulsesync-load --scenario upload --vus 16 --duration 30s --batch 100 [flags]
  pulsesync-load --embedded --scenario push --duration 10s [flags]
  pulsesync-load status|scale|pause|resume|stop [--address host:port] [--vus N]

The verbs steer a running test through its control API (--address), as k6's
do: scale sets an externally-controlled scenario's VUs.

Flags that set scenario params (--url, --users, --batch, ...) override the
config file's params in every scenario that takes them.

Exit codes: 0 all thresholds passed; 99 a threshold failed; 104 invalid
options; 105 interrupted; 1 another error (e.g. setup failed); 2 bad usage.

Flags:
`)
		fs.PrintDefaults()
	}
	return fs
}

// thresholdFlags collects --threshold selector=expr.
type thresholdFlags map[string][]loadtest.Threshold

// String is required by flag.Value; the collected thresholds have no one-line form.
func (t *thresholdFlags) String() string { return "" }

// Set adds one selector=expr.
func (t *thresholdFlags) Set(v string) error {
	sel, expr, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(sel) == "" || strings.TrimSpace(expr) == "" {
		return fmt.Errorf("want selector=expr, e.g. http_req_failed=rate<0.01")
	}
	if *t == nil {
		*t = thresholdFlags{}
	}
	sel = strings.TrimSpace(sel)
	(*t)[sel] = append((*t)[sel], loadtest.Threshold{Expr: strings.TrimSpace(expr)})
	return nil
}

// stageFlags collects --stage duration:target.
type stageFlags []loadtest.Stage

// String is required by flag.Value; the collected stages have no one-line form.
func (s *stageFlags) String() string { return "" }

// Set adds one duration:target.
func (s *stageFlags) Set(v string) error {
	d, t, ok := strings.Cut(v, ":")
	dur, err := time.ParseDuration(strings.TrimSpace(d))
	if !ok || err != nil || dur < 0 {
		return fmt.Errorf("want duration:target, e.g. 30s:100")
	}
	target, err := strconv.Atoi(strings.TrimSpace(t))
	if err != nil || target < 0 {
		return fmt.Errorf("want duration:target with a target of 0 or more, e.g. 30s:100")
	}
	*s = append(*s, loadtest.Stage{Duration: loadtest.Duration(dur), Target: target})
	return nil
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) > 0 && verbs[args[0]] != "" {
		return runVerb(ctx, args[0], args[1:], stdout, stderr)
	}
	var c cli
	fs := newFlags(&c, stderr)
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		fmt.Fprintf(stderr, "--log-level: %v\n", err)
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if err := c.checkTarget(set); err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}

	opts, err := c.options(set)
	switch {
	case errors.Is(err, loadtest.ErrBadOptions):
		fmt.Fprintf(stderr, "invalid options: %v\n", err)
		return exitInvalidConfig
	case err != nil:
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	opts.Logger = log
	if isTerminal(stderr) {
		opts.Progress = stderr
	}
	if c.out != "" {
		f, err := createOut(c.out)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitUsage
		}
		defer func() {
			if err := f.Close(); err != nil {
				fmt.Fprintf(stderr, "close --out file: %v\n", err)
			}
		}()
		opts.SampleOut = f
	}
	if c.address != "" {
		opts.Control = loadtest.NewControl()
		wait, err := serveControl(ctx, c.address, opts.Control, log)
		switch {
		case err != nil && hasExternal(opts):
			fmt.Fprintf(stderr, "%v: the externally-controlled scenario needs it\n", err)
			return exitError
		case err != nil:
			log.Warn("running without a control API", "err", err)
			opts.Control = nil
		default:
			defer wait()
		}
	}
	overrides := c.overrides(getenv)
	if overrides.RunTag != "" {
		log.Info("run tag", "run_tag", overrides.RunTag)
	}
	reg := scenarios.Registry(overrides)
	if overrides.URL != "" {
		opts.Target = overrides.URL
	}
	if c.embedded {
		if err := loadtest.Validate(opts, reg); err != nil {
			// Refuse bad options before spending seconds on a database.
			fmt.Fprintf(stderr, "invalid options: %v\n", err)
			return exitInvalidConfig
		}
		target, err := loadtarget.Start(ctx, loadtarget.Config{Nodes: c.nodes, Logger: log})
		if err != nil {
			fmt.Fprintf(stderr, "--embedded: %v\n", err)
			return exitError
		}
		defer target.Close()
		overrides.Secret = target.Secret
		overrides.DatabaseURL, overrides.ServerInProcess = target.DatabaseURL, true
		var placed string
		reg, placed = spreadOverNodes(slices.Collect(maps.Keys(opts.Scenarios)), overrides, target.URLs)
		opts.Target = target.Describe()
		if c.nodes > 1 {
			opts.Target += "; scenarios: " + placed
		}
	}

	sum, err := loadtest.Run(ctx, opts, reg)
	switch {
	case errors.Is(err, loadtest.ErrBadOptions), errors.Is(err, loadtest.ErrUnknownExec), errors.Is(err, loadtest.ErrBadThreshold):
		fmt.Fprintf(stderr, "invalid options: %v\n", err)
		return exitInvalidConfig
	case err != nil && !errors.Is(err, loadtest.ErrInterrupted):
		fmt.Fprintln(stderr, err)
		return exitError
	}
	sum.Notes = append(sum.Notes, scenarios.SummaryNotes(sum)...)
	if werr := sum.WriteText(stdout); werr != nil {
		fmt.Fprintf(stderr, "write summary: %v\n", werr)
		return exitError
	}
	if c.summaryExport != "" {
		if werr := export(c.summaryExport, sum); werr != nil {
			fmt.Fprintln(stderr, werr)
			return exitError
		}
	}
	switch {
	case err != nil:
		fmt.Fprintln(stderr, err)
		return exitInterrupted
	case !sum.Passed():
		fmt.Fprintln(stderr, "some thresholds have failed")
		return exitThresholdsFailed
	}
	return exitOK
}

// parseFlags parses args into fs. When it returns false the command ends with code: 0 after
// --help, 2 for a bad flag or a stray argument (said on stderr).
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return exitUsage, false
	}
	return exitOK, true
}

// checkTarget refuses flag combinations that name two targets.
func (c *cli) checkTarget(set map[string]bool) error {
	switch {
	case c.embedded && (set["url"] || set["secret"] || set["database-url"]):
		return errors.New("--embedded starts its own target: drop --url, --secret and --database-url")
	case set["nodes"] && !c.embedded:
		return errors.New("--nodes applies to --embedded only")
	case c.nodes < 1:
		return errors.New("--nodes must be at least 1")
	}
	return nil
}

// options builds the test from --config or from the shape flags. Problems with the config
// file wrap loadtest.ErrBadOptions (k6's exit code 104); the others are bad usage.
func (c *cli) options(set map[string]bool) (loadtest.Options, error) {
	var opts loadtest.Options
	if c.config != "" {
		for _, f := range shapeFlags() {
			if set[f] {
				return opts, fmt.Errorf("--%s describes a scenario of its own and cannot be combined with --config", f)
			}
		}
		data, err := os.ReadFile(c.config)
		if err != nil {
			return opts, fmt.Errorf("%w: read --config: %w", loadtest.ErrBadOptions, err)
		}
		if opts, err = loadtest.ParseOptions(data); err != nil {
			return opts, fmt.Errorf("--config %s: %w", c.config, err)
		}
	} else {
		if c.scenario == "" {
			return opts, errors.New("either --config or --scenario is required (see --help)")
		}
		if c.scenario == "compare-polling" {
			sc, err := c.comparePollingScenarios(set)
			if err != nil {
				return opts, err
			}
			opts.Scenarios = sc
		} else if pair, ok := pairPresets[c.scenario]; ok {
			sc, err := c.pairScenarios(set, pair.listen, pair.upload)
			if err != nil {
				return opts, err
			}
			opts.Scenarios = sc
		} else {
			opts.Scenarios = map[string]loadtest.Scenario{c.scenario: c.flagScenario()}
		}
	}
	if c.trendStats != "" {
		opts.SummaryTrendStats = strings.Split(strings.ReplaceAll(c.trendStats, " ", ""), ",")
	}
	for sel, th := range c.thresholds {
		if opts.Thresholds == nil {
			opts.Thresholds = map[string][]loadtest.Threshold{}
		}
		opts.Thresholds[sel] = append(opts.Thresholds[sel], th...)
	}
	return opts, nil
}

// flagScenario is the single scenario the shape flags describe, chosen as k6 chooses for its
// shortcut options; flags the executor does not take are left out (the engine's validation
// then names what is missing).
func (c *cli) flagScenario() loadtest.Scenario {
	sc := loadtest.Scenario{Executor: c.executor, Exec: c.scenario, Seed: c.seed}
	if sc.Executor == "" {
		switch {
		case len(c.stages) > 0:
			sc.Executor = loadtest.RampingVUs
		case c.rate > 0:
			sc.Executor = loadtest.ConstantArrivalRate
		case c.iterations > 0:
			sc.Executor = loadtest.SharedIterations
		default:
			sc.Executor = loadtest.ConstantVUs
		}
	}
	switch sc.Executor {
	case loadtest.ConstantVUs:
		sc.VUs, sc.Duration = c.vus, loadtest.Duration(c.duration)
	case loadtest.PerVUIterations, loadtest.SharedIterations:
		sc.VUs, sc.Iterations = c.vus, c.iterations
	case loadtest.ExternallyControlled:
		sc.VUs, sc.MaxVUs, sc.Duration = c.vus, c.maxVUs, loadtest.Duration(c.duration)
	case loadtest.RampingVUs:
		sc.StartVUs, sc.Stages = &c.vus, c.stages
	case loadtest.ConstantArrivalRate, loadtest.RampingArrivalRate:
		sc.TimeUnit, sc.PreAllocatedVUs, sc.MaxVUs = loadtest.Duration(c.timeUnit), c.preAllocated, c.maxVUs
		if sc.PreAllocatedVUs == 0 {
			sc.PreAllocatedVUs = c.vus
		}
		if sc.Executor == loadtest.ConstantArrivalRate {
			sc.Rate, sc.Duration = c.rate, loadtest.Duration(c.duration)
		} else {
			sc.StartRate, sc.Stages = c.rate, c.stages
		}
	}
	return sc
}

// hasExternal reports whether a scenario of opts is externally-controlled.
func hasExternal(opts loadtest.Options) bool {
	for _, sc := range opts.Scenarios {
		if sc.Executor == loadtest.ExternallyControlled {
			return true
		}
	}
	return false
}

// overrides are the params the flags set, applied to every scenario.
func (c *cli) overrides(getenv func(string) string) scenarios.Params {
	p := c.params
	p.TokenTTL, p.Timeout, p.PushTimeout = loadtest.Duration(c.tokenTTL), loadtest.Duration(c.timeout), loadtest.Duration(c.pushTTL)
	p.PollInterval = loadtest.Duration(c.pollInterval)
	if p.Secret == "" {
		p.Secret = getenv("JWT_SECRET")
	}
	switch p.RunTag {
	case "auto":
		p.RunTag = strconv.FormatInt(time.Now().Unix(), 36)
	case "none":
		p.RunTag = ""
	}
	return p
}

// isTerminal reports whether w is a terminal (a character device), where a
// progress line that rewrites itself reads well; a file or pipe gets none.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// createOut opens the file of --out json=FILE.
func createOut(spec string) (*os.File, error) {
	kind, path, ok := strings.Cut(spec, "=")
	if !ok || kind != "json" || path == "" {
		return nil, fmt.Errorf("--out %q: want json=FILE", spec)
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create --out file: %w", err)
	}
	return f, nil
}

func export(path string, sum loadtest.Summary) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create --summary-export file: %w", err)
	}
	if err := sum.WriteJSON(f); err != nil {
		f.Close()
		return fmt.Errorf("write --summary-export file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write --summary-export file: %w", err)
	}
	return nil
}
