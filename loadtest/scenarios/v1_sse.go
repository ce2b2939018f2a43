package scenarios

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// watchLineLimit is the longest SSE line (and event) a SQLiteNow client
// accepts (docs/protocol-v1.md §3.12).
const watchLineLimit = 1 << 20

// watchEvent is the data of one "event: bundle" of GET /sync/watch, reduced
// to what a client checks.
type watchEvent struct {
	BundleSeq int64  `json:"bundle_seq"`
	SourceID  string `json:"source_id"`
}

// readWatch reads a /sync/watch stream the way SQLiteNow does: comments
// (heartbeats), id: and retry: lines and events other than "bundle" are
// ignored, multi-line data is joined, and every bundle event must carry a
// bundle_seq > 0 and, if any, a valid source_id. It calls onEvent with each event and the time its closing
// blank line was read, and returns nil when the stream ends cleanly, or the
// first error of the stream or of onEvent.
func readWatch(r io.Reader, onEvent func(watchEvent, time.Time) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), watchLineLimit)
	var typ string
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			if err := dispatchWatch(typ, data, onEvent); err != nil {
				return err
			}
			typ, data = "", data[:0]
			continue
		}
		if line[0] == ':' {
			continue // a comment: the heartbeat
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value, _ = bytes.CutPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			typ = string(value)
		case "data":
			if len(data) > 0 {
				data = append(data, '\n')
			}
			if data = append(data, value...); len(data) > watchLineLimit {
				return fmt.Errorf("watch event over %d bytes", watchLineLimit)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read watch stream: %w", err)
	}
	return nil
}

// dispatchWatch handles one complete event; one without data is no event.
func dispatchWatch(typ string, data []byte, onEvent func(watchEvent, time.Time) error) error {
	if typ != "bundle" || len(data) == 0 {
		return nil
	}
	var ev watchEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return fmt.Errorf("decode watch event: %w", err)
	}
	if ev.BundleSeq <= 0 {
		return errors.New("watch event without a positive bundle_seq")
	}
	if ev.SourceID != "" && !validSourceID(ev.SourceID) {
		return fmt.Errorf("watch event with an invalid source_id %q", ev.SourceID)
	}
	return onEvent(ev, time.Now())
}

// validSourceID reports whether s fits the source id grammar of
// docs/protocol-v1.md §2.3: 1 to 256 bytes of visible ASCII ('!' … '~').
func validSourceID(s string) bool {
	if len(s) == 0 || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '!' || s[i] > '~' {
			return false
		}
	}
	return true
}
