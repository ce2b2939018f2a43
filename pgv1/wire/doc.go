// Package wire holds the v1 wire forms that the bundle store (pgv1) and the HTTP layer share:
// the identity grammars (source ids, UUIDs, hashes), the column kinds and their typed value rules
// (docs/protocol-v1.md §1.6), and the two hashes (docs/protocol-v1.md §4.3, §4.4).
//
// A value crosses this package twice. On the way in, RequestValue checks one payload value as the
// client sent it and turns it into the JSON token PostgreSQL's input function is given through
// jsonb_populate_record or jsonb_to_recordset. On the way out, RenderSQL reads a column back as
// text and AppendWireValue turns that text into the canonical JSON token every read endpoint
// serves and the bundle hash covers, so a served row and its hash cannot disagree.
//
// wire knows no SQL beyond those per-column expressions, no HTTP and no store: it is pure
// functions over bytes, cheap enough to run on every pushed and served row.
package wire
