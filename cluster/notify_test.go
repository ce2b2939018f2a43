package cluster

import (
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/sequencer"
)

func TestMerge(t *testing.T) {
	t1, t2 := time.Unix(100, 0), time.Unix(200, 0)
	adv := func(from, seq int64, source string, schemas ...string) sequencer.Advance {
		return sequencer.Advance{User: "alice", From: from, Seq: seq, Source: source, Schemas: schemas}
	}
	tests := []struct {
		name string
		a, b sequencer.Advance
		want sequencer.Advance
	}{
		{"contiguous, one source", adv(1, 3, "phone", "business"), adv(4, 5, "phone", "business"), adv(1, 5, "phone", "business")},
		{"contiguous, announced out of order", adv(4, 5, "phone", "business"), adv(1, 3, "phone", "business"), adv(1, 5, "phone", "business")},
		{"contiguous, two sources", adv(1, 3, "phone", "business"), adv(4, 5, "laptop", "business"), adv(1, 5, "", "business")},
		{"schemas united", adv(1, 3, "phone", "business"), adv(4, 5, "phone", "crm", "business"), adv(1, 5, "phone", "business", "crm")},
		{"unknown schemas win", adv(1, 3, "phone", "business"), adv(4, 5, "phone"), adv(1, 5, "phone")},
		{"overlapping", adv(1, 5, "phone", "business"), adv(3, 4, "phone", "business"), adv(1, 5, "phone", "business")},
		// Commits 4…6 were announced by another node: nobody here knows who made them.
		{"gap between ranges", adv(1, 3, "phone", "business"), adv(7, 8, "phone", "business"), adv(0, 8, "")},
		{"one range unknown", adv(0, 3, ""), adv(4, 5, "phone", "business"), adv(0, 5, "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := merge(tt.a, tt.b)
			if !sameAdvance(got, tt.want) {
				t.Errorf("merge(%+v, %+v) = %+v, want %+v", tt.a, tt.b, got, tt.want)
			}
		})
	}

	t.Run("keeps the earlier known time", func(t *testing.T) {
		for _, c := range []struct{ a, b, want time.Time }{{t1, t2, t1}, {t2, t1, t1}, {time.Time{}, t2, t2}, {t1, time.Time{}, t1}} {
			a, b := adv(1, 1, "p"), adv(2, 2, "p")
			a.At, b.At = c.a, c.b
			if got := merge(a, b).At; !got.Equal(c.want) {
				t.Errorf("merge at %v and %v: at %v, want %v", c.a, c.b, got, c.want)
			}
		}
	})

	t.Run("leaves its inputs alone", func(t *testing.T) {
		backing := make([]string, 1, 4) // room to append in place, which merge must not use
		backing[0] = "x"
		a, b := adv(1, 1, "p"), adv(2, 2, "p", "y")
		a.Schemas = backing
		merge(a, b)
		if backing[:2][1] != "" {
			t.Errorf("merge wrote %q into its input's array", backing[:2][1])
		}
	})
}
