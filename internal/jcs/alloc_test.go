//go:build !race

// The race detector makes sync.Pool drop items at random, so allocation counts are only
// meaningful without it.

package jcs

import "testing"

func TestCanonicalize_AllocatesOnlyItsOutput(t *testing.T) {
	in := []byte(vectors[0].input)
	dst := make([]byte, 0, 1024)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := AppendCanonical(dst[:0], in); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("AppendCanonical into a large enough dst: %v allocations per run, want 0", allocs)
	}
}
