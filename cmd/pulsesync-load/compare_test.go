package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/loadtest"
	"github.com/pulsesync/pulsesync/loadtest/scenarios"
)

func TestCompareScenario_ShapeFromFlags(t *testing.T) {
	var c cli
	set := map[string]bool{}
	fs := newFlags(&c, io.Discard)
	if err := fs.Parse([]string{"--scenario", "compare-polling", "--vus", "40", "--duration", "12s", "--rate", "3", "--devices-per-user", "4"}); err != nil {
		t.Fatal(err)
	}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	opts, err := c.options(set)
	if err != nil {
		t.Fatal(err)
	}
	want, err := scenarios.ComparePolling{Devices: 40, DevicesPerUser: 4, Rate: 3, Window: 12 * time.Second,
		WarmUp: compareWarmUp, PushTimeout: comparePushTimeout}.Scenarios()
	if err != nil {
		t.Fatal(err)
	}
	if len(opts.Scenarios) != len(want) {
		t.Fatalf("got scenarios %v, want the %d of the layout", opts.Scenarios, len(want))
	}
	for name, w := range want {
		g := opts.Scenarios[name]
		if g.Exec != w.Exec || g.VUs != w.VUs || g.Rate != w.Rate || g.StartTime != w.StartTime || g.Duration != w.Duration || !bytes.Equal(g.Params, w.Params) {
			t.Errorf("%s: got %+v, want %+v", name, g, w)
		}
	}
	if err := loadtest.Validate(opts, scenarios.Registry(scenarios.Params{})); err != nil {
		t.Errorf("the preset does not validate: %v", err)
	}
}

func TestCompareScenario_RefusesShapeFlagsAndASecondDatabase(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--scenario", "compare-polling", "--executor", "constant-vus"}, "--executor does not apply"},
		{[]string{"--scenario", "compare-polling", "--max-vus", "5"}, "--max-vus does not apply"},
		{[]string{"--embedded", "--scenario", "storm", "--database-url", "postgres://x"}, "drop --url, --secret and --database-url"},
	} {
		var stderr bytes.Buffer
		if code := run(context.Background(), tc.args, io.Discard, &stderr, os.Getenv); code != exitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr.String(), exitUsage, tc.want)
		}
	}
}
