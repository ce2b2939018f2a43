// Package e2e holds end-to-end tests of whole pulsesync nodes: several servers sharing one
// PostgreSQL (and an embedded NATS), devices on real WebSockets, faults injected in the fan-out
// between them. It has no code of its own.
package e2e
