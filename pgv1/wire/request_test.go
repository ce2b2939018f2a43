package wire

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestRequestValue_Accepts holds the accepted values of docs/protocol-v1.md §4.6 and the other
// forms §1.6 allows, with the token PostgreSQL is given.
func TestRequestValue_Accepts(t *testing.T) {
	tests := []struct {
		kind     Kind
		raw, out string
	}{
		{KindInt8, `"-9223372036854775808"`, `"-9223372036854775808"`},
		{KindInt8, `"9223372036854775807"`, `"9223372036854775807"`},
		{KindInt8, `"9007199254740993"`, `"9007199254740993"`},
		{KindInt8, `"0"`, `"0"`},
		{KindInt2, `"-32768"`, `"-32768"`},
		{KindInt2, `"32767"`, `"32767"`},
		{KindInt4, `"-2147483648"`, `"-2147483648"`},
		{KindInt4, `"2147483647"`, `"2147483647"`},
		{KindInt4, `"\u0033"`, `"3"`},
		{KindInt4, `null`, `null`},

		{KindNumeric, `"1234567890.123456789"`, `"1234567890.123456789"`},
		{KindNumeric, `"1.25e3"`, `"1.25e3"`},
		{KindNumeric, `"12.3"`, `"12.3"`},
		{KindNumeric, `"-0.5"`, `"-0.5"`},
		{KindNumeric, `"0"`, `"0"`},
		{KindNumeric, `"0.000"`, `"0.000"`},
		{KindNumeric, `"0e0"`, `"0e0"`},
		{KindNumeric, `"1E-5"`, `"1E-5"`},
		{KindNumeric, `"1e+1000"`, `"1e+1000"`},
		{KindNumeric, `"-1e-1000"`, `"-1e-1000"`},

		{KindFloat8, `"5e-324"`, `"5e-324"`},
		{KindFloat8, `"1.7976931348623157e+308"`, `"1.7976931348623157e+308"`},
		{KindFloat8, `"-1.7976931348623157e+308"`, `"-1.7976931348623157e+308"`},
		{KindFloat8, `"0"`, `"0"`},
		{KindFloat8, `"1"`, `"1"`},
		{KindFloat8, `"1e+21"`, `"1e+21"`},
		{KindFloat8, `"100000000000000000000"`, `"100000000000000000000"`},
		{KindFloat8, `"0.000001"`, `"0.000001"`},
		{KindFloat8, `"1e-7"`, `"1e-7"`},
		{KindFloat4, `"1.2345678901234567"`, `"1.2345678901234567"`},
		{KindFloat4, `"3.4028234663852886e+38"`, `"3.4028234663852886e+38"`},
		{KindFloat4, `"1e-45"`, `"1e-45"`},

		{KindBool, `true`, `true`},
		{KindBool, `false`, `false`},
		{KindBool, `"0"`, `false`},
		{KindBool, `"1"`, `true`},

		{KindBytea, `""`, `"\\x"`},
		{KindBytea, `"AAEC/w=="`, `"\\x000102ff"`},
		{KindBytea, `"aGk="`, `"\\x6869"`},

		{KindUUID, `"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"`, `"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"`},
		{KindUUID, `"6F0D3C4E-8F0B-4C1E-9A57-2F1E3B7C9D01"`, `"6F0D3C4E-8F0B-4C1E-9A57-2F1E3B7C9D01"`},
		{KindUUID, `"{6f0d3c4e8f0b4c1e9a572f1e3b7c9d01}"`, `"{6f0d3c4e8f0b4c1e9a572f1e3b7c9d01}"`},
		{KindUUID, `"6f0d-3c4e-8f0b-4c1e-9a57-2f1e-3b7c-9d01"`, `"6f0d-3c4e-8f0b-4c1e-9a57-2f1e-3b7c-9d01"`},

		{KindText, `""`, `""`},
		{KindText, `"Tab\there \"quoted\" é €"`, `"Tab\there \"quoted\" é €"`},
		{KindChar, `"ab"`, `"ab"`},
		{KindDate, `"2026-07-23"`, `"2026-07-23"`},
		{KindTimestampTZ, `"2026-07-23T09:45:00.51234Z"`, `"2026-07-23T09:45:00.51234Z"`},
		{KindTime, `null`, `null`},
	}
	for _, tt := range tests {
		v, err := RequestValue(tt.kind, []byte(tt.raw))
		if err != nil {
			t.Errorf("RequestValue(%s, %s): %v", tt.kind, tt.raw, err)
			continue
		}
		if got := string(v.(json.RawMessage)); got != tt.out {
			t.Errorf("RequestValue(%s, %s) = %s, want %s", tt.kind, tt.raw, got, tt.out)
		}
	}
}

// TestRequestValue_Refuses holds the rejected values of docs/protocol-v1.md §4.6 and the other
// refusals of §1.6, each with its category.
func TestRequestValue_Refuses(t *testing.T) {
	tests := []struct {
		kind     Kind
		raw      string
		category string
	}{
		{KindInt8, `"+1"`, CategoryInvalidInteger},
		{KindInt8, `"01"`, CategoryInvalidInteger},
		{KindInt8, `"-0"`, CategoryInvalidInteger},
		{KindInt8, `"1.5"`, CategoryInvalidInteger},
		{KindInt8, `"1e3"`, CategoryInvalidInteger},
		{KindInt8, `""`, CategoryInvalidInteger},
		{KindInt8, `"-"`, CategoryInvalidInteger},
		{KindInt8, `" 1"`, CategoryInvalidInteger},
		{KindInt8, `"9223372036854775808"`, CategoryOutOfRange},
		{KindInt8, `"-9223372036854775809"`, CategoryOutOfRange},
		{KindInt8, `"99999999999999999999999"`, CategoryOutOfRange},
		{KindInt8, `42`, CategoryLegacyJSONNumber},
		{KindInt4, `-1`, CategoryLegacyJSONNumber},
		{KindInt8, `true`, CategoryInvalidInteger},
		{KindInt8, `{}`, CategoryInvalidInteger},
		{KindInt2, `"32768"`, CategoryOutOfRange},
		{KindInt2, `"-32769"`, CategoryOutOfRange},
		{KindInt4, `"2147483648"`, CategoryOutOfRange},
		{KindInt4, `"-2147483649"`, CategoryOutOfRange},

		{KindNumeric, `"+1.25"`, CategoryInvalidDecimal},
		{KindNumeric, `"01.25"`, CategoryInvalidDecimal},
		{KindNumeric, `"-0.0e10"`, CategoryInvalidDecimal},
		{KindNumeric, `"-0"`, CategoryInvalidDecimal},
		{KindNumeric, `"-0.000"`, CategoryInvalidDecimal},
		{KindNumeric, `"1."`, CategoryInvalidDecimal},
		{KindNumeric, `".5"`, CategoryInvalidDecimal},
		{KindNumeric, `"1e"`, CategoryInvalidDecimal},
		{KindNumeric, `"1e+"`, CategoryInvalidDecimal},
		{KindNumeric, `"1e01"`, CategoryInvalidDecimal},
		{KindNumeric, `"1.5.5"`, CategoryInvalidDecimal},
		{KindNumeric, `"NaN"`, CategoryInvalidDecimal},
		{KindNumeric, `"Infinity"`, CategoryInvalidDecimal},
		{KindNumeric, `""`, CategoryInvalidDecimal},
		{KindNumeric, `1.25`, CategoryLegacyJSONNumber},
		{KindNumeric, `false`, CategoryInvalidDecimal},

		{KindFloat8, `"1.0"`, CategoryInvalidFloat},
		{KindFloat8, `"1e0"`, CategoryInvalidFloat},
		{KindFloat8, `"-0"`, CategoryInvalidFloat},
		{KindFloat8, `"1e"`, CategoryInvalidFloat},
		{KindFloat8, `"NaN"`, CategoryInvalidFloat},
		{KindFloat8, `"Infinity"`, CategoryInvalidFloat},
		{KindFloat8, `"-Infinity"`, CategoryInvalidFloat},
		{KindFloat8, `"inf"`, CategoryInvalidFloat},
		{KindFloat8, `"+1"`, CategoryInvalidFloat},
		{KindFloat8, `".5"`, CategoryInvalidFloat},
		{KindFloat8, `"0x1p-2"`, CategoryInvalidFloat},
		{KindFloat8, `"1e21"`, CategoryInvalidFloat},
		{KindFloat8, `"1e400"`, CategoryInvalidFloat},
		{KindFloat8, `"1e-400"`, CategoryInvalidFloat},
		{KindFloat8, `"0.1000000000000000055511151231257827"`, CategoryInvalidFloat},
		{KindFloat8, `""`, CategoryInvalidFloat},
		{KindFloat8, `1.25`, CategoryLegacyJSONNumber},
		{KindFloat4, `1`, CategoryLegacyJSONNumber},
		{KindFloat8, `[]`, CategoryInvalidFloat},
		{KindFloat4, `"1e+39"`, CategoryOutOfRange},
		{KindFloat4, `"-3.5e+38"`, CategoryOutOfRange},
		{KindFloat4, `"1e-46"`, CategoryOutOfRange},

		{KindBool, `"true"`, CategoryInvalidBooleanBridge},
		{KindBool, `"2"`, CategoryInvalidBooleanBridge},
		{KindBool, `""`, CategoryInvalidBooleanBridge},
		{KindBool, `"01"`, CategoryInvalidBooleanBridge},
		{KindBool, `1`, CategoryInvalidBooleanBridge},
		{KindBool, `0`, CategoryInvalidBooleanBridge},

		{KindBytea, `"AAEC/w"`, CategoryInvalidBytea},
		{KindBytea, `"AAEC_w=="`, CategoryInvalidBytea},
		{KindBytea, `"aGl="`, CategoryInvalidBytea}, // non-zero padding bits
		{KindBytea, `"aG\nk="`, CategoryInvalidBytea},
		{KindBytea, `"\\x6869"`, CategoryInvalidBytea},
		{KindBytea, `12`, CategoryInvalidBytea},

		{KindUUID, `"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d0"`, CategoryInvalidText},
		{KindUUID, `"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d0g"`, CategoryInvalidText},
		{KindUUID, `"6f0d3c4e8-f0b-4c1e-9a57-2f1e3b7c9d01"`, CategoryInvalidText},
		{KindUUID, `"{6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"`, CategoryInvalidText},
		{KindUUID, `"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01-"`, CategoryInvalidText},
		{KindUUID, `"{}"`, CategoryInvalidText},
		{KindUUID, `1`, CategoryInvalidText},

		{KindText, `1`, CategoryInvalidText},
		{KindText, `true`, CategoryInvalidText},
		{KindText, `{"a":"b"}`, CategoryInvalidText},
		{KindText, `["a"]`, CategoryInvalidText},
		{KindText, `"a\u0000b"`, CategoryInvalidText},
		{KindChar, `1`, CategoryInvalidText},
		{KindTimestampTZ, `1753263900`, CategoryInvalidText},
		{Kind(0), `"x"`, CategoryInvalidText},
	}
	for _, tt := range tests {
		v, err := RequestValue(tt.kind, []byte(tt.raw))
		var ve *ValueError
		if !errors.As(err, &ve) {
			t.Errorf("RequestValue(%s, %s) = %s, %v; want a %s refusal", tt.kind, tt.raw, v, err, tt.category)
			continue
		}
		if ve.Category != tt.category || ve.Message == "" {
			t.Errorf("RequestValue(%s, %s): %v; want category %s", tt.kind, tt.raw, err, tt.category)
		}
	}
}

// TestRequestValue_ErrorsDoNotRepeatTheValue: a refusal names the rule, never the value, which
// may be private.
func TestRequestValue_ErrorsDoNotRepeatTheValue(t *testing.T) {
	const secret = "secret-7731"
	for _, k := range []Kind{KindInt8, KindNumeric, KindFloat8, KindBool, KindBytea, KindUUID} {
		_, err := RequestValue(k, []byte(`"`+secret+`"`))
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("RequestValue(%s, secret) = %v; want an error without the value", k, err)
		}
	}
}

func BenchmarkRequestValue(b *testing.B) {
	for _, bench := range []struct {
		name string
		kind Kind
		raw  string
	}{
		{"int8", KindInt8, `"9007199254740993"`},
		{"numeric", KindNumeric, `"1234567890.123456789"`},
		{"float8", KindFloat8, `"1.2345678901234567"`},
		{"bool", KindBool, `"1"`},
		{"text", KindText, `"ann@example.com"`},
		{"bytea", KindBytea, `"AAECAwQFBgcICQoLDA0ODw=="`},
	} {
		raw := []byte(bench.raw)
		b.Run(bench.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := RequestValue(bench.kind, raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
