package httpapi

import (
	"github.com/pulsesync/pulsesync/pgv1"
)

// The v1 request bodies (docs/protocol-v1.md §3). Each decoder takes the whole body, refuses
// anything but exactly the documented members with their JSON types (a *jsonError, which the
// handler answers 400 with the endpoint's code), and leaves range and semantic checks to the
// handler and the store, which answer them with the codes §3 gives.

// decodeConnect decodes POST /sync/connect: {"has_local_pending_rows": bool}. An absent member
// means false, as in the reference.
func decodeConnect(body []byte) (hasLocalPendingRows bool, err error) {
	d := newJSONReader(body)
	err = d.request([]string{"has_local_pending_rows"}, func(int) error {
		hasLocalPendingRows, err = d.boolean("has_local_pending_rows")
		return err
	})
	return hasLocalPendingRows, err
}

// decodeCreatePush decodes POST /sync/push-sessions. initialization_id may be absent or null.
func decodeCreatePush(body []byte) (req pgv1.CreatePush, err error) {
	d := newJSONReader(body)
	names := []string{"source_bundle_id", "planned_row_count", "canonical_request_hash", "initialization_id"}
	err = d.request(names, func(i int) error {
		var err error
		switch i {
		case 0:
			req.SourceBundleID, err = d.int64(names[i])
		case 1:
			req.PlannedRowCount, err = d.int64(names[i])
		case 2:
			req.RequestHash, err = d.str(names[i])
		case 3:
			if !d.null() {
				req.InitializationID, err = d.str(names[i])
			}
		}
		return err
	})
	return req, err
}

// chunkRequest is a decoded POST /sync/push-sessions/{push_id}/chunks body.
type chunkRequest struct {
	start int64
	rows  []pgv1.PushRow
}

var (
	chunkNames = []string{"start_row_ordinal", "rows"}
	rowNames   = []string{"schema", "table", "key", "op", "base_row_version", "payload"}
)

// decodeChunk decodes a chunk body. Key and Payload stay the raw JSON the client sent,
// sub-slices of body: the request hash is computed over the payload as sent (§4.4), and the
// store judges their shape (§3.4 check 4). A "payload": null is taken as an absent payload,
// which is what a DELETE must have; an INSERT or UPDATE without one is the store's refusal.
//
// This is the hot path of a push: one pass over the body, no reflection, no copies of keys or
// payloads.
func decodeChunk(body []byte) (req chunkRequest, err error) {
	d := newJSONReader(body)
	err = d.request(chunkNames, func(i int) error {
		if i == 0 {
			var err error
			req.start, err = d.int64("start_row_ordinal")
			return err
		}
		req.rows = make([]pgv1.PushRow, 0, 16)
		return d.array("rows", func(n int) error {
			req.rows = append(req.rows, pgv1.PushRow{})
			return decodePushRow(d, n, &req.rows[n])
		})
	})
	return req, err
}

// decodePushRow decodes rows[n] into row.
func decodePushRow(d *jsonReader, n int, row *pgv1.PushRow) error {
	d.row = n
	err := d.object("", rowNames, func(i int) error {
		var err error
		switch i {
		case 0:
			row.Schema, err = d.str(rowNames[i])
		case 1:
			row.Table, err = d.str(rowNames[i])
		case 2:
			row.Key, err = d.raw()
		case 3:
			row.Op, err = d.str(rowNames[i])
		case 4:
			row.BaseRowVersion, err = d.int64(rowNames[i])
		case 5:
			if !d.null() {
				row.Payload, err = d.raw()
			}
		}
		return err
	})
	d.row = -1
	return err
}

// decodeSnapshotCreate decodes the optional body of POST /sync/snapshot-sessions: empty, {}, or
// {"source_replacement": {...}} with all three string members. A null source_replacement is
// no replacement.
func decodeSnapshotCreate(body []byte) (*pgv1.SourceReplacement, error) {
	if isBlank(body) {
		return nil, nil
	}
	d := newJSONReader(body)
	var repl *pgv1.SourceReplacement
	err := d.request([]string{"source_replacement"}, func(int) error {
		if d.null() {
			return nil
		}
		repl = &pgv1.SourceReplacement{}
		names := []string{"previous_source_id", "new_source_id", "reason"}
		var seen [3]bool
		err := d.object("source_replacement", names, func(i int) error {
			seen[i] = true
			var err error
			switch i {
			case 0:
				repl.PreviousSourceID, err = d.str(names[i])
			case 1:
				repl.NewSourceID, err = d.str(names[i])
			case 2:
				repl.Reason, err = d.str(names[i])
			}
			return err
		})
		for i, ok := range seen {
			if err == nil && !ok {
				err = d.fail("source_replacement.%s is required", names[i])
			}
		}
		return err
	})
	return repl, err
}

// decodeEmpty accepts the body of a request that takes none: nothing, or an empty object.
func decodeEmpty(body []byte) error {
	if isBlank(body) {
		return nil
	}
	return newJSONReader(body).request(nil, nil)
}

// isBlank reports whether body holds nothing but JSON white space.
func isBlank(body []byte) bool {
	d := newJSONReader(body)
	d.skipSpace()
	return d.i == len(d.b)
}
