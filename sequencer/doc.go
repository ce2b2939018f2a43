// Package sequencer hands out each user's server ids: dense, per user, and in commit order.
//
// A user's ids come from one row of sync.user_seq. An upload locks that row at the start of its
// transaction and stores the new last id just before commit, so uploads of one user serialise
// and an id becomes visible only after every smaller id of that user (invariant I1). Uploads of
// different users lock different rows and never wait for each other.
//
// The package also defines Advance, the value that tells the rest of the server that a user's
// committed sequence moved, and Watermarks, a node-local cache of the latest known sequence of
// each user. It knows about PostgreSQL and nothing else of pulsesync.
package sequencer
