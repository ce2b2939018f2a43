package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf16"

	"github.com/pulsesync/pulsesync/sequencer"
)

// The wire form of advances, shared by NATS messages and NOTIFY payloads: one batch per
// message, in compact JSON with short keys,
//
//	{"v":1,"o":"9f3c…","a":[{"u":"alice","s":42,"f":40,"d":"phone","c":["business"],"t":1767225600123456}]}
//
// v is the format version, o the sending node's origin id (random per process, so a node can
// skip its own NOTIFY payloads), a the advances: u user, s seq, f from, d source (the device),
// c schemas, t when the commit was announced (Unix microseconds, the sender's clock). Unknown
// keys are ignored, so version 1 can grow optional keys; anything a version 1 reader would
// misread needs version 2. f, d, c and t are left out when unknown.
//
// The encoder escapes every non-ASCII character, so a payload's length in bytes is the same in
// any server encoding: PostgreSQL counts a NOTIFY payload's bytes after converting it to the
// database's encoding, and refuses it whole if that reaches 8000.
const wireVersion = 1

// wireBatch and wireAdvance are the decoder's view of the wire form.
type wireBatch struct {
	V int           `json:"v"`
	O string        `json:"o"`
	A []wireAdvance `json:"a"`
}

type wireAdvance struct {
	U string   `json:"u"`
	S int64    `json:"s"`
	F int64    `json:"f"`
	D string   `json:"d"`
	C []string `json:"c"`
	T int64    `json:"t"`
}

// Errors of decodeBatch. A malformed message is dropped whole; reconciliation repairs what it
// carried.
var (
	errUnknownVersion = errors.New("unknown wire version")
	errBadAdvance     = errors.New("invalid advance")
)

// decodeBatch parses one message. It never panics on any input: a message that is not valid
// JSON, has another version, or holds an advance without user or positive seq, or with from
// outside 1…seq, is an error.
func decodeBatch(data []byte) (origin string, advances []sequencer.Advance, err error) {
	var b wireBatch
	if err := json.Unmarshal(data, &b); err != nil {
		return "", nil, fmt.Errorf("decode advances: %w", err)
	}
	if b.V != wireVersion {
		return "", nil, fmt.Errorf("decode advances: %w %d", errUnknownVersion, b.V)
	}
	advances = make([]sequencer.Advance, len(b.A))
	for i, w := range b.A {
		if w.U == "" || w.S <= 0 || w.F < 0 || w.F > w.S {
			return "", nil, fmt.Errorf("decode advances: %w at index %d", errBadAdvance, i)
		}
		advances[i] = sequencer.Advance{User: w.U, Seq: w.S, From: w.F, Source: w.D, Schemas: w.C}
		if w.T > 0 {
			advances[i].At = time.UnixMicro(w.T)
		}
	}
	return b.O, advances, nil
}

// batchWriter encodes advances into batches of at most limit bytes each.
type batchWriter struct {
	header []byte // {"v":1,"o":"…","a":[
	limit  int
}

const batchFooter = "]}"

func newBatchWriter(origin string, limit int) batchWriter {
	h := []byte(`{"v":` + strconv.Itoa(wireVersion) + `,"o":`)
	h = appendString(h, origin)
	h = append(h, `,"a":[`...)
	return batchWriter{header: h, limit: limit}
}

// one encodes a single advance as a batch of its own, for a NATS message.
func (w batchWriter) one(a sequencer.Advance) []byte {
	b := append([]byte(nil), w.header...)
	b = appendAdvance(b, a)
	return append(b, batchFooter...)
}

// split encodes advances into as few batches as it can without any exceeding the limit. An
// advance that does not fit in a batch of its own is sent with only user, seq and time,
// which a receiver reads as "may concern everybody"; one that does not fit even so (a user id
// of thousands of bytes) is left out and counted in dropped.
func (w batchWriter) split(advances []sequencer.Advance) (batches []string, dropped int) {
	room := w.limit - len(w.header) - len(batchFooter)
	var cur []byte
	var el []byte
	for _, a := range advances {
		el = appendAdvance(el[:0], a)
		if len(el) > room {
			el = appendAdvance(el[:0], sequencer.Advance{User: a.User, Seq: a.Seq, At: a.At})
			if len(el) > room {
				dropped++
				continue
			}
		}
		if cur != nil && len(cur)+1+len(el)+len(batchFooter) > w.limit {
			batches = append(batches, string(append(cur, batchFooter...)))
			cur = nil
		}
		if cur == nil {
			cur = append(make([]byte, 0, min(w.limit, notifyPayloadMax+1)), w.header...)
		} else {
			cur = append(cur, ',')
		}
		cur = append(cur, el...)
	}
	if cur != nil {
		batches = append(batches, string(append(cur, batchFooter...)))
	}
	return batches, dropped
}

// appendAdvance appends one advance's JSON object.
func appendAdvance(b []byte, a sequencer.Advance) []byte {
	b = append(b, `{"u":`...)
	b = appendString(b, a.User)
	b = append(b, `,"s":`...)
	b = strconv.AppendInt(b, a.Seq, 10)
	if a.From != 0 {
		b = append(b, `,"f":`...)
		b = strconv.AppendInt(b, a.From, 10)
	}
	if a.Source != "" {
		b = append(b, `,"d":`...)
		b = appendString(b, a.Source)
	}
	if len(a.Schemas) > 0 {
		b = append(b, `,"c":[`...)
		for i, s := range a.Schemas {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		b = append(b, ']')
	}
	if !a.At.IsZero() {
		b = append(b, `,"t":`...)
		b = strconv.AppendInt(b, a.At.UnixMicro(), 10)
	}
	return append(b, '}')
}

// appendString appends s as a JSON string of ASCII characters only. Invalid UTF-8 becomes
// U+FFFD, as encoding/json does; ids from verified tokens are valid UTF-8.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	escape := func(b []byte, r rune) []byte {
		return append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
	}
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r < 0x20 || r == 0x7f:
			b = escape(b, r)
		case r < 0x80:
			b = append(b, byte(r))
		case r > 0xffff:
			hi, lo := utf16.EncodeRune(r)
			b = escape(escape(b, hi), lo)
		default:
			b = escape(b, r)
		}
	}
	return append(b, '"')
}
