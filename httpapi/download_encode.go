package httpapi

import (
	"strconv"
	"time"

	"github.com/pulsesync/pulsesync/pg"
)

// opDelete is the op of a stream entry that deleted its row.
const opDelete = "DELETE"

// appendDownloadPage appends the download response of docs/protocol-v0.md §4.3, followed by a newline as
// the reference's encoder wrote it. This is the hot path of every sync, so it appends into one
// buffer instead of going through reflection.
//
// changes is [] when empty, never null. Each entry has its fields in the documented order;
// payload is left out for a DELETE (as Jan-2026) and written as stored otherwise; deleted is
// op == DELETE; ts is RFC 3339 with the fraction's trailing zeros trimmed, in the zone the
// timestamp carries.
func appendDownloadPage(b []byte, p *pg.DownloadPage) []byte {
	b = append(b, `{"changes":[`...)
	for i := range p.Changes {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendStreamEntry(b, &p.Changes[i])
	}
	b = append(b, `],"has_more":`...)
	b = appendBool(b, p.HasMore)
	b = append(b, `,"next_after":`...)
	b = strconv.AppendInt(b, p.NextAfter, 10)
	b = append(b, `,"window_until":`...)
	b = strconv.AppendInt(b, p.WindowUntil, 10)
	return append(b, "}\n"...)
}

// appendStreamEntry appends one entry of a download page.
func appendStreamEntry(b []byte, e *pg.StreamEntry) []byte {
	b = append(b, `{"server_id":`...)
	b = strconv.AppendInt(b, e.ServerID, 10)
	b = append(b, `,"schema":`...)
	b = appendString(b, e.Schema)
	b = append(b, `,"table":`...)
	b = appendString(b, e.Table)
	b = append(b, `,"op":`...)
	b = appendString(b, e.Op)
	b = append(b, `,"pk":"`...)
	b = e.PK.AppendText(b)
	b = append(b, '"')
	deleted := e.Op == opDelete
	if !deleted {
		b = append(b, `,"payload":`...)
		b = appendPayload(b, e.Payload)
	}
	b = append(b, `,"server_version":`...)
	b = strconv.AppendInt(b, e.Version, 10)
	b = append(b, `,"deleted":`...)
	b = appendBool(b, deleted)
	b = append(b, `,"source_id":`...)
	b = appendString(b, e.SourceID)
	b = append(b, `,"source_change_id":`...)
	b = strconv.AppendInt(b, e.SourceChangeID, 10)
	b = append(b, `,"ts":"`...)
	b = e.TS.AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}
