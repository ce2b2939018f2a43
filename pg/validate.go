package pg

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// change is one uploaded change that passed validation.
type change struct {
	index   int // position in the request
	scid    int64
	table   *Table
	op      string // INSERT, UPDATE or DELETE
	pk      UUID
	base    int64
	payload []byte      // compacted JSON object; nil for DELETE
	parents []parentRef // foreign-key values found in the payload (upserts only)
}

func (c *change) upsert() bool { return c.op != opDelete }
func (c *change) key() rowKey  { return rowKey{table: c.table, pk: c.pk} }

// rowKey identifies a row of one user.
type rowKey struct {
	table *Table
	pk    UUID
}

// parentRef is a foreign-key value of an upsert: the parent row it needs.
type parentRef struct {
	key rowKey
	raw string // the value as it appeared in the payload, for fk_missing details
}

const (
	opInsert = "INSERT"
	opUpdate = "UPDATE"
	opDelete = "DELETE"
)

// maxIdentifierBytes is PostgreSQL's limit on a name: no registered schema or table is longer,
// so a longer one fails rules 1 and 2 of §3.5 rather than reaching the registry (rule 3).
const maxIdentifierBytes = 63

// clip shortens a value an invalid answer echoes to maxIdentifierBytes, cut at a character
// boundary and marked with "…": an answer echoes a value twice (message and details), and a
// megabyte-long table name must not come back as two.
func clip(s string) string {
	if len(s) <= maxIdentifierBytes {
		return s
	}
	cut := maxIdentifierBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// validate applies docs/protocol-v0.md §3.5 to one change, in the reference's rule order, and reads the
// foreign-key values of upserts (§3.7). It returns the change, or the reason it is invalid.
func (s *Store) validate(index int, in *ChangeInput) (*change, *Invalid) {
	schema := strings.ToLower(strings.TrimSpace(in.Schema))
	if schema == "" {
		schema = "public"
	}
	table := strings.ToLower(strings.TrimSpace(in.Table))
	if len(schema) > maxIdentifierBytes || !validName(schema) {
		return nil, badPayload(fmt.Sprintf("bad_payload: invalid schema name %q", clip(schema)))
	}
	if len(table) > maxIdentifierBytes || !validName(table) {
		return nil, badPayload(fmt.Sprintf("bad_payload: invalid table name %q", clip(table)))
	}
	t, ok := s.reg.Lookup(schema, table)
	if !ok {
		return nil, &Invalid{
			Reason:  ReasonUnregisteredTable,
			Message: "table not registered " + schema + "." + table,
			Details: InvalidDetails{Schema: schema, Table: table},
		}
	}
	op := strings.ToUpper(strings.TrimSpace(in.Op))
	if op != opInsert && op != opUpdate && op != opDelete {
		return nil, badPayload("invalid operation: " + clip(op))
	}
	pk, ok := ParseUUID(in.PK)
	if !ok {
		return nil, badPayload("bad_payload: invalid UUID format: " + clip(in.PK))
	}
	c := &change{index: index, scid: in.SourceChangeID, table: t, op: op, pk: pk, base: in.BaseVersion}
	if op == opDelete {
		// The reference refuses even "payload": null; no client sends it, and refusing would make
		// clients drop a legitimate delete, so null counts as absent (docs/protocol-v0.md §3.1 allows it).
		if in.Payload != nil && !bytes.Equal(bytes.TrimSpace(in.Payload), []byte("null")) {
			return nil, badPayload("DELETE must not include payload")
		}
		return c, nil
	}
	if in.Payload == nil {
		return nil, badPayload("payload required for " + op + " operation")
	}
	if max := s.cfg.MaxPayloadBytes; max > 0 && len(in.Payload) > max {
		return nil, badPayload(fmt.Sprintf("bad_payload: payload too large: %d > %d", len(in.Payload), max))
	}
	compact, fields, ok := compactObject(in.Payload, t.ForeignKeys)
	if !ok {
		return nil, badPayload("invalid JSON payload")
	}
	c.payload = compact
	for _, fk := range t.ForeignKeys {
		raw, present := fields[fk.Column]
		if !present {
			continue
		}
		ref, skip, ok := parentValue(raw)
		if !ok {
			return nil, badPayload(fmt.Sprintf("bad payload for %s pk=%s", t.Name, pk))
		}
		if !skip {
			c.parents = append(c.parents, parentRef{key: rowKey{table: fk.Parent, pk: ref}, raw: string(unquote(raw))})
		}
	}
	return c, nil
}

// compactObject checks that payload is a UTF-8 JSON object and returns it without
// insignificant whitespace, plus the raw values of the foreign-key columns when the table has
// any (the last of duplicated keys wins).
func compactObject(payload []byte, fks []ForeignKey) (compact []byte, fields map[string]json.RawMessage, ok bool) {
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 || trimmed[0] != '{' || !utf8.Valid(trimmed) {
		return nil, nil, false
	}
	var buf bytes.Buffer
	buf.Grow(len(trimmed))
	if err := json.Compact(&buf, trimmed); err != nil {
		return nil, nil, false
	}
	if len(fks) > 0 {
		fields = make(map[string]json.RawMessage, len(fks))
		err := eachField(buf.Bytes(), func(key string, value []byte) {
			for _, fk := range fks {
				if fk.Column == key {
					fields[key] = value
				}
			}
		})
		if err != nil {
			return nil, nil, false
		}
	}
	return buf.Bytes(), fields, true
}

// parentValue interprets a foreign-key value: null, "" or absent skip the check; otherwise it
// must be a UUID string or the standard base64 of 16 bytes (clients with BLOB keys send that).
func parentValue(raw json.RawMessage) (pk UUID, skip, ok bool) {
	if string(raw) == "null" {
		return pk, true, true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return pk, false, false
	}
	if s == "" {
		return pk, true, true
	}
	if pk, ok = ParseUUID(s); ok {
		return pk, false, true
	}
	pk, ok = uuidFromBase64(s)
	return pk, false, ok
}

// unquote returns a JSON string's contents for messages; other values come back as they are.
func unquote(raw json.RawMessage) []byte {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []byte(s)
	}
	return raw
}

func badPayload(message string) *Invalid {
	return &Invalid{Reason: ReasonBadPayload, Message: message, Details: InvalidDetails{Error: message}}
}
