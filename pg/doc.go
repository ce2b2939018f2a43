// Package pg keeps the sync state in PostgreSQL: the connection pool, the embedded migrations of
// the sync schema, uploads (judged set-based inside one transaction per request), downloads,
// discovery of the registered business tables, the materializer that projects applied changes
// into them, and the failure log behind the admin endpoints.
//
// Every SQL statement of pulsesync lives here. The package takes server ids from sequencer and
// knows nothing about HTTP or push.
package pg
