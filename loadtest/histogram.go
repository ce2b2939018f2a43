package loadtest

import (
	"math"
	"slices"
	"sync/atomic"
)

// The Trend histogram is log-linear, in the manner of HDR histograms: every
// power of two is split into subCount equal buckets. A bucket spans at most
// 1/128 of its lower bound, and a percentile is reported as its bucket's
// midpoint, so any percentile is within 0.4% of a sample of the right rank
// however many samples are recorded. Memory is fixed per series: rows of
// subCount counters are allocated on first use, one per power of two that
// actually holds samples (typically 10–20 rows, 1 KiB each).
const (
	subBits  = 7
	subCount = 1 << subBits
	// Values below 2^minExp (about 2.3e-10; in milliseconds, 0.2 ps) count
	// as zero; values above 2^maxExp land in the top bucket. Min and max
	// are kept exactly anyway.
	minExp = -32
	maxExp = 64
	numExp = maxExp - minExp + 1
)

type histRow = [subCount]atomic.Uint64

// histogram counts non-negative values lock-free; concurrent Record calls
// never block each other.
type histogram struct {
	zero atomic.Uint64
	rows [numExp]atomic.Pointer[histRow]
}

// bucketOf maps v to its row and sub-bucket; ok is false for values that count as zero.
func bucketOf(v float64) (row, sub int, ok bool) {
	if !(v > 0) { // also NaN
		return 0, 0, false
	}
	frac, exp := math.Frexp(v) // v = frac × 2^exp, frac in [0.5, 1)
	if exp < minExp {
		return 0, 0, false
	}
	if exp > maxExp || math.IsInf(v, 1) {
		return numExp - 1, subCount - 1, true
	}
	return exp - minExp, int((frac - 0.5) * 2 * subCount), true
}

// bucketMid is the midpoint of a bucket, the value reported for ranks in it.
func bucketMid(row, sub int) float64 {
	exp := row + minExp
	width := math.Ldexp(1.0/(2*subCount), exp)
	lo := math.Ldexp(0.5, exp) + float64(sub)*width
	return lo + width/2
}

func (h *histogram) record(v float64) {
	row, sub, ok := bucketOf(v)
	if !ok {
		h.zero.Add(1)
		return
	}
	r := h.rows[row].Load()
	if r == nil {
		r = new(histRow)
		if !h.rows[row].CompareAndSwap(nil, r) {
			r = h.rows[row].Load()
		}
	}
	r[sub].Add(1)
}

// histSnapshot is a point-in-time copy of a histogram; snapshots of several
// series merge by adding counts.
type histSnapshot struct {
	zero uint64
	rows map[int]*[subCount]uint64
}

func (h *histogram) snapshot() histSnapshot {
	s := histSnapshot{zero: h.zero.Load(), rows: map[int]*[subCount]uint64{}}
	for i := range h.rows {
		r := h.rows[i].Load()
		if r == nil {
			continue
		}
		c := new([subCount]uint64)
		for j := range r {
			c[j] = r[j].Load()
		}
		s.rows[i] = c
	}
	return s
}

func (s *histSnapshot) merge(o histSnapshot) {
	if s.rows == nil {
		s.rows = map[int]*[subCount]uint64{}
	}
	s.zero += o.zero
	for i, r := range o.rows {
		c := s.rows[i]
		if c == nil {
			c = new([subCount]uint64)
			s.rows[i] = c
		}
		for j, n := range r {
			c[j] += n
		}
	}
}

// quantile returns k6's percentile: the value at fractional 0-based rank
// q×(n−1), interpolated linearly between the two samples around it, each
// taken as its bucket's midpoint.
func (s histSnapshot) quantile(q float64, n int64) float64 {
	if n <= 0 {
		return 0
	}
	r := q * float64(n-1)
	lo := math.Floor(r)
	a := s.atRank(uint64(lo))
	if r == lo {
		return a
	}
	b := s.atRank(uint64(lo) + 1)
	return a + (b-a)*(r-lo)
}

// atRank returns the midpoint of the bucket holding the 0-based rank-th sample.
func (s histSnapshot) atRank(rank uint64) float64 {
	seen := s.zero
	if rank < seen {
		return 0
	}
	rows := make([]int, 0, len(s.rows))
	for i := range s.rows {
		rows = append(rows, i)
	}
	slices.Sort(rows)
	for _, i := range rows {
		for j, c := range s.rows[i] {
			seen += c
			if rank < seen {
				return bucketMid(i, j)
			}
		}
	}
	// Counts read while other goroutines still record can be short of n.
	if len(rows) == 0 {
		return 0
	}
	return bucketMid(rows[len(rows)-1], subCount-1)
}
