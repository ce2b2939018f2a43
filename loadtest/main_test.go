package loadtest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// quiet is a logger for tests that only want failures on stderr.
func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// run runs opts with execs and fails the test on a run error.
func run(t *testing.T, opts Options, reg Registry) Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if opts.Logger == nil {
		opts.Logger = quiet()
	}
	sum, err := Run(ctx, opts, reg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return sum
}

// value returns one aggregate of a summary series, failing if it is absent.
func value(t *testing.T, s Summary, series, stat string) float64 {
	t.Helper()
	m, ok := s.Metrics[series]
	if !ok {
		t.Fatalf("summary has no series %q", series)
	}
	v, ok := m.Values[stat]
	if !ok {
		t.Fatalf("series %q has no value %q (has %v)", series, stat, m.Values)
	}
	return v
}

func dur(d time.Duration) Duration { return Duration(d) }

func durPtr(d time.Duration) *Duration {
	v := Duration(d)
	return &v
}

func intPtr(n int) *int { return &n }

// one wraps a single scenario named "s" running exec "e".
func one(sc Scenario, e ExecFunc) (Options, Registry) {
	sc.Exec = "e"
	return Options{Scenarios: map[string]Scenario{"s": sc}}, Registry{
		"e": func(*Env, json.RawMessage) (Exec, error) { return e, nil },
	}
}
