package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/pulsesync/pulsesync/pg"
)

// msgUnparsableUpload is the reference's message for an upload body it cannot decode
// (docs/protocol-v0.md §3.9); clients may show it, so it is kept verbatim.
const msgUnparsableUpload = "Failed to parse upload request"

// badRequest is a request refused with 400 invalid_request. message is safe to show the client;
// cause, when set, is for the server's log only.
type badRequest struct {
	message string
	cause   error
}

func (e *badRequest) Error() string {
	if e.cause != nil {
		return e.message + ": " + e.cause.Error()
	}
	return e.message
}

func (e *badRequest) Unwrap() error { return e.cause }

// uploadRequest is the body of POST /sync/upload (docs/protocol-v0.md §3.1). last_server_seq_seen is
// decoded only so that a wrongly typed value fails the request as it did in the reference; the
// server never uses it.
type uploadRequest struct {
	LastServerSeqSeen int64           `json:"last_server_seq_seen"`
	Changes           []*uploadChange `json:"changes"`
}

// uploadChange is one change as sent. Pointers and RawMessage keep "absent" apart from zero.
type uploadChange struct {
	SourceChangeID *int64          `json:"source_change_id"`
	Schema         string          `json:"schema"`
	Table          string          `json:"table"`
	Op             string          `json:"op"`
	PK             string          `json:"pk"`
	ServerVersion  int64           `json:"server_version"`
	Payload        json.RawMessage `json:"payload"`
}

// decodeUpload decodes an upload body into the changes pg.Store.Upload takes, in request order.
// It enforces the request's shape and nothing else; per-change rules (names, op, pk, payload
// kind) are the store's, because they yield per-change statuses rather than a failed request.
//
// The body must be one UTF-8 JSON value: an object, or the literal null, which is an empty
// batch. Unknown fields are ignored; as in the reference, whose decoder was encoding/json too,
// keys match case-insensitively and the last of duplicated keys wins. Every integer field must be a JSON integer in int64 range:
// a string, a fraction or an exponent fails the whole body, as does a change that is not an
// object and anything after the value but white space. Those failures are a *badRequest with the
// reference's message "Failed to parse upload request" (docs/protocol-v0.md §3.9).
//
// Unlike the reference, a change without source_change_id (or with null) is refused with a
// *badRequest naming the change, instead of silently becoming 0 and swallowing the device's later
// changes as replays (docs/protocol-v0.md §10.3 #3).
//
// A change's payload is kept as the raw JSON text received: nil when the key is absent, the
// four bytes null when it is null.
func decodeUpload(body []byte) ([]pg.ChangeInput, error) {
	if !utf8.Valid(body) {
		return nil, &badRequest{message: msgUnparsableUpload, cause: errors.New("body is not valid UTF-8")}
	}
	var req uploadRequest
	// json.Unmarshal, unlike a json.Decoder, refuses anything after the first value.
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, &badRequest{message: msgUnparsableUpload, cause: err}
	}
	changes := make([]pg.ChangeInput, len(req.Changes))
	for i, c := range req.Changes {
		if c == nil { // encoding/json decodes a null array element into a nil pointer
			return nil, &badRequest{message: msgUnparsableUpload, cause: fmt.Errorf("changes[%d] is null, not an object", i)}
		}
		if c.SourceChangeID == nil {
			return nil, &badRequest{message: fmt.Sprintf("changes[%d]: source_change_id is required", i)}
		}
		changes[i] = pg.ChangeInput{
			SourceChangeID: *c.SourceChangeID,
			Schema:         c.Schema,
			Table:          c.Table,
			Op:             c.Op,
			PK:             c.PK,
			BaseVersion:    c.ServerVersion,
			Payload:        c.Payload,
		}
	}
	return changes, nil
}
