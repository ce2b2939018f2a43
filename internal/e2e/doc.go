// Package e2e holds end-to-end tests of whole pulsesync nodes: several servers sharing one
// PostgreSQL (and an embedded NATS), devices on real WebSockets and v1 clients on real
// /sync/watch streams (through internal/v1test), faults injected in the fan-out between them.
// It has no code of its own.
package e2e
