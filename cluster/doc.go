// Package cluster fans advances out between pulsesync nodes, so that a device connected to any
// node hears of a commit made through any other.
//
// A node announces each advance after its upload commits (Node.Announce): it is handed at once
// to the node's own sinks, the push.Hub and the sequencer.Watermarks, and sent to the other
// nodes over one of two transports:
//
//   - NATS, when a URL is configured: one message per advance on a subject sharded by user,
//     pulsesync.advance.<0…255>. A node subscribes only to the shards of the users it serves
//     (Node.Watch) and drops shards idle for a while.
//   - PostgreSQL LISTEN/NOTIFY otherwise: a coalescing notifier sends the advances of a few
//     milliseconds in one statement, outside any upload transaction, and every node LISTENs on
//     a dedicated connection.
//
// Both are at-most-once: a node killed between commit and announcement, a broker outage or a
// lost LISTEN connection loses advances. Reconciliation is what keeps invariant I4 anyway: on
// every (re)connect and periodically, each node reads the latest seq of every user it holds
// connections for in one batched query and delivers it. Advances are idempotent and monotonic,
// so hearing one through two paths costs nothing.
//
// The node tells its Watermarks whether the stream is healthy, so that the empty-poll cache
// trusts nothing read while advances could have been missed.
//
// cluster knows sequencer's types, push's hub, NATS and PostgreSQL; nothing imports it but the
// binary that wires a node together.
package cluster
