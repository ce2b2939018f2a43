package pgv1

import (
	"slices"
	"time"
)

// Paging bounds of the v1 reads (docs/protocol-v1.md §3.1, §3.7, §3.8, §3.10): a request's
// page size defaults to the first value and is silently capped at the second. The HTTP layer
// applies them while parsing the query; they are advertised in capabilities.
const (
	DefaultRowsPerCommittedBundleChunk = 1000
	MaxRowsPerCommittedBundleChunk     = 5000
	DefaultBundlesPerPull              = 1000
	MaxBundlesPerPull                  = 5000
	DefaultRowsPerSnapshotChunk        = 1000
	MaxRowsPerSnapshotChunk            = 5000
	DefaultBytesPerSnapshotChunk       = 4 << 20
	MaxBytesPerSnapshotChunk           = 16 << 20
	// DefaultRowsPerPushChunk is advertised only: clients send chunks of their own size.
	DefaultRowsPerPushChunk = 1000
	// SnapshotMaterializationBatchRows and …Bytes are advertised for clients that size their
	// apply batches by them (informational, §3.1).
	SnapshotMaterializationBatchRows  = 512
	SnapshotMaterializationBatchBytes = 4 << 20
)

// Limits are the bounds a Store enforces, in the units capabilities advertise them
// (§3.1 bundle_limits). Zero in MaxRowsPerSnapshot and MaxBytesPerSnapshot means unlimited.
type Limits struct {
	MaxRowsPerPushChunk         int
	PushSessionTTLSeconds       int
	InitializationLeaseTTL      int // seconds
	SnapshotSessionTTLSeconds   int
	MaxBytesPerSnapshotRow      int64
	MaxConcurrentSnapshotBuilds int
	MaxConcurrentSnapshotChunks int
	MaxRowsPerSnapshot          int64
	MaxBytesPerSnapshot         int64
}

// Limits returns the store's bounds with their defaults applied.
func (s *Store) Limits() Limits {
	c := s.cfg
	return Limits{
		MaxRowsPerPushChunk:         c.MaxRowsPerChunk,
		PushSessionTTLSeconds:       seconds(c.PushSessionTTL),
		InitializationLeaseTTL:      seconds(c.LeaseTTL),
		SnapshotSessionTTLSeconds:   seconds(c.SnapshotTTL),
		MaxBytesPerSnapshotRow:      c.MaxBytesPerSnapshotRow,
		MaxConcurrentSnapshotBuilds: c.MaxConcurrentSnapshotBuilds,
		MaxConcurrentSnapshotChunks: c.MaxConcurrentSnapshotChunks,
		MaxRowsPerSnapshot:          c.MaxRowsPerSnapshot,
		MaxBytesPerSnapshot:         c.MaxBytesPerSnapshot,
	}
}

// ReservedSource reports whether id is one of the source ids kept for the server's own
// writes (§1.2), which clients may use neither as their header nor as a replacement.
func (s *Store) ReservedSource(id string) bool {
	return slices.Contains(s.cfg.ReservedSources, id)
}

// seconds rounds d up to whole seconds, so a sub-second setting never advertises 0.
func seconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}
