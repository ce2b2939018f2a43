package scenarios

import (
	"math"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/loadtest"
)

func TestBoard_PairsUploadsWithListenerFrames(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type want struct {
		latencies     []float64 // ms, in any order; checked by count, min and max
		afterResp     float64   // max of push_latency_after_response
		beforeResp    float64
		missed        float64
		checkAfterMax bool
	}
	cases := []struct {
		name string
		run  func(b *board)
		want want
	}{
		{"frame after response", func(b *board) {
			l := b.join("u1", 0, at(0))
			b.publish("u1", 5, at(1), at(3))
			b.frame(l, 5, at(4))
		}, want{latencies: []float64{3}, afterResp: 1, checkAfterMax: true}},
		{"push beats the response", func(b *board) {
			l := b.join("u1", 0, at(0))
			b.frame(l, 5, at(2))
			b.publish("u1", 5, at(1), at(3))
		}, want{latencies: []float64{1}, afterResp: 0, beforeResp: 1, checkAfterMax: true}},
		{"one coalesced frame answers two uploads", func(b *board) {
			l := b.join("u1", 0, at(0))
			b.publish("u1", 5, at(1), at(2))
			b.publish("u1", 6, at(3), at(4))
			b.frame(l, 6, at(6))
		}, want{latencies: []float64{5, 3}}},
		{"every listener of the user, and only of that user", func(b *board) {
			l1 := b.join("u1", 0, at(0))
			l2 := b.join("u1", 0, at(0))
			other := b.join("u2", 0, at(0))
			b.publish("u1", 5, at(1), at(2))
			b.frame(l1, 5, at(3))
			b.frame(l2, 5, at(5))
			b.frame(other, 9, at(4))
		}, want{latencies: []float64{2, 4}}},
		{"a frame below the upload's seq does not answer it", func(b *board) {
			l := b.join("u1", 0, at(0))
			b.publish("u1", 5, at(1), at(2))
			b.frame(l, 4, at(3))
			b.frame(l, 5, at(9))
		}, want{latencies: []float64{8}}},
		{"listener that joined after the upload started is not expected", func(b *board) {
			b.publish("u1", 5, at(1), at(2))
			l := b.join("u1", 5, at(3))
			b.frame(l, 5, at(4))
		}, want{}},
		{"unanswered past the timeout is missed", func(b *board) {
			b.join("u1", 0, at(0))
			b.publish("u1", 5, at(1), at(2))
			b.publish("u1", 6, at(6000), at(6001)) // prunes the first
		}, want{missed: 1}},
		{"leaving before the timeout is not a miss", func(b *board) {
			l := b.join("u1", 0, at(0))
			b.publish("u1", 5, at(1), at(2))
			b.leave(l, at(10))
			b.sweep(at(60000))
		}, want{}},
		{"leaving after the timeout is a miss", func(b *board) {
			l := b.join("u1", 0, at(0))
			b.publish("u1", 5, at(1), at(2))
			b.leave(l, at(5002))
		}, want{missed: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := loadtest.NewMetrics()
			b := newBoard(m, "push", 5*time.Second)
			tc.run(b)
			get := func(sel, stat string) float64 {
				t.Helper()
				v, err := m.Values(sel, time.Second)
				if err != nil {
					t.Fatal(err)
				}
				return v[stat]
			}
			lat := tc.want.latencies
			if n := get("push_latency", "count"); int(n) != len(lat) {
				t.Fatalf("push_latency count = %v, want %d", n, len(lat))
			}
			if len(lat) > 0 {
				lo, hi := math.Inf(1), math.Inf(-1)
				for _, v := range lat {
					lo, hi = math.Min(lo, v), math.Max(hi, v)
				}
				if get("push_latency", "min") != lo || get("push_latency", "max") != hi {
					t.Errorf("push_latency min/max = %v/%v, want %v/%v",
						get("push_latency", "min"), get("push_latency", "max"), lo, hi)
				}
			}
			if tc.want.checkAfterMax && get("push_latency_after_response", "max") != tc.want.afterResp {
				t.Errorf("push_latency_after_response max = %v, want %v", get("push_latency_after_response", "max"), tc.want.afterResp)
			}
			if got := get("push_before_response", "count"); got != tc.want.beforeResp {
				t.Errorf("push_before_response = %v, want %v", got, tc.want.beforeResp)
			}
			if got := get("push_missed", "count"); got != tc.want.missed {
				t.Errorf("push_missed = %v, want %v", got, tc.want.missed)
			}
		})
	}
}
