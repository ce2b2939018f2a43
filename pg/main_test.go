package pg

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pulsesync/pulsesync/internal/demo"
	"github.com/pulsesync/pulsesync/internal/pgtest"
)

func TestMain(m *testing.M) {
	pgtest.Main(m, pgtest.Options{Template: func(ctx context.Context, url string) error {
		pool, err := Connect(ctx, PoolConfig{URL: url})
		if err != nil {
			return err
		}
		defer pool.Close()
		if _, err := Migrate(ctx, pool); err != nil {
			return err
		}
		_, err = pool.Exec(ctx, demo.SchemaSQL)
		return err
	}})
}

// newStore returns a Store over a fresh database with the demo tables registered.
func newStore(t testing.TB, cfg StoreConfig) (*Store, *pgxpool.Pool) {
	t.Helper()
	return newStoreWith(t, cfg, "")
}

// newStoreWithTables returns a Store over a fresh database in which ddl has run first, with the
// demo tables and the extra tables ("schema.table") registered.
func newStoreWithTables(t testing.TB, ddl string, extra ...string) (*Store, *pgxpool.Pool) {
	t.Helper()
	return newStoreWith(t, StoreConfig{}, ddl, extra...)
}

func newStoreWith(t testing.TB, cfg StoreConfig, ddl string, extra ...string) (*Store, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	pool, err := Connect(ctx, PoolConfig{URL: pgtest.NewDB(t), MaxConns: 40})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(pool.Close)
	if ddl != "" {
		if _, err := pool.Exec(ctx, ddl); err != nil {
			t.Fatalf("prepare tables: %v", err)
		}
	}
	var names []TableName
	for _, n := range append(demo.Tables(), extra...) {
		name, err := ParseTableName(n)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	reg, err := Discover(ctx, pool, names)
	if err != nil {
		t.Fatalf("discover: %v", err)
	}
	return NewStore(pool, reg, cfg), pool
}

// upsert builds an INSERT of a demo user row.
func userChange(scid int64, pk string, base int64, name string) ChangeInput {
	payload, _ := json.Marshal(map[string]string{"id": pk, "name": name, "email": name + "@example.com"})
	return ChangeInput{SourceChangeID: scid, Schema: "business", Table: "users", Op: "INSERT", PK: pk, BaseVersion: base, Payload: payload}
}

// upload runs Store.Upload and fails the test on error.
func upload(t testing.TB, s *Store, user, source string, changes ...ChangeInput) UploadResult {
	t.Helper()
	res, err := s.Upload(context.Background(), user, source, changes)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	if len(res.Outcomes) != len(changes) {
		t.Fatalf("upload: %d outcomes for %d changes", len(res.Outcomes), len(changes))
	}
	return res
}
