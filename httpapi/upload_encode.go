package httpapi

import (
	"strconv"

	"github.com/pulsesync/pulsesync/pg"
)

// appendUploadResult appends the upload response of docs/protocol-v0.md §3.2, keys in the protocol's
// order, followed by a newline as the reference's encoder wrote it. new_server_version is left
// out when 0 and message when empty; a conflict carries server_row, an invalid change invalid
// with exactly the details of its reason (§3.3). Payloads are written as the store returns
// them, which is compact JSON text.
func appendUploadResult(b []byte, res *pg.UploadResult) []byte {
	b = append(b, `{"accepted":`...)
	b = appendBool(b, res.Accepted)
	b = append(b, `,"highest_server_seq":`...)
	b = strconv.AppendInt(b, res.Highest, 10)
	b = append(b, `,"statuses":[`...)
	for i := range res.Outcomes {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendOutcome(b, &res.Outcomes[i])
	}
	return append(b, "]}\n"...)
}

// appendOutcome appends one status entry.
func appendOutcome(b []byte, o *pg.Outcome) []byte {
	b = append(b, `{"source_change_id":`...)
	b = strconv.AppendInt(b, o.SourceChangeID, 10)
	b = append(b, `,"status":`...)
	b = appendString(b, string(o.Status))
	if o.NewVersion != 0 {
		b = append(b, `,"new_server_version":`...)
		b = strconv.AppendInt(b, o.NewVersion, 10)
	}
	if row := o.ServerRow; row != nil {
		b = append(b, `,"server_row":{"schema_name":`...)
		b = appendString(b, row.Schema)
		b = append(b, `,"table_name":`...)
		b = appendString(b, row.Table)
		b = append(b, `,"id":"`...)
		b = row.PK.AppendText(b)
		b = append(b, `","server_version":`...)
		b = strconv.AppendInt(b, row.Version, 10)
		b = append(b, `,"deleted":`...)
		b = appendBool(b, row.Deleted)
		b = append(b, `,"payload":`...)
		b = appendPayload(b, row.Payload)
		b = append(b, '}')
	}
	if inv := o.Invalid; inv != nil {
		if inv.Message != "" {
			b = append(b, `,"message":`...)
			b = appendString(b, inv.Message)
		}
		b = append(b, `,"invalid":{"reason":`...)
		b = appendString(b, inv.Reason)
		b = append(b, `,"details":`...)
		b = appendInvalidDetails(b, inv)
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendInvalidDetails appends the details object of inv's reason (docs/protocol-v0.md §3.3):
// {"schema","table"} for unregistered_table, {"missing":[…]} for fk_missing and {"error"} for
// every other reason.
func appendInvalidDetails(b []byte, inv *pg.Invalid) []byte {
	d := &inv.Details
	switch inv.Reason {
	case pg.ReasonUnregisteredTable:
		b = append(b, `{"schema":`...)
		b = appendString(b, d.Schema)
		b = append(b, `,"table":`...)
		b = appendString(b, d.Table)
	case pg.ReasonFKMissing:
		b = append(b, `{"missing":[`...)
		for i, m := range d.Missing {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, m)
		}
		b = append(b, ']')
	default:
		b = append(b, `{"error":`...)
		b = appendString(b, d.Error)
	}
	return append(b, '}')
}

// appendPayload appends a stored payload, or null for none.
func appendPayload(b []byte, payload []byte) []byte {
	if payload == nil {
		return append(b, "null"...)
	}
	return append(b, payload...)
}
