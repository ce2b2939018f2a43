// Package importv0 copies the sync state of a go-oversync v0 deployment into pulsesync's sync
// schema, so that devices switch servers without a reset (docs/operations.md "Migrating from
// go-oversync").
//
// It reads the reference server's four tables (server_change_log, sync_row_meta, sync_state,
// materialize_failures) from a source database and writes pulsesync's (sync.changes, sync.rows,
// sync.business_owners, sync.materialize_failures, sync.user_seq) in the target. Every entry
// keeps its server_id, so a device's stored cursor still points at the same place in its
// stream; every imported user's sequence continues above the source's highest server_id, so
// nothing committed after the switch can land below a cursor handed out before it
// (invariant I1). The importer knows pg's storage and nothing of HTTP, push or the sequencer's
// callers; the server must not serve the target while an import runs.
package importv0
