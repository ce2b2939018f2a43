package pg

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// columnText converts a payload value to the text input form of column c's type, so that the
// materializer can pass every value as text and let PostgreSQL cast it. nil means SQL NULL.
//
// Clients keep their data in SQLite and send it as JSON (docs/protocol-v0.md §2): UUIDs as text or, from
// BLOB key columns, as base64 of 16 bytes; BLOBs as standard base64; booleans often as 0/1;
// times as RFC 3339 text or Unix seconds. A value that does not fit the column is an error,
// which the materializer records as a failed projection.
//
// An empty string in a uuid column is NULL too: the foreign-key precheck reads it as "no
// reference" (docs/protocol-v0.md §3.7), so a change carrying it is applied and must also project.
func columnText(c Column, raw json.RawMessage) (*string, error) {
	if len(raw) == 0 {
		raw = json.RawMessage("null")
	}
	if string(raw) == "null" || (c.Type == "uuid" && string(raw) == `""`) {
		if c.NotNull {
			return nil, fmt.Errorf("column %q is NOT NULL but the payload has %s", c.Name, raw)
		}
		return nil, nil
	}
	text, err := convert(c.Type, raw)
	if err != nil {
		return nil, fmt.Errorf("column %q (%s): %w", c.Name, c.Type, err)
	}
	return &text, nil
}

// convert maps one non-null JSON value to the text form of a PostgreSQL base type.
func convert(typ string, raw json.RawMessage) (string, error) {
	kind := raw[0]
	switch typ {
	case "uuid":
		s, err := jsonString(raw)
		if err != nil {
			return "", err
		}
		if u, ok := ParseUUID(s); ok {
			return u.String(), nil
		}
		if u, ok := uuidFromBase64(s); ok {
			return u.String(), nil
		}
		return "", fmt.Errorf("not a UUID or base64 of 16 bytes")
	case "bytea":
		s, err := jsonString(raw)
		if err != nil {
			return "", err
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return "", fmt.Errorf("not standard base64")
		}
		return `\x` + hex.EncodeToString(b), nil
	case "timestamptz", "timestamp", "date":
		return timeText(typ, raw)
	case "int2", "int4", "int8":
		if kind == 't' || kind == 'f' {
			return boolDigit(raw), nil
		}
		if _, err := strconv.ParseInt(string(raw), 10, intBits(typ)); err != nil {
			return "", fmt.Errorf("not an integer in range")
		}
		return string(raw), nil
	case "float4", "float8", "numeric":
		if kind == '"' && typ == "numeric" { // exact decimals may travel as strings
			s, _ := jsonString(raw)
			if !decimalPattern.MatchString(s) {
				return "", fmt.Errorf("not a number")
			}
			return s, nil
		}
		if kind != '-' && (kind < '0' || kind > '9') {
			return "", fmt.Errorf("not a number")
		}
		return string(raw), nil
	case "bool":
		switch string(raw) {
		case "true", "1":
			return "true", nil
		case "false", "0":
			return "false", nil
		}
		return "", fmt.Errorf("not a boolean (true, false, 1 or 0)")
	case "json", "jsonb":
		return string(raw), nil
	}
	// Text and every other type (varchar, enums, inet, …): strings go in as they are and
	// PostgreSQL parses them; numbers and booleans by their literal, as SQLite would store them.
	if kind == '"' {
		return jsonString(raw)
	}
	return string(raw), nil
}

// decimalPattern is a decimal number as numeric columns accept it in a string. It leaves out
// what strconv.ParseFloat would also take (NaN, Infinity, hex floats, digit underscores): no
// JSON number carries those, and PostgreSQL would store NaN and Infinity without complaint.
var decimalPattern = regexp.MustCompile(`^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$`)

// timeText reads RFC 3339 text (a full date for date columns too) or Unix epoch seconds.
func timeText(typ string, raw json.RawMessage) (string, error) {
	if raw[0] == '"' {
		s, err := jsonString(raw)
		if err != nil {
			return "", err
		}
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return formatTime(typ, t), nil
		}
		if t, err := time.Parse(time.DateOnly, s); err == nil && typ == "date" {
			return formatTime(typ, t), nil
		}
		return "", fmt.Errorf("not RFC 3339 text")
	}
	secs, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsInf(secs, 0) || math.Abs(secs) > 1e13 {
		return "", fmt.Errorf("not RFC 3339 text or Unix seconds")
	}
	whole, frac := math.Modf(secs)
	return formatTime(typ, time.Unix(int64(whole), int64(frac*1e9)).UTC()), nil
}

func formatTime(typ string, t time.Time) string {
	switch typ {
	case "date":
		return t.Format(time.DateOnly)
	case "timestamp":
		return t.Format("2006-01-02T15:04:05.999999")
	}
	return t.Format(time.RFC3339Nano)
}

func jsonString(raw json.RawMessage) (string, error) {
	if raw[0] != '"' {
		return "", fmt.Errorf("not a string")
	}
	if !strings.ContainsRune(string(raw), '\\') {
		return string(raw[1 : len(raw)-1]), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("not a string")
	}
	return s, nil
}

func intBits(typ string) int {
	switch typ {
	case "int2":
		return 16
	case "int4":
		return 32
	}
	return 64
}

func boolDigit(raw json.RawMessage) string {
	if raw[0] == 't' {
		return "1"
	}
	return "0"
}
