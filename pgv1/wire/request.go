package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math"
	"strconv"

	"github.com/pulsesync/pulsesync/internal/jcs"
)

// Categories of ValueError, one per rule of docs/protocol-v1.md §1.6 a value can break.
const (
	// CategoryLegacyJSONNumber: a JSON number where the July rules want a string (integer,
	// numeric and float columns).
	CategoryLegacyJSONNumber = "legacy_json_number"
	// CategoryInvalidInteger: not a canonical signed integer string.
	CategoryInvalidInteger = "invalid_integer"
	// CategoryOutOfRange: a well-formed value the column's type cannot hold.
	CategoryOutOfRange = "out_of_range"
	// CategoryInvalidDecimal: not a decimal string of the numeric grammar, or a negative zero.
	CategoryInvalidDecimal = "invalid_decimal"
	// CategoryInvalidFloat: not the ECMAScript shortest spelling of a finite binary64.
	CategoryInvalidFloat = "invalid_float"
	// CategoryInvalidBooleanBridge: a bool column given anything but true, false, "0" or "1".
	CategoryInvalidBooleanBridge = "invalid_boolean_bridge"
	// CategoryInvalidBytea: not a standard padded base64 string.
	CategoryInvalidBytea = "invalid_bytea"
	// CategoryInvalidText: a string kind given a non-string, a NUL character, or (uuid) not a
	// UUID.
	CategoryInvalidText = "invalid_text"
)

// ValueError is a payload value the column's kind refuses. Message says which rule was broken;
// it never repeats the value, which may be private.
type ValueError struct {
	Category string
	Message  string
}

func (e *ValueError) Error() string { return e.Category + ": " + e.Message }

func valueError(category, message string) error {
	return &ValueError{Category: category, Message: message}
}

// Literal tokens RequestValue hands on, boxed once so returning them allocates nothing.
var (
	jsonNull  any = json.RawMessage("null")
	jsonTrue  any = json.RawMessage("true")
	jsonFalse any = json.RawMessage("false")
)

// RequestValue checks one payload value of a column of kind k as the client sent it, by the rules
// of docs/protocol-v1.md §1.6, and returns what PostgreSQL is to be given for it: a
// json.RawMessage to place in the jsonb object handed to jsonb_populate_record (or
// jsonb_to_recordset) with the column's real type. Numbers become JSON strings of the validated
// text, which the column type's input function parses exactly; bytea becomes the string
// "\x<hex>"; bool becomes true or false; other strings and null pass through. The result may
// share memory with raw.
//
// raw must be exactly one JSON value with no surrounding whitespace, taken from a payload
// jcs.Canonicalize accepted (so it is valid JSON without lone surrogates). Refusals are
// *ValueError. Date and time strings are checked by PostgreSQL's input functions, and numeric
// precision and scale by the column's type modifier, when the row is written: those refusals
// come from PostgreSQL (SQLSTATE class 22).
func RequestValue(k Kind, raw []byte) (any, error) {
	if len(raw) == 0 {
		return nil, valueError(CategoryInvalidText, "empty value")
	}
	if raw[0] == 'n' {
		return jsonNull, nil
	}
	switch k {
	case KindInt2, KindInt4, KindInt8:
		return requestInteger(k, raw)
	case KindNumeric:
		return requestDecimal(raw)
	case KindFloat4, KindFloat8:
		return requestFloat(k, raw)
	case KindBool:
		return requestBool(raw)
	case KindBytea:
		return requestBytea(raw)
	case KindUUID:
		return requestUUID(raw)
	case KindText, KindChar, KindDate, KindTime, KindTimeTZ, KindTimestamp, KindTimestampTZ:
		return requestText(raw)
	}
	return nil, valueError(CategoryInvalidText, "column type "+k.String()+" is not supported")
}

// stringText returns the text of the JSON string token raw and whether raw is a string. Without
// escapes it is a sub-slice of raw; the rare escaped string is decoded into new memory.
func stringText(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return nil, false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner, true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, false
	}
	return []byte(s), true
}

// isNumberToken reports whether raw is a JSON number, as opposed to a string, bool, object or
// array.
func isNumberToken(raw []byte) bool {
	return raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')
}

// numericToken returns the JSON string token for validated numeric text: raw itself when it
// carried no escapes, otherwise the text quoted (it holds only digits, signs, '.' and 'e').
func numericToken(raw, text []byte) json.RawMessage {
	if len(text) == len(raw)-2 {
		return raw
	}
	tok := make([]byte, 0, len(text)+2)
	tok = append(tok, '"')
	tok = append(tok, text...)
	return append(tok, '"')
}

// integerRange is the range of each integer kind.
func integerRange(k Kind) (lo, hi int64) {
	switch k {
	case KindInt2:
		return math.MinInt16, math.MaxInt16
	case KindInt4:
		return math.MinInt32, math.MaxInt32
	}
	return math.MinInt64, math.MaxInt64
}

// requestInteger: a string matching ^-?(0|[1-9][0-9]*)$, not "-0", within the column's range.
func requestInteger(k Kind, raw []byte) (any, error) {
	text, ok := stringText(raw)
	if !ok {
		if isNumberToken(raw) {
			return nil, valueError(CategoryLegacyJSONNumber, "integer must be sent as a JSON string, not a JSON number")
		}
		return nil, valueError(CategoryInvalidInteger, "integer must be a JSON string")
	}
	if !canonicalInteger(text) {
		return nil, valueError(CategoryInvalidInteger, "integer must be a canonical decimal string (no sign '+', leading zeros, fraction, exponent or -0)")
	}
	n, err := strconv.ParseInt(string(text), 10, 64)
	lo, hi := integerRange(k)
	if err != nil || n < lo || n > hi {
		return nil, valueError(CategoryOutOfRange, "integer is outside the range of "+k.String())
	}
	return numericToken(raw, text), nil
}

// canonicalInteger matches ^-?(0|[1-9][0-9]*)$ without "-0".
func canonicalInteger(s []byte) bool {
	if len(s) > 0 && s[0] == '-' {
		s = s[1:]
		if len(s) == 1 && s[0] == '0' {
			return false
		}
	}
	if len(s) == 0 || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for _, b := range s {
		if b < '0' || b > '9' {
			return false
		}
	}
	return true
}

// requestDecimal: a string matching
// ^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?(0|[1-9][0-9]*))?$ that is not a negative zero. Its
// magnitude is left to PostgreSQL, whose limits depend on the column's precision and scale.
func requestDecimal(raw []byte) (any, error) {
	text, ok := stringText(raw)
	if !ok {
		if isNumberToken(raw) {
			return nil, valueError(CategoryLegacyJSONNumber, "decimal must be sent as a JSON string, not a JSON number")
		}
		return nil, valueError(CategoryInvalidDecimal, "decimal must be a JSON string")
	}
	s := text
	negative := len(s) > 0 && s[0] == '-'
	if negative {
		s = s[1:]
	}
	i := digitRun(s, 0)
	if i == 0 || (s[0] == '0' && i > 1) {
		return nil, valueError(CategoryInvalidDecimal, "decimal must match -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?(0|[1-9][0-9]*))?")
	}
	zero := allZeros(s[:i])
	if i < len(s) && s[i] == '.' {
		j := digitRun(s, i+1)
		if j == i+1 {
			return nil, valueError(CategoryInvalidDecimal, "decimal point must be followed by digits")
		}
		zero = zero && allZeros(s[i+1:j])
		i = j
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := digitRun(s, i)
		if j == i || (s[i] == '0' && j > i+1) {
			return nil, valueError(CategoryInvalidDecimal, "decimal exponent must be 0 or digits without leading zeros")
		}
		i = j
	}
	if i != len(s) {
		return nil, valueError(CategoryInvalidDecimal, "decimal must match -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?(0|[1-9][0-9]*))?")
	}
	if negative && zero {
		return nil, valueError(CategoryInvalidDecimal, "decimal must not be a negative zero")
	}
	return numericToken(raw, text), nil
}

// digitRun returns the end of the run of ASCII digits in s starting at i.
func digitRun(s []byte, i int) int {
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

func allZeros(s []byte) bool {
	for _, b := range s {
		if b != '0' {
			return false
		}
	}
	return true
}

// requestFloat: a string that is exactly the ECMAScript shortest spelling of a finite binary64
// ("1", not "1.0"; "0", never "-0"), which for float4 must also fit a float4 without overflowing
// or underflowing to zero, as PostgreSQL's float4 input demands.
func requestFloat(k Kind, raw []byte) (any, error) {
	text, ok := stringText(raw)
	if !ok {
		if isNumberToken(raw) {
			return nil, valueError(CategoryLegacyJSONNumber, "float must be sent as a JSON string, not a JSON number")
		}
		return nil, valueError(CategoryInvalidFloat, "float must be a JSON string")
	}
	const rule = "float must be the shortest ECMAScript spelling of a finite binary64"
	// ParseFloat also reads "NaN", "Inf", "+1", ".5" and hex floats; none of them is spelled back
	// the same, so the comparison below refuses them all.
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil {
		return nil, valueError(CategoryInvalidFloat, rule)
	}
	var buf [32]byte
	if math.IsNaN(f) || math.IsInf(f, 0) || string(jcs.AppendNumber(buf[:0], f)) != string(text) {
		return nil, valueError(CategoryInvalidFloat, rule)
	}
	if k == KindFloat4 {
		f32, err := strconv.ParseFloat(string(text), 32)
		if err != nil || (f32 == 0 && f != 0) {
			return nil, valueError(CategoryOutOfRange, "float is outside the range of float4")
		}
	}
	return numericToken(raw, text), nil
}

// requestBool: true, false, or the strings "0" and "1" SQLiteNow sends.
func requestBool(raw []byte) (any, error) {
	switch raw[0] {
	case 't', 'f':
		if raw[0] == 't' {
			return jsonTrue, nil
		}
		return jsonFalse, nil
	case '"':
		if text, ok := stringText(raw); ok && len(text) == 1 {
			switch text[0] {
			case '0':
				return jsonFalse, nil
			case '1':
				return jsonTrue, nil
			}
		}
	}
	return nil, valueError(CategoryInvalidBooleanBridge, `bool must be true, false, "0" or "1"`)
}

// requestBytea: standard padded base64, handed on as bytea's hex input form "\x…".
func requestBytea(raw []byte) (any, error) {
	const rule = "bytea must be a standard padded base64 string"
	text, ok := stringText(raw)
	// Go's decoder skips CR and LF; the wire form has none.
	if !ok || bytes.ContainsAny(text, "\r\n") {
		return nil, valueError(CategoryInvalidBytea, rule)
	}
	data := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	n, err := base64.StdEncoding.Strict().Decode(data, text)
	if err != nil {
		return nil, valueError(CategoryInvalidBytea, rule)
	}
	// The token is the JSON string "\\x<hex>", which decodes to \x<hex>.
	tok := make([]byte, 0, 2*n+5)
	tok = append(tok, `"\\x`...)
	tok = hex.AppendEncode(tok, data[:n])
	return json.RawMessage(append(tok, '"')), nil
}

// requestUUID: a UUID in any form PostgreSQL's uuid input accepts (any case, optional braces, a
// dash after any group of four digits), so a malformed one is refused here and not by PostgreSQL.
func requestUUID(raw []byte) (any, error) {
	text, ok := stringText(raw)
	if !ok || !pgUUID(text) {
		return nil, valueError(CategoryInvalidText, "uuid must be a string holding a UUID")
	}
	return json.RawMessage(raw), nil
}

// pgUUID follows PostgreSQL's string_to_uuid: 32 hex digits, an optional '-' after each even
// group of two bytes but the last, the whole optionally in braces.
func pgUUID(s []byte) bool {
	braces := len(s) > 0 && s[0] == '{'
	if braces {
		if s[len(s)-1] != '}' {
			return false
		}
		s = s[1 : len(s)-1]
	}
	i := 0
	for n := range 16 {
		if i+2 > len(s) || !isHex(s[i]) || !isHex(s[i+1]) {
			return false
		}
		i += 2
		if i < len(s) && s[i] == '-' && n%2 == 1 && n < 15 {
			i++
		}
	}
	return i == len(s)
}

func isHex(b byte) bool {
	return isLowerHex(b) || (b >= 'A' && b <= 'F')
}

// requestText: any string without U+0000, which PostgreSQL text cannot store.
func requestText(raw []byte) (any, error) {
	text, ok := stringText(raw)
	if !ok {
		return nil, valueError(CategoryInvalidText, "value must be a JSON string")
	}
	if bytes.IndexByte(text, 0) >= 0 {
		return nil, valueError(CategoryInvalidText, "text must not contain U+0000")
	}
	return json.RawMessage(raw), nil
}
