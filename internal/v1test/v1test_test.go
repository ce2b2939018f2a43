package v1test

import (
	"strings"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/pgv1/wire"
)

// parse runs the watch parser over stream and returns the events it hands out and why it ended.
func parse(stream string) ([]Event, error) {
	w := &Watch{events: make(chan Event, 64), closed: make(chan struct{})}
	w.read(strings.NewReader(stream))
	var got []Event
	for e := range w.events {
		got = append(got, e)
	}
	return got, w.err
}

func TestWatchParser_BundleEventsOnlyAsTheClientReadsThem(t *testing.T) {
	got, err := parse(": heartbeat\n\n" +
		"event: bundle\ndata: {\"bundle_seq\":3}\n\n" +
		"id: 7\nretry: 10\nevent: other\ndata: {\"bundle_seq\":99}\n\n" +
		"event: bundle\ndata: {\"bundle_seq\":4,\ndata: \"source_id\":\"device-a\",\"source_bundle_id\":2,\"extra\":1}\n\n")
	if err != nil {
		t.Fatalf("clean stream ended with %v", err)
	}
	want := []Event{{BundleSeq: 3}, {BundleSeq: 4, SourceID: "device-a", SourceBundleID: 2}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("events %+v, want %+v", got, want)
	}
}

func TestWatchParser_BadEventEndsTheStream(t *testing.T) {
	for _, data := range []string{`{"bundle_seq":0}`, `{"bundle_seq":1,"source_id":"bad source"}`, `not json`} {
		got, err := parse("event: bundle\ndata: " + data + "\n\nevent: bundle\ndata: {\"bundle_seq\":5}\n\n")
		if err == nil || len(got) != 0 {
			t.Errorf("data %s: events %+v, end %v; want no event and an error", data, got, err)
		}
	}
}

func TestWatchNext_ReportsTheEndEveryTime(t *testing.T) {
	w := &Watch{events: make(chan Event, 64), closed: make(chan struct{})}
	w.read(strings.NewReader("event: bundle\ndata: {\"bundle_seq\":0}\n\n"))
	for range 2 {
		if _, err := w.Next(time.Second); err == nil || !strings.Contains(err.Error(), "bad bundle event") {
			t.Fatalf("Next after a bad event: %v, want the stream's end reason", err)
		}
	}
}

func TestVerify_RecomputesTheBundleHashFromRecanonicalisedRows(t *testing.T) {
	const u1, u2 = "7b7a1b4e-0000-4000-8000-000000000001", "7b7a1b4e-0000-4000-8000-000000000002"
	hash, _ := wire.BundleHash([]wire.HashRow{
		{Schema: Schema, Table: "users", Key: []byte(`{"id":"` + u1 + `"}`), Op: "UPDATE", Version: 2,
			Payload: []byte(`{"id":"` + u1 + `","name":"Ann"}`)},
		{Schema: Schema, Table: "posts", Key: []byte(`{"id":"` + u2 + `"}`), Op: "DELETE", Version: 2},
	})
	bundle := func() Bundle {
		return Bundle{Meta: Meta{BundleSeq: 2, RowCount: 2, BundleHash: hash}, Rows: []WireRow{
			{Schema: Schema, Table: "users", Key: []byte(`{ "id": "` + u1 + `" }`), Op: "UPDATE", RowVersion: 2,
				Payload: []byte(`{"name": "Ann", "id": "` + u1 + `"}`)}, // members unsorted, as a server may send them
			{Schema: Schema, Table: "posts", Key: []byte(`{"id":"` + u2 + `"}`), Op: "DELETE", RowVersion: 2, Payload: []byte(`null`)},
		}}
	}
	if err := Verify(bundle()); err != nil {
		t.Fatalf("Verify of a bundle served with its hash: %v", err)
	}
	for name, spoil := range map[string]func(*Bundle){
		"payload changed":    func(b *Bundle) { b.Rows[0].Payload = []byte(`{"name":"Bob","id":"` + u1 + `"}`) },
		"row_count":          func(b *Bundle) { b.RowCount = 3 },
		"row_version":        func(b *Bundle) { b.Rows[1].RowVersion = 1 },
		"DELETE with a row":  func(b *Bundle) { b.Rows[1].Payload = []byte(`{"id":"` + u2 + `"}`) },
		"UPDATE without one": func(b *Bundle) { b.Rows[0].Payload = nil },
		"other schema":       func(b *Bundle) { b.Rows[0].Schema = "business" },
	} {
		b := bundle()
		spoil(&b)
		if err := Verify(b); err == nil {
			t.Errorf("%s: Verify accepted the bundle", name)
		}
	}
}
