package pg

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/pulsesync/pulsesync/sequencer"
)

// ChangeInput is one change of an upload as the client sent it, decoded but not validated.
type ChangeInput struct {
	SourceChangeID int64
	Schema         string
	Table          string
	Op             string
	PK             string
	BaseVersion    int64           // the client's "server_version"
	Payload        json.RawMessage // nil when the key was absent, "null" when it was null
}

// Status is the outcome of one uploaded change.
type Status string

// The statuses of docs/protocol-v0.md §3.2 and §6.
const (
	StatusApplied          Status = "applied"
	StatusConflict         Status = "conflict"
	StatusInvalid          Status = "invalid"
	StatusMaterializeError Status = "materialize_error"
)

// The invalid reasons of docs/protocol-v0.md §3.3.
const (
	ReasonBadPayload        = "bad_payload"
	ReasonUnregisteredTable = "unregistered_table"
	ReasonFKMissing         = "fk_missing"
	ReasonInternalError     = "internal_error"
	ReasonBatchTooLarge     = "batch_too_large"
)

// Outcome is the status of one change, in request order.
type Outcome struct {
	SourceChangeID int64
	Status         Status
	NewVersion     int64      // the row's new version; 0 = omitted (replays, idempotent deletes, non-applied)
	ServerRow      *ServerRow // set for conflicts
	Invalid        *Invalid   // set for invalid changes
}

// ServerRow is the server's current state of a row, sent with a conflict.
type ServerRow struct {
	Schema  string
	Table   string
	PK      UUID
	Version int64
	Deleted bool
	Payload []byte // JSON object text; nil for a tombstone (sent as null)
}

// Invalid says why a change was refused. Details is one of the shapes of docs/protocol-v0.md §3.3.
type Invalid struct {
	Reason  string
	Message string // "" = omitted (fk_missing)
	Details InvalidDetails
}

// InvalidDetails is the "details" object of an invalid status. Exactly the fields of the
// reason's shape are set; encoders omit the rest.
type InvalidDetails struct {
	Error   string   // bad_payload, internal_error, batch_too_large
	Schema  string   // unregistered_table
	Table   string   // unregistered_table
	Missing []string // fk_missing: "<schema>.<table>:<value>"
}

// UploadResult is the answer to an upload.
type UploadResult struct {
	Accepted bool
	Highest  int64 // the user's last committed server id after the upload
	Outcomes []Outcome
	// Advance is what the upload did to the user's sequence, to announce after commit; Seq is 0
	// when it applied nothing new.
	Advance sequencer.Advance
}

// RequestError is an upload that breaks a rule of the request as a whole (a duplicated row key
// or source_change_id). Nothing of it was applied; the edge answers 400 invalid_request.
type RequestError struct{ Message string }

func (e *RequestError) Error() string { return e.Message }

// DownloadQuery is a validated download request (docs/protocol-v0.md §4.1).
type DownloadQuery struct {
	After       int64
	Limit       int
	Schema      string // "" = all schemas
	IncludeSelf bool
	Until       int64 // 0 = up to the user's watermark
}

// DownloadPage is one page of a user's change stream (docs/protocol-v0.md §4.3).
type DownloadPage struct {
	Changes     []StreamEntry
	HasMore     bool
	NextAfter   int64
	WindowUntil int64
}

// StreamEntry is one applied change as downloads show it.
type StreamEntry struct {
	ServerID       int64
	Schema         string
	Table          string
	Op             string
	PK             UUID
	Payload        []byte // JSON object text; nil for DELETE (the key is omitted)
	Version        int64
	SourceID       string
	SourceChangeID int64
	TS             time.Time
}

// Failure is a recorded failed projection into a business table (docs/protocol-v0.md §6).
type Failure struct {
	ID               int64
	User             string
	Schema           string
	Table            string
	PK               UUID
	AttemptedVersion int64
	Op               string
	Payload          []byte // nil for DELETE
	Error            string
	FirstSeen        time.Time
	RetryCount       int
}

// FailureFilter selects failures to list; empty fields do not filter.
type FailureFilter struct {
	Schema string
	Table  string
	Limit  int // 1…1000; anything else means 100
}

// RetryResult is the outcome of re-running one failed projection.
type RetryResult struct {
	Status  Status // StatusApplied or StatusMaterializeError
	Version int64
	Message string // "" = omitted
}

// Errors of the admin retry.
var (
	ErrFailureNotFound = errors.New("materialize failure not found")
	ErrRetryInProgress = errors.New("materialize failure retry is already in progress")
)
