package cluster

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/sequencer"
)

func TestCodec_RoundTrip(t *testing.T) {
	at := time.UnixMicro(1_767_225_600_123_456)
	tests := []struct {
		name string
		adv  sequencer.Advance
	}{
		{"everything known", sequencer.Advance{User: "alice", Seq: 42, From: 40, Source: "phone", Schemas: []string{"business", "crm"}, At: at}},
		{"reconciled: only user and seq", sequencer.Advance{User: "bob", Seq: 1}},
		{"quotes and backslashes", sequencer.Advance{User: `a"b\c`, Seq: 3, Source: `x"y`}},
		{"control characters", sequencer.Advance{User: "tab\there\nnewline\x00nul\x7fdel", Seq: 4}},
		{"non-ASCII", sequencer.Advance{User: "zoë-ユーザー", Seq: 5, Schemas: []string{"schéma"}}},
		{"outside the basic plane", sequencer.Advance{User: "emoji-😀-𝄞", Seq: 6}},
		{"html-looking", sequencer.Advance{User: "<script>&amp;", Seq: 7}},
	}
	w := newBatchWriter("node-1", notifyPayloadMax)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for form, data := range map[string][]byte{"one": w.one(tt.adv), "split": []byte(splitOne(t, w, tt.adv))} {
				for i, c := range data {
					if c >= 0x80 {
						t.Fatalf("%s: byte %d of %q is not ASCII", form, i, data)
					}
				}
				if !json.Valid(data) {
					t.Fatalf("%s: invalid JSON %s", form, data)
				}
				origin, got, err := decodeBatch(data)
				if err != nil {
					t.Fatalf("%s: decode %s: %v", form, data, err)
				}
				if origin != "node-1" || len(got) != 1 || !sameAdvance(got[0], tt.adv) {
					t.Errorf("%s: decoded (%q, %+v), want (node-1, [%+v])", form, origin, got, tt.adv)
				}
			}
		})
	}
}

// splitOne splits advances, failing unless they make exactly one batch with nothing dropped.
func splitOne(t *testing.T, w batchWriter, advances ...sequencer.Advance) string {
	t.Helper()
	batches, dropped := w.split(advances)
	if len(batches) != 1 || dropped != 0 {
		t.Fatalf("split gave %d batches and dropped %d, want 1 and 0", len(batches), dropped)
	}
	return batches[0]
}

// sameAdvance compares advances, times by instant and schemas as lists (nil = empty).
func sameAdvance(a, b sequencer.Advance) bool {
	return a.User == b.User && a.Seq == b.Seq && a.From == b.From && a.Source == b.Source &&
		a.At.Equal(b.At) && len(a.Schemas) == len(b.Schemas) && (len(a.Schemas) == 0 || reflect.DeepEqual(a.Schemas, b.Schemas))
}

func TestCodec_MalformedMessagesAreErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
	}{
		{"empty", ``},
		{"not JSON", `hello`},
		{"truncated", `{"v":1,"o":"x","a":[{"u":"alice","s":4`},
		{"array instead of object", `[{"u":"alice","s":1}]`},
		{"no version", `{"o":"x","a":[{"u":"alice","s":1}]}`},
		{"future version", `{"v":2,"o":"x","a":[{"u":"alice","s":1}]}`},
		{"no user", `{"v":1,"o":"x","a":[{"s":1}]}`},
		{"zero seq", `{"v":1,"o":"x","a":[{"u":"alice","s":0}]}`},
		{"negative seq", `{"v":1,"o":"x","a":[{"u":"alice","s":-3}]}`},
		{"from after seq", `{"v":1,"o":"x","a":[{"u":"alice","s":3,"f":4}]}`},
		{"negative from", `{"v":1,"o":"x","a":[{"u":"alice","s":3,"f":-1}]}`},
		{"seq as string", `{"v":1,"o":"x","a":[{"u":"alice","s":"3"}]}`},
		{"seq overflowing int64", `{"v":1,"o":"x","a":[{"u":"alice","s":99999999999999999999}]}`},
		{"schemas not a list", `{"v":1,"o":"x","a":[{"u":"alice","s":3,"c":"business"}]}`},
		{"one good, one bad", `{"v":1,"o":"x","a":[{"u":"alice","s":3},{"u":"","s":3}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, got, err := decodeBatch([]byte(tt.data)); err == nil {
				t.Errorf("decode %s = %+v, want an error", tt.data, got)
			}
		})
	}
}

func TestCodec_UnknownKeysAreIgnored(t *testing.T) {
	_, got, err := decodeBatch([]byte(`{"v":1,"o":"x","z":true,"a":[{"u":"alice","s":3,"new":{"k":[1]}}]}`))
	if err != nil || len(got) != 1 || got[0].User != "alice" || got[0].Seq != 3 {
		t.Fatalf("decode with unknown keys = %+v, %v; want alice at 3", got, err)
	}
}

func TestCodec_SplitKeepsEveryPayloadUnderTheLimit(t *testing.T) {
	var advances []sequencer.Advance
	for i := range 3000 {
		advances = append(advances, sequencer.Advance{User: fmt.Sprintf("user-%05d-ユ", i), Seq: int64(i + 1), From: 1, Source: "device-" + strings.Repeat("d", i%50), Schemas: []string{"business"}, At: time.UnixMicro(1_767_225_600_000_000 + int64(i))})
	}
	w := newBatchWriter("0123456789abcdef", notifyPayloadMax)
	batches, dropped := w.split(advances)
	if dropped != 0 {
		t.Fatalf("dropped %d advances, want none", dropped)
	}
	var decoded []sequencer.Advance
	for i, b := range batches {
		if len(b) > notifyPayloadMax {
			t.Fatalf("batch %d is %d bytes, over the %d limit", i, len(b), notifyPayloadMax)
		}
		if i < len(batches)-1 && len(b) < notifyPayloadMax-400 {
			t.Errorf("batch %d is only %d bytes: split wastes room", i, len(b))
		}
		_, got, err := decodeBatch([]byte(b))
		if err != nil {
			t.Fatalf("decode batch %d: %v", i, err)
		}
		decoded = append(decoded, got...)
	}
	if len(decoded) != len(advances) {
		t.Fatalf("decoded %d advances from %d batches, want %d", len(decoded), len(batches), len(advances))
	}
	for i := range advances {
		if !sameAdvance(decoded[i], advances[i]) {
			t.Fatalf("advance %d decoded as %+v, want %+v", i, decoded[i], advances[i])
		}
	}
}

func TestCodec_SplitShrinksOrDropsAdvancesTooLargeAlone(t *testing.T) {
	many := make([]string, 1000)
	for i := range many {
		many[i] = fmt.Sprintf("schema_%d", i)
	}
	big := sequencer.Advance{User: "alice", Seq: 9, From: 2, Source: "phone", Schemas: many}
	huge := sequencer.Advance{User: strings.Repeat("u", notifyPayloadMax), Seq: 1}
	fine := sequencer.Advance{User: "bob", Seq: 3, From: 3, Source: "laptop"}

	batches, dropped := newBatchWriter("o", notifyPayloadMax).split([]sequencer.Advance{big, huge, fine})
	if len(batches) != 1 || dropped != 1 {
		t.Fatalf("split gave %d batches and dropped %d, want 1 and 1 (the advance whose user id alone is too long)", len(batches), dropped)
	}
	_, got, err := decodeBatch([]byte(batches[0]))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	want := []sequencer.Advance{{User: "alice", Seq: 9}, fine} // alice's lost what did not fit
	if len(got) != 2 || !sameAdvance(got[0], want[0]) || !sameAdvance(got[1], want[1]) {
		t.Errorf("decoded %+v, want %+v", got, want)
	}
}

func FuzzDecodeBatch(f *testing.F) {
	w := newBatchWriter("seed", notifyPayloadMax)
	f.Add(w.one(sequencer.Advance{User: "alice", Seq: 42, From: 40, Source: "phone", Schemas: []string{"business"}, At: time.Unix(1, 0)}))
	f.Add([]byte(`{"v":1,"o":"x","a":[{"u":"\ud83d\ude00","s":1}]}`))
	f.Add([]byte(`{"v":1,"a":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		origin, advances, err := decodeBatch(data)
		if err != nil {
			return
		}
		for _, a := range advances {
			if a.User == "" || a.Seq <= 0 || a.From < 0 || a.From > a.Seq {
				t.Fatalf("decode accepted an invalid advance %+v", a)
			}
		}
		if len(advances) == 0 {
			return
		}
		// What decodes must encode and decode to the same advances.
		_, round, err := decodeBatch([]byte(splitOne(t, newBatchWriter(origin, 1<<30), advances...)))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		for i := range advances {
			if !sameAdvance(round[i], advances[i]) {
				t.Fatalf("advance %+v came back as %+v", advances[i], round[i])
			}
		}
	})
}
