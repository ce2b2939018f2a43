package push

import (
	"encoding/binary"
	"testing"
)

// clientFrame is a masked frame as a client sends it.
func clientFrame(fin bool, opcode byte, payload []byte) []byte {
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	f := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	case n <= 0xffff:
		f = append(f, 0x80|126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	mask := []byte{1, 2, 3, 4}
	f = append(f, mask...)
	for i, c := range payload {
		f = append(f, c^mask[i%4])
	}
	return f
}

const (
	opContinuation, opText, opPing = 0x0, 0x1, 0x9
)

func TestFrameTracker_AtRestOnlyBetweenMessages(t *testing.T) {
	big := make([]byte, 70_000)
	cases := []struct {
		name   string
		frames [][]byte
		// atRest after each whole frame
		want []bool
	}{
		{"one short message", [][]byte{clientFrame(true, opText, []byte(`{"type":"ack","seq":1}`))}, []bool{true}},
		{"16-bit length", [][]byte{clientFrame(true, opText, make([]byte, 300))}, []bool{true}},
		{"64-bit length", [][]byte{clientFrame(true, opText, big)}, []bool{true}},
		{"empty payload", [][]byte{clientFrame(true, opPing, nil)}, []bool{true}},
		{"fragments with a ping between", [][]byte{
			clientFrame(false, opText, []byte(`{"type":`)),
			clientFrame(true, opPing, []byte("p")),
			clientFrame(false, opContinuation, []byte(`"ack",`)),
			clientFrame(true, opContinuation, []byte(`"seq":2}`)),
			clientFrame(true, opPing, nil),
		}, []bool{false, false, false, true, true}},
	}
	for _, tc := range cases {
		for _, chunk := range []int{1, 3, 1 << 20} {
			var tr frameTracker
			for i, f := range tc.frames {
				for start := 0; start < len(f); start += chunk {
					end := min(start+chunk, len(f))
					tr.feed(f[start:end])
					if end < len(f) && tr.atRest() {
						t.Fatalf("%s, chunks of %d: at rest %d bytes into frame %d of %d bytes", tc.name, chunk, end, i, len(f))
					}
				}
				if got := tr.atRest(); got != tc.want[i] {
					t.Fatalf("%s, chunks of %d: after frame %d at rest = %v, want %v", tc.name, chunk, i, got, tc.want[i])
				}
			}
		}
	}
}
