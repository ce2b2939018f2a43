package pgv1

import (
	"encoding/json"
	"fmt"
	"time"
)

// Caller is who makes a v1 call: the authenticated user (the token's sub) and the source named
// by the Oversync-Source-ID header, both already validated by the HTTP layer.
type Caller struct {
	User   string
	Source string
}

// Error is a refusal the v1 protocol names: Code is its error code ("push_conflict",
// "history_pruned", …) and Message a human text without secrets or payloads. The HTTP layer
// maps Code to a status; at most one of the structured members is set.
type Error struct {
	Code    string
	Message string
	// Conflict is the body of push_conflict.
	Conflict *Conflict
	// Retired is the body of source_retired.
	Retired *Retired
	// Limit is the body of snapshot_session_limit_exceeded.
	Limit *LimitExceeded
	// RequiredByteCount is the member of snapshot_chunk_too_small.
	RequiredByteCount int64
	// RetryAfter is the Retry-After of capacity refusals (429) and busy users (503), in whole
	// seconds, at least 1 where it applies.
	RetryAfter int
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Conflict names the row that made a commit fail its optimistic concurrency check.
type Conflict struct {
	Schema, Table    string
	Key              json.RawMessage // {"<key column>":"<value>"}
	Op               string
	BaseRowVersion   int64
	ServerRowVersion int64
	ServerRowDeleted bool
	ServerRow        json.RawMessage // the current wire payload, or null
}

// Retired is a source_retired refusal: the caller's source and, when recorded, its successor.
type Retired struct {
	SourceID           string
	ReplacedBySourceID string // "" when none was recorded
}

// LimitExceeded is a snapshot_session_limit_exceeded refusal.
type LimitExceeded struct {
	Dimension     string // row_count | byte_count | row_byte_count
	Actual, Limit int64
}

// Connect resolutions.
const (
	RemoteAuthoritative = "remote_authoritative"
	InitializeLocal     = "initialize_local"
	InitializeEmpty     = "initialize_empty"
	RetryLater          = "retry_later"
)

// ConnectResult is the answer to POST /sync/connect.
type ConnectResult struct {
	Resolution        string
	InitializationID  string    // only with InitializeLocal
	LeaseExpiresAt    time.Time // with InitializeLocal and RetryLater
	RetryAfterSeconds int       // with RetryLater, ≥ 1
}

// CreatePush is a POST /sync/push-sessions request, its members range-checked by the caller.
type CreatePush struct {
	SourceBundleID   int64
	PlannedRowCount  int64
	RequestHash      string // 64 lowercase hex
	InitializationID string // "" when absent
}

// CreatePushResult is either a new staging session or, when the tuple was committed before,
// the committed bundle's metadata (AlreadyCommitted non-nil, PushID empty).
type CreatePushResult struct {
	AlreadyCommitted *BundleMeta
	PushID           string
	PlannedRowCount  int64
	RequestHash      string
}

// BundleMeta describes a committed bundle, as commit, already_committed, committed-rows and
// pull answers carry it.
type BundleMeta struct {
	BundleSeq      int64
	SourceID       string
	SourceBundleID int64
	RowCount       int64
	BundleHash     string
	RequestHash    string
}

// PushRow is one row of a chunk as the client sent it: names, op and key not yet normalised or
// checked against the registry; Key and Payload are the raw JSON the client sent (Payload nil
// when the member was absent).
type PushRow struct {
	Schema, Table  string
	Key            json.RawMessage
	Op             string
	BaseRowVersion int64
	Payload        json.RawMessage
}

// CommittedRowsPage is a page of GET /sync/committed-bundles/{seq}/rows. Rows are the wire
// objects {"schema","table","key","op","row_version"[,"payload"]} in bundle order.
type CommittedRowsPage struct {
	Meta           BundleMeta
	Rows           []json.RawMessage
	NextRowOrdinal int64
	HasMore        bool
}

// PullRequest is a validated GET /sync/pull query; Target 0 means "capture now".
type PullRequest struct {
	After      int64
	MaxBundles int
	Target     int64
}

// PullPage is an answer of GET /sync/pull. Each element of Bundles is one complete bundle's
// wire object, ready to be written between the array's brackets.
type PullPage struct {
	StableBundleSeq int64
	Bundles         []json.RawMessage
	HasMore         bool
}

// SourceReplacement is the optional body of POST /sync/snapshot-sessions.
type SourceReplacement struct {
	PreviousSourceID string
	NewSourceID      string
	Reason           string
}

// SnapshotInfo is the answer of POST /sync/snapshot-sessions.
type SnapshotInfo struct {
	SnapshotID        string
	SnapshotBundleSeq int64
	RowCount          int64
	ByteCount         int64
	ExpiresAt         time.Time
}

// SnapshotChunk is a page of GET /sync/snapshot-sessions/{id}. Rows are the wire objects
// {"schema","table","key","row_version","payload"}, each exactly as counted in ByteCount.
type SnapshotChunk struct {
	SnapshotID        string
	SnapshotBundleSeq int64
	Rows              []json.RawMessage
	NextRowOrdinal    int64
	HasMore           bool
	ByteCount         int64
}
