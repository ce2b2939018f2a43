// Package v1test is a client of pulsesync's v1 bundle protocol for end-to-end tests
// (docs/protocol-v1.md §3): it pushes bundles of app.users rows with the request hash the
// client computes, reads committed rows and pulls to stable_bundle_seq checking what a
// SQLiteNow client checks (echoes, paging arithmetic, the bundle hash recomputed from the rows
// read), and opens /sync/watch streams whose `bundle` events it hands out with deadlines.
//
// It speaks only HTTP to a servertest.Server; it knows nothing of the store behind it, so a
// test that passes through it says what a real client would see.
package v1test
