package pgv1

import "testing"

// preparePayload builds the applied object in JCS member order in one walk: the key column is
// slotted in where it sorts when the payload leaves it out, kept when the payload repeats it
// (escapes included), and the column list follows the same order.
func TestPreparePayload_KeyPlacement(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, Config{})
	tests := []struct {
		key, payload   string
		apply, columns string
		request        string
	}{
		{`k"1`, `{"stars":"2", "body":"b"}`, `{"body":"b","id":"k\"1","stars":"2"}`, "body,id,stars", `{"body":"b","stars":"2"}`},
		{"k", `{"stars":"2"}`, `{"id":"k","stars":"2"}`, "id,stars", `{"stars":"2"}`},
		{"k", `{"body":"b"}`, `{"body":"b","id":"k"}`, "body,id", `{"body":"b"}`},
		{`k"1`, `{"id":"k\u00221","body":"b"}`, `{"body":"b","id":"k\"1"}`, "body,id", `{"body":"b","id":"k\"1"}`},
		{"k", `{}`, `{"id":"k"}`, "id", `{}`},
	}
	for _, tt := range tests {
		r := stagedRow{table: s.reg.lookup("business", "comments"), key: tt.key}
		if err := s.preparePayload(&r, []byte(tt.payload)); err != nil {
			t.Fatalf("preparePayload(%s): %v", tt.payload, err)
		}
		if string(r.apply) != tt.apply || r.columns != tt.columns || string(r.request) != tt.request {
			t.Errorf("preparePayload(%s) = apply %s, columns %q, request %s; want %s, %q, %s",
				tt.payload, r.apply, r.columns, r.request, tt.apply, tt.columns, tt.request)
		}
	}
}

// validIdentifier accepts exactly [a-z_][a-z0-9_]*.
func TestValidIdentifier(t *testing.T) {
	for _, s := range []string{"a", "_", "users", "a_1", "_sync_scope_id", "z9"} {
		if !validIdentifier(s) || !validIdentifier([]byte(s)) {
			t.Errorf("validIdentifier(%q) = false", s)
		}
	}
	for _, s := range []string{"", "1a", "Users", "a-b", "a b", "é", "a.b", `a"`} {
		if validIdentifier(s) || validIdentifier([]byte(s)) {
			t.Errorf("validIdentifier(%q) = true", s)
		}
	}
}
