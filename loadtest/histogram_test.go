package loadtest

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestTrend_PercentilesWithinOnePercent compares the histogram's percentiles
// with exact ones from the sorted samples of a wide, skewed distribution.
func TestTrend_PercentilesWithinOnePercent(t *testing.T) {
	const n = 1_000_000
	r := rand.New(rand.NewPCG(1, 2))
	m := NewMetrics()
	trend := m.Trend("lat", Time, nil)
	samples := make([]float64, n)
	for i := range samples {
		v := math.Exp(r.NormFloat64()*1.5) * 3 // log-normal around 3 ms, spanning µs to seconds
		samples[i] = v
		trend.Add(v)
	}
	slices.Sort(samples)
	a := m.lookup("lat").aggregate(nil)
	for _, p := range []float64{1, 10, 50, 90, 95, 99, 99.9, 99.99} {
		r := p / 100 * float64(n-1)
		lo := math.Floor(r)
		want := samples[int(lo)]
		if r > lo {
			want += (samples[int(lo)+1] - want) * (r - lo)
		}
		got := a.percentile(p)
		if rel := math.Abs(got-want) / want; rel > 0.01 {
			t.Errorf("p(%v) = %v, sorted reference %v (error %.3f%%)", p, got, want, rel*100)
		}
	}
	if a.min != samples[0] || a.max != samples[n-1] {
		t.Errorf("min/max = %v/%v, want exactly %v/%v", a.min, a.max, samples[0], samples[n-1])
	}
	var rows int
	for i := range m.lookup("lat").series[""].hist.rows {
		if m.lookup("lat").series[""].hist.rows[i].Load() != nil {
			rows++
		}
	}
	if rows > 40 {
		t.Errorf("histogram allocated %d rows for a distribution spanning ~2^25; memory is not bounded by range", rows)
	}
}

func TestBucketOf_EdgeValues(t *testing.T) {
	cases := []struct {
		v      float64
		wantOK bool
	}{
		{0, false}, {-1, false}, {math.NaN(), false}, {1e-300, false},
		{1, true}, {math.MaxFloat64, true}, {math.Inf(1), true},
	}
	for _, tc := range cases {
		row, sub, ok := bucketOf(tc.v)
		if ok != tc.wantOK || row < 0 || row >= numExp || sub < 0 || sub >= subCount {
			t.Errorf("bucketOf(%v) = %d, %d, %v; want ok=%v in range", tc.v, row, sub, ok, tc.wantOK)
		}
	}
	if row, sub, _ := bucketOf(1); math.Abs(bucketMid(row, sub)-1)/1 > 1.0/256 {
		t.Errorf("bucketMid of 1's bucket = %v, want within 1/256", bucketMid(row, sub))
	}
}
