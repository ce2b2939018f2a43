package sequencer_test

import (
	"context"
	"fmt"
	"maps"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pulsesync/pulsesync/internal/pgtest"
	"github.com/pulsesync/pulsesync/internal/servertest"
	"github.com/pulsesync/pulsesync/pg"
	"github.com/pulsesync/pulsesync/sequencer"
)

func TestMain(m *testing.M) {
	pgtest.Main(m, pgtest.Options{Template: servertest.Template})
}

// newPool returns a pool over a fresh migrated database.
func newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pg.Connect(t.Context(), pg.PoolConfig{URL: pgtest.NewDB(t)})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func TestLatest(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	// Users u0 … u24999 have seq 2*i+1; 25,000 users take three chunked queries.
	if _, err := pool.Exec(t.Context(), `INSERT INTO sync.user_seq (user_id, last_seq)
		SELECT 'u' || i, 2 * i + 1 FROM generate_series(0, 24999) AS i`); err != nil {
		t.Fatalf("seed user_seq: %v", err)
	}
	many := make([]string, 25_000)
	wantMany := map[string]int64{}
	for i := range many {
		many[i] = fmt.Sprintf("u%d", i)
		wantMany[many[i]] = int64(2*i + 1)
	}

	tests := []struct {
		name  string
		users []string
		want  map[string]int64
	}{
		{"no users", nil, map[string]int64{}},
		{"one user", []string{"u7"}, map[string]int64{"u7": 15}},
		{"user who never uploaded is absent", []string{"u3", "nobody"}, map[string]int64{"u3": 7}},
		{"duplicates", []string{"u1", "u1"}, map[string]int64{"u1": 3}},
		{"more users than one query takes", many, wantMany},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sequencer.Latest(t.Context(), pool, tt.users)
			if err != nil {
				t.Fatalf("Latest: %v", err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("Latest returned %d users, want %d (first mismatch: %s)", len(got), len(tt.want), firstMismatch(got, tt.want))
			}
		})
	}
}

func TestLatest_CancelledContextFails(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := sequencer.Latest(ctx, pool, []string{"u1"}); err == nil {
		t.Fatal("Latest with a cancelled context succeeded, want an error")
	}
}

// firstMismatch describes one key on which got and want differ.
func firstMismatch(got, want map[string]int64) string {
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			return fmt.Sprintf("%s: got %d (present %v), want %d", k, g, ok, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			return fmt.Sprintf("%s: got %d, want absent", k, g)
		}
	}
	return "none"
}
