package v1test

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/pulsesync/pulsesync/internal/jcs"
	"github.com/pulsesync/pulsesync/pgv1/wire"
)

// Schema is the schema of the v1 demo tables servertest serves (app.users, app.posts).
const Schema = "app"

// keyColumn is the sync key column of both demo tables.
const keyColumn = "id"

// Row is one row a client pushes (docs/protocol-v1.md §3.4) to a table of Schema. Payload is
// the JSON object exactly as sent; nil for DELETE.
type Row struct {
	Table   string
	Key     string
	Op      string
	Base    int64
	Payload []byte
}

// NewUser returns the INSERT of a new app.users row: id, name, an email made from the name,
// visits and active (integers travel as strings, §1.6).
func NewUser(id, name string, visits int64) Row {
	p := jcs.AppendString(append(make([]byte, 0, 128), `{"id":`...), id)
	p = jcs.AppendString(append(p, `,"name":`...), name)
	p = jcs.AppendString(append(p, `,"email":`...), name+"@example.test")
	p = strconv.AppendInt(append(p, `,"visits":"`...), visits, 10)
	p = strconv.AppendBool(append(p, `","active":`...), visits%2 == 0)
	return Row{Table: "users", Key: id, Op: "INSERT", Payload: append(p, '}')}
}

// RequestHash returns the canonical_request_hash of rows (§4.4), computed as a client does:
// from the key and payload objects as sent.
func RequestHash(rows []Row) (string, error) {
	in := make([]wire.HashRow, len(rows))
	for i, r := range rows {
		in[i] = wire.HashRow{Schema: Schema, Table: r.Table, Key: wire.CanonicalKey(keyColumn, r.Key), Op: r.Op, Version: r.Base}
		if r.Payload != nil {
			p, err := jcs.Canonicalize(r.Payload)
			if err != nil {
				return "", fmt.Errorf("payload of row %d: %w", i, err)
			}
			in[i].Payload = p
		}
	}
	return wire.RequestHash(in), nil
}

// appendChunk appends the chunk body {"start_row_ordinal","rows"} of rows starting at start.
func appendChunk(b []byte, start int, rows []Row) []byte {
	b = append(b, `{"start_row_ordinal":`...)
	b = strconv.AppendInt(b, int64(start), 10)
	b = append(b, `,"rows":[`...)
	for i, r := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = jcs.AppendString(append(b, `{"schema":`...), Schema)
		b = jcs.AppendString(append(b, `,"table":`...), r.Table)
		b = append(append(b, `,"key":`...), wire.CanonicalKey(keyColumn, r.Key)...)
		b = jcs.AppendString(append(b, `,"op":`...), r.Op)
		b = strconv.AppendInt(append(b, `,"base_row_version":`...), r.Base, 10)
		if r.Payload != nil {
			b = append(append(b, `,"payload":`...), r.Payload...)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// WireRow is a committed row as committed-row pages and pulls serve it (§3.7): Payload is
// empty or null for a DELETE.
type WireRow struct {
	Schema     string          `json:"schema"`
	Table      string          `json:"table"`
	Key        json.RawMessage `json:"key"`
	Op         string          `json:"op"`
	RowVersion int64           `json:"row_version"`
	Payload    json.RawMessage `json:"payload"`
}

// ID returns the row's key value.
func (r WireRow) ID() string {
	var key map[string]string
	_ = json.Unmarshal(r.Key, &key)
	return key[keyColumn]
}

// Verify checks a bundle as a client checks what it reads (§3.7, §4.3): as many rows as
// row_count, each of Schema with row_version = bundle_seq and a payload unless a DELETE, and
// a bundle_hash equal to the one recomputed over the rows, re-canonicalised.
func Verify(b Bundle) error {
	if int64(len(b.Rows)) != b.RowCount {
		return fmt.Errorf("bundle %d: %d rows, row_count %d", b.BundleSeq, len(b.Rows), b.RowCount)
	}
	in := make([]wire.HashRow, len(b.Rows))
	for i, r := range b.Rows {
		if r.Schema != Schema || r.RowVersion != b.BundleSeq {
			return fmt.Errorf("bundle %d row %d: schema %q, row_version %d", b.BundleSeq, i, r.Schema, r.RowVersion)
		}
		key, err := jcs.Canonicalize(r.Key)
		if err != nil {
			return fmt.Errorf("bundle %d row %d: key: %w", b.BundleSeq, i, err)
		}
		in[i] = wire.HashRow{Schema: r.Schema, Table: r.Table, Key: key, Op: r.Op, Version: r.RowVersion}
		deleted := len(r.Payload) == 0 || string(r.Payload) == "null"
		if deleted != (r.Op == "DELETE") {
			return fmt.Errorf("bundle %d row %d: op %s with payload %s", b.BundleSeq, i, r.Op, r.Payload)
		}
		if !deleted {
			if in[i].Payload, err = jcs.Canonicalize(r.Payload); err != nil {
				return fmt.Errorf("bundle %d row %d: payload: %w", b.BundleSeq, i, err)
			}
		}
	}
	if got, _ := wire.BundleHash(in); got != b.BundleHash {
		return fmt.Errorf("bundle %d: bundle_hash %s, recomputed from its rows %s", b.BundleSeq, b.BundleHash, got)
	}
	return nil
}
