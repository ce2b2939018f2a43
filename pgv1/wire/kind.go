package wire

import "strconv"

// Kind is how the protocol encodes one column, derived from the column's PostgreSQL type
// (docs/protocol-v1.md §1.6). The zero Kind is no kind: KindOf never returns it.
type Kind uint8

// The column kinds the v1 protocol can carry.
const (
	KindInt2 Kind = iota + 1
	KindInt4
	KindInt8
	KindNumeric
	KindFloat4
	KindFloat8
	KindBool
	KindBytea
	KindUUID
	// KindText covers text, varchar and citext: strings PostgreSQL stores as given.
	KindText
	// KindChar is bpchar (char(n)): a string kind of its own because casting it to text drops
	// the blank padding PostgreSQL's own rendering keeps.
	KindChar
	KindDate
	KindTime
	KindTimeTZ
	KindTimestamp
	KindTimestampTZ
)

// kindNames maps pg_type.typname to a Kind. json, jsonb, arrays, composites, money and every
// other type are missing on purpose: their PostgreSQL rendering is not a JSON string, which
// clients refuse, so a table holding one cannot be synced (docs/protocol-v1.md §1.6).
var kindNames = map[string]Kind{
	"int2":        KindInt2,
	"int4":        KindInt4,
	"int8":        KindInt8,
	"numeric":     KindNumeric,
	"float4":      KindFloat4,
	"float8":      KindFloat8,
	"bool":        KindBool,
	"bytea":       KindBytea,
	"uuid":        KindUUID,
	"text":        KindText,
	"varchar":     KindText,
	"citext":      KindText,
	"bpchar":      KindChar,
	"date":        KindDate,
	"time":        KindTime,
	"timetz":      KindTimeTZ,
	"timestamp":   KindTimestamp,
	"timestamptz": KindTimestampTZ,
}

// KindOf returns the kind of a column whose type is typeName (pg_type.typname, e.g. "int4",
// "varchar", "timestamptz"). false means the protocol cannot carry the type, and the store
// refuses the table.
func KindOf(typeName string) (Kind, bool) {
	k, ok := kindNames[typeName]
	return k, ok
}

// String returns the kind's PostgreSQL type name ("int4", "text", "bpchar", …).
func (k Kind) String() string {
	switch k {
	case KindInt2:
		return "int2"
	case KindInt4:
		return "int4"
	case KindInt8:
		return "int8"
	case KindNumeric:
		return "numeric"
	case KindFloat4:
		return "float4"
	case KindFloat8:
		return "float8"
	case KindBool:
		return "bool"
	case KindBytea:
		return "bytea"
	case KindUUID:
		return "uuid"
	case KindText:
		return "text"
	case KindChar:
		return "bpchar"
	case KindDate:
		return "date"
	case KindTime:
		return "time"
	case KindTimeTZ:
		return "timetz"
	case KindTimestamp:
		return "timestamp"
	case KindTimestampTZ:
		return "timestamptz"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// RenderSQL returns a text-valued SQL expression that reads column (an identifier already quoted
// with pgx.Identifier.Sanitize) in the form AppendWireValue expects. It is NULL exactly when the
// column is. The session must run with TimeZone UTC, so timestamptz values carry "+00:00".
func RenderSQL(k Kind, column string) string {
	switch k {
	case KindFloat4, KindFloat8:
		// float4 is widened exactly to binary64 first; AppendWireValue re-renders the
		// shortest digits in the ECMAScript form.
		return column + "::float8::text"
	case KindBytea:
		// encode breaks base64 lines every 76 characters; the wire form is one line.
		return "translate(encode(" + column + ",'base64'),chr(10),'')"
	case KindChar, KindDate, KindTime, KindTimeTZ, KindTimestamp, KindTimestampTZ:
		// PostgreSQL's JSON rendering: ISO 8601 whatever DateStyle says, padding kept.
		return "(to_json(" + column + ")#>>'{}')"
	default:
		// ints, numeric (its own scale), bool ('true'/'false'), uuid (lowercase), text.
		return column + "::text"
	}
}
