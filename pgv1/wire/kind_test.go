package wire

import "testing"

func TestKindOf(t *testing.T) {
	tests := []struct {
		typeName string
		want     Kind
	}{
		{"int2", KindInt2}, {"int4", KindInt4}, {"int8", KindInt8}, {"numeric", KindNumeric},
		{"float4", KindFloat4}, {"float8", KindFloat8}, {"bool", KindBool}, {"bytea", KindBytea},
		{"uuid", KindUUID}, {"text", KindText}, {"varchar", KindText}, {"citext", KindText},
		{"bpchar", KindChar}, {"date", KindDate}, {"time", KindTime}, {"timetz", KindTimeTZ},
		{"timestamp", KindTimestamp}, {"timestamptz", KindTimestampTZ},
	}
	for _, tt := range tests {
		got, ok := KindOf(tt.typeName)
		if !ok || got != tt.want {
			t.Errorf("KindOf(%q) = %v, %v; want %v, true", tt.typeName, got, ok, tt.want)
		}
	}
	for _, unsupported := range []string{"json", "jsonb", "_int4", "_text", "money", "interval", "inet", "point", "xml", "", "INT4", "integer"} {
		if k, ok := KindOf(unsupported); ok {
			t.Errorf("KindOf(%q) = %v, true; want unsupported", unsupported, k)
		}
	}
}

func TestKind_StringNamesTheType(t *testing.T) {
	for name, k := range kindNames {
		back, _ := KindOf(k.String())
		if back != k {
			t.Errorf("Kind %v (from %q): KindOf(String()) = %v", k, name, back)
		}
	}
	if s := Kind(0).String(); s != "Kind(0)" {
		t.Errorf("Kind(0).String() = %q", s)
	}
}
