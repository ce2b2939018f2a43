package push

import (
	"encoding/json"
	"strconv"
	"time"
)

// The server's frames (docs/architecture.md "Push protocol"): one JSON object per WebSocket text message
// or SSE data line.

func readyFrame(seq int64, heartbeat time.Duration) []byte {
	b := append([]byte(`{"type":"ready","seq":`), strconv.FormatInt(seq, 10)...)
	b = append(b, `,"heartbeat_s":`...)
	b = strconv.AppendInt(b, int64(heartbeat/time.Second), 10)
	return append(b, '}')
}

func changesFrame(seq int64) []byte {
	b := append(make([]byte, 0, 40), `{"type":"changes","seq":`...)
	b = strconv.AppendInt(b, seq, 10)
	return append(b, '}')
}

// clientMessage is what a client may send on a WebSocket: {"type":"auth","token":…} first,
// when it could not send an Authorization header, and {"type":"ack","seq":N} to move its cursor.
type clientMessage struct {
	Type  string `json:"type"`
	Token string `json:"token"`
	Seq   int64  `json:"seq"`
}

func parseClientMessage(data []byte) (clientMessage, error) {
	var m clientMessage
	err := json.Unmarshal(data, &m)
	return m, err
}
