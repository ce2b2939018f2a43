package pgv1

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// benchRows is a bundle of n INSERTs into business.users, keys unique per (user tag, bundle).
func benchRows(tag, bundle, n int) []PushRow {
	rows := make([]PushRow, n)
	for i := range rows {
		key := fmt.Sprintf("%08x-%04x-4000-8000-%012x", tag, bundle%0xffff, bundle<<16|i)
		rows[i] = usersPushRow("INSERT", key, 0, fmt.Sprintf("user %d", i))
	}
	return rows
}

// Create, one chunk and commit of bundles of 1 and 100 rows by one source, one after another:
// the latency of a whole push, its rows per second, and where the time goes beside SQL (see
// BenchmarkCommitCPU).
func BenchmarkPush(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			s, _ := newTestStore(b, Config{})
			c := Caller{User: "bench", Source: "a"}
			if _, err := s.Connect(b.Context(), c, false); err != nil {
				b.Fatal(err)
			}
			bundles := make([][]PushRow, b.N)
			for i := range bundles {
				bundles[i] = benchRows(0, i, n)
			}
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				mustPush(b, s, c, int64(i+1), bundles[i], pushOpts{})
			}
			b.ReportMetric(float64(b.N*n)/time.Since(start).Seconds(), "rows/s")
		})
	}
}

// 16 sources of 16 users push 100-row bundles concurrently: the store's commit throughput
// (target: 20,000 rows/s on two cores, PostgreSQL durable).
func BenchmarkPushConcurrent16x100(b *testing.B) {
	const sources, n = 16, 100
	pool := newPool(b, sources+4)
	reg, err := Discover(b.Context(), pool, append([]TableSpec(nil), testTables...))
	if err != nil {
		b.Fatal(err)
	}
	s := NewStore(pool, reg, Config{})
	var next atomic.Int64
	b.SetParallelism((sources + 1) / 2) // GOMAXPROCS is 2 on the target machine
	b.ResetTimer()
	start := time.Now()
	var total atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		tag := int(next.Add(1))
		c := Caller{User: fmt.Sprintf("bench%d", tag), Source: "a"}
		if _, err := s.Connect(b.Context(), c, false); err != nil {
			b.Error(err)
			return
		}
		for i := 0; pb.Next(); i++ {
			if _, err := push(b, s, c, int64(i+1), benchRows(tag, i, n), pushOpts{}); err != nil {
				b.Error(err)
				return
			}
			total.Add(n)
		}
	})
	b.ReportMetric(float64(total.Load())/time.Since(start).Seconds(), "rows/s")
}

// The Go side of a 100-row push without the database: chunk validation (JSON, typed values,
// canonical request payloads) and building the bundle (wire rows, bundle hash).
func BenchmarkCommitCPU(b *testing.B) {
	s, _ := newTestStore(b, Config{})
	rows := benchRows(0, 0, 100)
	b.Run("validate-chunk-100", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.validateChunk(0, rows); err != nil {
				b.Fatal(err)
			}
		}
	})
	staged, err := s.validateChunk(0, rows)
	if err != nil {
		b.Fatal(err)
	}
	t := s.reg.lookup("business", "users")
	changes := make([]change, len(staged))
	images := map[*table]map[string][]byte{t: {}}
	for i, r := range staged {
		changes[i] = change{table: t, key: r.key, op: "INSERT"}
		images[t][r.key] = []byte(`{"active":false,"email":null,"id":"` + r.key + `","name":"user","visits":"1"}`)
	}
	b.Run("build-bundle-100", func(b *testing.B) {
		for b.Loop() {
			if _, err := buildBundle(7, changes, images); err != nil {
				b.Fatal(err)
			}
		}
	})
}
