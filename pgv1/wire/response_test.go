package wire

import "testing"

func TestAppendWireValue(t *testing.T) {
	tests := []struct {
		kind Kind
		text string
		null bool
		want string
	}{
		{KindInt4, "", true, `null`},
		{KindBool, "", true, `null`},
		{KindFloat8, "", true, `null`},
		{KindInt8, "-9223372036854775808", false, `"-9223372036854775808"`},
		{KindNumeric, "1250.00", false, `"1250.00"`},
		{KindBool, "true", false, `true`},
		{KindBool, "false", false, `false`},
		{KindFloat8, "1e+20", false, `"100000000000000000000"`},
		{KindFloat8, "1e+21", false, `"1e+21"`},
		{KindFloat8, "1e-07", false, `"1e-7"`},
		{KindFloat8, "-0", false, `"0"`},
		{KindFloat8, "4.9406564584124654e-324", false, `"5e-324"`},
		{KindFloat4, "1.2345678806304932", false, `"1.2345678806304932"`},
		{KindFloat8, "NaN", false, `"NaN"`},
		{KindFloat8, "-Infinity", false, `"-Infinity"`},
		{KindBytea, "AAEC/w==", false, `"AAEC/w=="`},
		{KindText, "Tab\there \"quoted\" é € </script>", false, `"Tab\there \"quoted\" é € </script>"`},
		{KindText, "\x01", false, `"\u0001"`},
		{KindChar, "ab  ", false, `"ab  "`},
		{KindTimestampTZ, "2026-07-23T09:45:00.51234+00:00", false, `"2026-07-23T09:45:00.51234+00:00"`},
	}
	for _, tt := range tests {
		if got := string(AppendWireValue([]byte("x"), tt.kind, tt.text, tt.null)); got != "x"+tt.want {
			t.Errorf("AppendWireValue(%s, %q, %v) = %s, want x%s", tt.kind, tt.text, tt.null, got, tt.want)
		}
	}
}
