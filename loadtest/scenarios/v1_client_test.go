package scenarios

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDecodeV1Params_SchemaAppUnlessNamed(t *testing.T) {
	p, err := decodeV1Params(json.RawMessage(`{"rows": 7}`), Params{}, "rows")
	if err != nil || p.Schema != "app" || p.Rows != 7 {
		t.Errorf("v1 params = schema %q rows %d (%v), want app and 7", p.Schema, p.Rows, err)
	}
	if p, _ := decodeV1Params(json.RawMessage(`{"schema": "other"}`), Params{}); p.Schema != "other" {
		t.Errorf("schema param = %q, want other", p.Schema)
	}
	if p, _ := decodeV1Params(nil, Params{Schema: "flag"}); p.Schema != "flag" {
		t.Errorf("schema override = %q, want flag", p.Schema)
	}
	if p, _ := decodeParams(nil, Params{}); p.Schema != "business" || p.Rows != 100 {
		t.Errorf("v0 params = schema %q rows %d, want business and the default 100", p.Schema, p.Rows)
	}
	if _, err := decodeV1Params(json.RawMessage(`{"rows": -1}`), Params{}, "rows"); err == nil {
		t.Error("rows -1 accepted")
	}
}

func TestV1Source_KeepsThePendingBundleUntilCommitted(t *testing.T) {
	p := Params{RunTag: "t"}.withDefaults()
	if id := p.source(3, ""); id != "load-src-t-3" {
		t.Errorf("source id = %q, want load-src-t-3", id)
	}
	src := newV1Source(p, "load-user-1", p.source(3, ""), 1)
	first := src.bundle(3)
	if again := src.bundle(5); len(again) != 3 || again[0].Key != first[0].Key {
		t.Fatal("a retry must re-send the pending bundle, not a new one")
	}
	src.committed()
	second := src.bundle(2)
	if src.next != 2 || len(second) != 2 || second[0].Key == first[0].Key {
		t.Fatalf("after a commit: source_bundle_id %d, %d fresh rows, want 2 and 2 new rows", src.next, len(second))
	}
	var payload map[string]any
	if err := json.Unmarshal(first[1].Payload, &payload); err != nil {
		t.Fatal(err)
	}
	// Values as SQLiteNow sends them (docs/protocol-v1.md §1.6): the int and
	// the bool column as strings.
	if payload["id"] != first[1].Key || payload["visits"] != "2" || payload["active"] != "1" || payload["name"] != "load 2" {
		t.Errorf("payload = %v, want id %s, visits \"2\", active \"1\", name load 2", payload, first[1].Key)
	}
	if len(first[1].Key) != 36 || first[1].Key[14] != '4' || first[1].Op != "INSERT" || first[1].Base != 0 {
		t.Errorf("row = %+v, want an INSERT of a fresh v4 UUID at base 0", first[1])
	}
}

func TestAppendChunk_RowsOfTheChunkRequest(t *testing.T) {
	c := &v1Client{schema: "app"}
	rows := []v1Row{
		{Table: "users", Key: annID, Op: "INSERT", Payload: userPayload(nil, annID, "Ann \"A\"", "a@x", 3, true)},
		{Table: "users", Key: "0b7e3f1a-2c4d-4e6f-8a1b-3c5d7e9f1a2b", Op: "DELETE", Base: 4},
	}
	body := c.appendChunk(nil, 200, rows)
	var got struct {
		Start int64 `json:"start_row_ordinal"`
		Rows  []struct {
			Schema  string            `json:"schema"`
			Table   string            `json:"table"`
			Key     map[string]string `json:"key"`
			Op      string            `json:"op"`
			Base    int64             `json:"base_row_version"`
			Payload map[string]any    `json:"payload"`
		} `json:"rows"`
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("chunk body %s: %v", body, err)
	}
	if got.Start != 200 || len(got.Rows) != 2 {
		t.Fatalf("chunk = %+v, want start 200 and 2 rows", got)
	}
	ins, del := got.Rows[0], got.Rows[1]
	if ins.Schema != "app" || ins.Table != "users" || ins.Key["id"] != annID || ins.Op != "INSERT" || ins.Payload["name"] != "Ann \"A\"" {
		t.Errorf("insert row = %+v", ins)
	}
	if del.Op != "DELETE" || del.Base != 4 || del.Payload != nil || strings.Count(string(body), `"payload"`) != 1 {
		t.Errorf("delete row = %+v; a DELETE carries no payload member (body %s)", del, body)
	}
}
