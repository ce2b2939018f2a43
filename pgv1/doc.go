// Package pgv1 is the store of the v1 bundle protocol (docs/protocol-v1.md): scopes, sources,
// push sessions, committed bundles, row states and snapshots of every user, in PostgreSQL
// schema sync_v1, beside (never inside) the v0 stream of package pg. It knows nothing of HTTP:
// each protocol refusal is an *Error whose Code the HTTP layer maps to a status.
//
// # Ordering and locking
//
// A user's bundle_seq comes from the sequencer (sequencer.BundleStream(user) in sync.user_seq):
// dense, per user, and visible in allocation order (invariant I1, docs/protocol-v1.md §1.3).
// Every mutating call of a user runs under that row's lock, reached through a per-user queue in
// this process first, so a busy user waits without holding pooled connections (userlock.go,
// §6.1 H9). Every expiry (leases, push sessions, snapshots) is computed and compared with the
// database clock.
//
// # Real effects
//
// A commit applies the staged rows to the business tables and records what really changed
// (§1.3): statement-level AFTER INSERT/UPDATE/DELETE triggers on every registered table copy
// the keys of the changed rows from their transition tables into a temporary table, while the
// transaction carries the marker pulsesync.v1_capture = on. Cascades, column defaults and other
// triggers' writes are captured because they are real row changes of the same tables. Writes of
// transactions without the marker — other applications, migrations, an operator's psql — are
// not captured and never enter a bundle: to sync such changes, write through the protocol. A
// TRUNCATE is never captured, and a registered table's key column must not change.
//
// Statement-level triggers were chosen over row-level ones by measurement (PostgreSQL 15 on the
// 2-core development machine, 20,000 rows, capture on): the capture added about 3.6 µs per
// inserted row and 4 µs per updated row at statement level against about 6.5 µs and 8 µs at row
// level, because one INSERT … SELECT per statement replaces one plpgsql call and one INSERT per
// row, and a commit applies its rows with one statement per run of similar rows. The price is
// paid by writers without the marker too: the transition table is filled for every statement
// (about 1 µs per row). The temporary table is created once per connection, empties itself at
// commit (ON COMMIT DELETE ROWS) and writes no WAL.
//
// After the applies, the commit reads the effects in the order they happened, folds them into
// one row per key, and reads the surviving rows' after-images from the business tables through
// wire.RenderSQL in the same round trip. Those bytes are hashed (bundle_hash), stored as the
// bundle's wire rows and kept in row_state, from which conflicts' server_row and snapshots are
// served, so every read serves exactly what was hashed.
package pgv1
