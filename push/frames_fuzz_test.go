package push

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzParseClientMessage feeds arbitrary WebSocket text messages to the client message parser.
// It checks that nothing panics, that a refusal is a JSON syntax or type error (the session
// then ignores the message, or refuses an auth message with 4003), and that an accepted message
// was valid JSON whose fields survive a round trip: written back and parsed again, it is the
// same message.
func FuzzParseClientMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"auth","token":"eyJhbGciOiJIUzI1NiJ9.e30.sig"}`,
		`{"type":"ack","seq":42}`,
		`{"type":"ack","seq":-1}`,
		`{"type":"ack","seq":9223372036854775808}`,
		`{"type":"ack","seq":"42"}`,
		`{"type":"ack","seq":4.2e1}`,
		`{"TYPE":"auth","Token":"t"}`,
		`{"type":"ack","seq":1,"type":"auth"}`,
		`null`, `[]`, `"ack"`, ``, `{}`, `{"type":"ack","seq":1}{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseClientMessage(data)
		if err != nil {
			var syntax *json.SyntaxError
			var typ *json.UnmarshalTypeError
			if !errors.As(err, &syntax) && !errors.As(err, &typ) {
				t.Fatalf("message %q refused with %T %v, want a JSON syntax or type error", data, err, err)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("message %q is not JSON but was accepted as %+v", data, m)
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := parseClientMessage(again)
		if err != nil || m2 != m {
			t.Fatalf("message %q parsed as %+v; written back as %s it parsed as %+v, %v", data, m, again, m2, err)
		}
	})
}
