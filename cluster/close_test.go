package cluster_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/pulsesync/pulsesync/cluster"
	"github.com/pulsesync/pulsesync/push"
	"github.com/pulsesync/pulsesync/sequencer"
)

// Not parallel: goleak compares the goroutines of the whole test binary before and after.
func TestClose_StopsEveryGoroutine(t *testing.T) {
	tests := []struct {
		name      string
		withNATS  bool
		natsDown  bool
		announced bool // an advance waits in the NOTIFY coalescer when Close is called
	}{
		{name: "nats", withNATS: true},
		{name: "nats down", withNATS: true, natsDown: true},
		{name: "listen with a pending notification", announced: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, tt.withNATS)
			if tt.natsDown {
				r.nats.Stop()
			}
			pool := connect(t, r.url)
			observer := listenAsObserver(t, r.url)
			ignore := goleak.IgnoreCurrent()

			hub, wm := push.NewHub(), sequencer.NewWatermarks(sequencer.WatermarksConfig{})
			cfg := cluster.Config{Pool: pool, Hub: hub, Watermarks: wm, ReconcileEvery: 10 * time.Millisecond, FlushEvery: time.Hour}
			if r.nats != nil {
				cfg.NATSURL = r.nats.URL()
			}
			n, err := cluster.Start(t.Context(), cfg)
			if err != nil {
				t.Fatalf("start: %v", err)
			}
			sub := hub.Subscribe(push.SubscribeOptions{User: "alice", Wake: func() {}})
			defer sub.Close()
			if err := n.Watch(t.Context(), "alice"); err != nil {
				t.Fatalf("watch: %v", err)
			}
			if !tt.natsDown {
				waitFor(t, stateWithin, "healthy", n.Healthy)
			}
			if tt.announced {
				n.Announce(sequencer.Advance{User: "alice", Seq: 1})
			}
			n.Close()
			n.Close() // a second Close does nothing

			goleak.VerifyNone(t, ignore)
			if n.Healthy() {
				t.Error("node healthy after Close")
			}
			if _, ok := wm.Lookup("alice"); ok {
				t.Error("watermarks trusted after Close")
			}
			if err := n.Watch(t.Context(), "alice"); !errors.Is(err, cluster.ErrClosed) {
				t.Errorf("Watch after Close: %v, want ErrClosed", err)
			}
			if tt.announced {
				payload := observer(t)
				if !strings.Contains(payload, `"u":"alice"`) {
					t.Errorf("notification sent at Close = %s, want alice's advance", payload)
				}
			}
		})
	}
}

// listenAsObserver opens a LISTEN connection of the test's own and returns a function that
// waits for the next notification's payload.
func listenAsObserver(t *testing.T, url string) func(t *testing.T) string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect observer: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	if _, err := conn.Exec(t.Context(), "LISTEN pulsesync_advances"); err != nil {
		t.Fatalf("observer LISTEN: %v", err)
	}
	return func(t *testing.T) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), deliverWithin)
		defer cancel()
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			t.Fatalf("observer: no notification: %v", err)
		}
		return n.Payload
	}
}

func TestStart_RequiresPoolHubAndWatermarks(t *testing.T) {
	t.Parallel()
	r := newRig(t, false)
	pool := connect(t, r.url)
	hub, wm := push.NewHub(), sequencer.NewWatermarks(sequencer.WatermarksConfig{})
	for name, cfg := range map[string]cluster.Config{
		"no pool":       {Hub: hub, Watermarks: wm},
		"no hub":        {Pool: pool, Watermarks: wm},
		"no watermarks": {Pool: pool, Hub: hub},
	} {
		if n, err := cluster.Start(t.Context(), cfg); err == nil {
			n.Close()
			t.Errorf("%s: Start succeeded, want an error", name)
		}
	}
}

func TestStart_InvalidNATSURLKeepsCredentialsOutOfError(t *testing.T) {
	t.Parallel()
	r := newRig(t, false)
	cfg := cluster.Config{Pool: connect(t, r.url), Hub: push.NewHub(), Watermarks: sequencer.NewWatermarks(sequencer.WatermarksConfig{}),
		NATSURL: "nats://user:s3cret@127.0.0.1:notaport"}
	n, err := cluster.Start(t.Context(), cfg)
	if err == nil {
		n.Close()
		t.Fatal("Start with an invalid NATS URL succeeded, want an error")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %q reveals the password", err)
	}
}
