package cluster

import "testing"

func TestBackoff_GrowsWithJitterUpToTheCap(t *testing.T) {
	var b backoff
	ceiling := listenBackoffMin
	for range 12 {
		d := b.next()
		if d < ceiling/2 || d > ceiling {
			t.Fatalf("wait %s outside [%s, %s]", d, ceiling/2, ceiling)
		}
		ceiling = min(2*ceiling, listenBackoffMax)
	}
	if b.cur != listenBackoffMax {
		t.Errorf("after 12 failures the ceiling is %s, want the cap %s", b.cur, listenBackoffMax)
	}
}
