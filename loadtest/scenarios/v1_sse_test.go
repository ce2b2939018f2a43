package scenarios

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestReadWatch_BundleEventsOnly(t *testing.T) {
	stream := ": heartbeat\n\n" +
		"event: bundle\ndata: {\"bundle_seq\":3,\"source_id\":\"device-a\",\"source_bundle_id\":2}\n\n" +
		"id: 7\nretry: 1000\nevent: other\ndata: {\"bundle_seq\":99}\n\n" +
		"event: bundle\r\ndata: {\"bundle_seq\":\r\ndata: 4}\r\n\r\n" + // CRLF, and data over two lines
		"data: {\"bundle_seq\":98}\n\n" + // no event type: "message"
		"event:bundle\ndata:{\"bundle_seq\":5,\"extra\":true}\n\n" +
		"event: bundle\ndata: {\"bundle_seq\":6}\n" // not terminated by a blank line: no event
	var seqs []int64
	err := readWatch(strings.NewReader(stream), func(ev watchEvent, at time.Time) error {
		if at.IsZero() {
			t.Error("event without an arrival time")
		}
		seqs = append(seqs, ev.BundleSeq)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{3, 4, 5}; !slices.Equal(seqs, want) {
		t.Errorf("bundle events = %v, want %v", seqs, want)
	}
}

func TestReadWatch_RefusesBadEvents(t *testing.T) {
	cases := map[string]string{
		"zero seq":      "event: bundle\ndata: {\"bundle_seq\":0}\n\n",
		"bad source_id": "event: bundle\ndata: {\"bundle_seq\":3,\"source_id\":\"a b\"}\n\n",
		"not JSON":      "event: bundle\ndata: seq 3\n\n",
		"line too long": "event: bundle\ndata: " + strings.Repeat("x", watchLineLimit) + "\n\n",
	}
	for name, stream := range cases {
		t.Run(name, func(t *testing.T) {
			err := readWatch(strings.NewReader(stream), func(watchEvent, time.Time) error { return nil })
			if err == nil {
				t.Error("stream accepted; a SQLiteNow client ends its watch on it")
			}
		})
	}
}
