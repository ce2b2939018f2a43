package httpapi

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/pg"
)

// The mirrors below give encoding/json the protocol's field order, so that its output is what the
// hand-written encoders must produce byte for byte.

type entryMirror struct {
	ServerID       int64            `json:"server_id"`
	Schema         string           `json:"schema"`
	Table          string           `json:"table"`
	Op             string           `json:"op"`
	PK             string           `json:"pk"`
	Payload        *json.RawMessage `json:"payload,omitempty"`
	ServerVersion  int64            `json:"server_version"`
	Deleted        bool             `json:"deleted"`
	SourceID       string           `json:"source_id"`
	SourceChangeID int64            `json:"source_change_id"`
	TS             time.Time        `json:"ts"`
}

type pageMirror struct {
	Changes     []entryMirror `json:"changes"`
	HasMore     bool          `json:"has_more"`
	NextAfter   int64         `json:"next_after"`
	WindowUntil int64         `json:"window_until"`
}

// randomPayload returns a compact JSON object with random keys and values, as the store keeps
// payloads; json.Marshal's output is already compact and escaped as encoding/json escapes.
func randomPayload(rng *rand.Rand) []byte {
	obj := map[string]any{}
	for n := rng.IntN(4); n > 0; n-- {
		obj[randomJSONString(rng)] = randomJSONString(rng)
	}
	obj["n"] = rng.Int64()
	b, _ := json.Marshal(obj)
	return b
}

func randomUUID(rng *rand.Rand) pg.UUID {
	var u pg.UUID
	for i := range u {
		u[i] = byte(rng.Uint32())
	}
	return u
}

func encodeWithEncodingJSON(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestAppendDownloadPage_MatchesEncodingJSON compares the download encoder with encoding/json on
// random pages: arbitrary strings, DELETEs without payload, timestamps of every precision and
// zone, an empty page.
func TestAppendDownloadPage_MatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	units := []time.Duration{time.Microsecond, 10 * time.Microsecond, time.Millisecond, time.Second}
	zones := []*time.Location{time.UTC, time.FixedZone("", 2*3600), time.FixedZone("", -(9*3600 + 30*60))}
	for i := range 300 {
		page := pg.DownloadPage{HasMore: rng.IntN(2) == 0, NextAfter: rng.Int64(), WindowUntil: rng.Int64()}
		mirror := pageMirror{Changes: []entryMirror{}, HasMore: page.HasMore, NextAfter: page.NextAfter, WindowUntil: page.WindowUntil}
		for n := rng.IntN(5) * (i % 2); n > 0; n-- { // every other page is empty
			e := pg.StreamEntry{
				ServerID: rng.Int64(), Schema: randomJSONString(rng), Table: randomJSONString(rng),
				Op: []string{"INSERT", "UPDATE", "DELETE"}[rng.IntN(3)], PK: randomUUID(rng), Version: rng.Int64(),
				SourceID: randomJSONString(rng), SourceChangeID: rng.Int64() - rng.Int64(),
				// PostgreSQL keeps microseconds; coarser values exercise the trimming of zeros.
				TS: time.Unix(1_768_900_000+rng.Int64N(1e6), rng.Int64N(1e9)).Truncate(units[rng.IntN(len(units))]).In(zones[rng.IntN(len(zones))]),
			}
			m := entryMirror{ServerID: e.ServerID, Schema: e.Schema, Table: e.Table, Op: e.Op, PK: e.PK.String(),
				ServerVersion: e.Version, Deleted: e.Op == opDelete, SourceID: e.SourceID, SourceChangeID: e.SourceChangeID, TS: e.TS}
			if e.Op != opDelete {
				e.Payload = randomPayload(rng)
				raw := json.RawMessage(e.Payload)
				m.Payload = &raw
			}
			page.Changes = append(page.Changes, e)
			mirror.Changes = append(mirror.Changes, m)
		}
		got := appendDownloadPage(nil, &page)
		if want := encodeWithEncodingJSON(t, mirror); !bytes.Equal(got, want) {
			t.Fatalf("page %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

type outcomeMirror struct {
	SourceChangeID int64            `json:"source_change_id"`
	Status         string           `json:"status"`
	NewVersion     int64            `json:"new_server_version,omitempty"`
	ServerRow      *serverRowMirror `json:"server_row,omitempty"`
	Message        string           `json:"message,omitempty"`
	Invalid        *invalidMirror   `json:"invalid,omitempty"`
}

type serverRowMirror struct {
	Schema  string          `json:"schema_name"`
	Table   string          `json:"table_name"`
	ID      string          `json:"id"`
	Version int64           `json:"server_version"`
	Deleted bool            `json:"deleted"`
	Payload json.RawMessage `json:"payload"`
}

type invalidMirror struct {
	Reason  string `json:"reason"`
	Details any    `json:"details"`
}

type uploadMirror struct {
	Accepted bool            `json:"accepted"`
	Highest  int64           `json:"highest_server_seq"`
	Statuses []outcomeMirror `json:"statuses"`
}

// TestAppendUploadResult_MatchesEncodingJSON compares the upload encoder with encoding/json on
// random results holding every kind of status entry.
func TestAppendUploadResult_MatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 300 {
		res := pg.UploadResult{Accepted: rng.IntN(2) == 0, Highest: rng.Int64()}
		mirror := uploadMirror{Accepted: res.Accepted, Highest: res.Highest, Statuses: []outcomeMirror{}}
		for n := rng.IntN(6) * (i % 2); n > 0; n-- {
			o := pg.Outcome{SourceChangeID: rng.Int64() - rng.Int64()}
			m := outcomeMirror{SourceChangeID: o.SourceChangeID}
			switch rng.IntN(3) {
			case 0:
				o.Status = pg.StatusApplied
				o.NewVersion = rng.Int64N(3) // 0: a replay, without new_server_version
				m.NewVersion = o.NewVersion
			case 1:
				o.Status = pg.StatusConflict
				row := &pg.ServerRow{Schema: randomJSONString(rng), Table: randomJSONString(rng), PK: randomUUID(rng), Version: rng.Int64()}
				m.ServerRow = &serverRowMirror{Schema: row.Schema, Table: row.Table, ID: row.PK.String(), Version: row.Version, Payload: json.RawMessage("null")}
				row.Deleted = rng.IntN(2) == 0
				m.ServerRow.Deleted = row.Deleted
				if !row.Deleted {
					row.Payload = randomPayload(rng)
					m.ServerRow.Payload = row.Payload
				}
				o.ServerRow = row
			default:
				o.Status = pg.StatusInvalid
				inv := &pg.Invalid{Reason: []string{pg.ReasonBadPayload, pg.ReasonUnregisteredTable, pg.ReasonFKMissing,
					pg.ReasonInternalError, pg.ReasonBatchTooLarge}[rng.IntN(5)]}
				m.Invalid = &invalidMirror{Reason: inv.Reason}
				switch inv.Reason {
				case pg.ReasonUnregisteredTable:
					inv.Details.Schema, inv.Details.Table = randomJSONString(rng), randomJSONString(rng)
					m.Invalid.Details = struct {
						Schema string `json:"schema"`
						Table  string `json:"table"`
					}{inv.Details.Schema, inv.Details.Table}
					inv.Message = "table not registered " + inv.Details.Schema + "." + inv.Details.Table
				case pg.ReasonFKMissing:
					inv.Details.Missing = []string{}
					for k := rng.IntN(3); k >= 0; k-- {
						inv.Details.Missing = append(inv.Details.Missing, randomJSONString(rng))
					}
					m.Invalid.Details = map[string][]string{"missing": inv.Details.Missing}
				default:
					inv.Message = randomJSONString(rng)
					inv.Details.Error = inv.Message
					m.Invalid.Details = map[string]string{"error": inv.Details.Error}
				}
				m.Message = inv.Message
				o.Invalid = inv
			}
			m.Status = string(o.Status)
			res.Outcomes = append(res.Outcomes, o)
			mirror.Statuses = append(mirror.Statuses, m)
		}
		got := appendUploadResult(nil, &res)
		if want := encodeWithEncodingJSON(t, mirror); !bytes.Equal(got, want) {
			t.Fatalf("result %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// BenchmarkAppendDownloadPage encodes a full page of 1000 typical entries; changes/s is the
// encoder's share of the download target (90,000 changes/s).
func BenchmarkAppendDownloadPage(b *testing.B) {
	page := pg.DownloadPage{NextAfter: 1000, WindowUntil: 5000}
	payload := []byte(`{"id":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","name":"Ann Lee","email":"ann@example.com"}`)
	ts := time.Date(2026, 1, 20, 9, 15, 2, 481211000, time.UTC)
	for i := range 1000 {
		page.Changes = append(page.Changes, pg.StreamEntry{ServerID: int64(i + 1), Schema: "business", Table: "users",
			Op: "UPDATE", Payload: payload, Version: 3, SourceID: "phone-7f3a", SourceChangeID: int64(i), TS: ts})
	}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = appendDownloadPage(buf[:0], &page)
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "changes/s")
}
