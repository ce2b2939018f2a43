// Package push tells connected devices that their user's stream moved: the hub of live
// connections per user, and the WebSocket, Server-Sent-Events and long-poll sessions built on it.
//
// The hub receives sequencer.Advance values and keeps, per connection, only the latest seq to
// tell and the last seq told: a burst of commits coalesces into one notification and a
// connection costs the same memory whatever the write rate (invariant I5). A notification is a
// hint; devices learn the changes themselves through GET /sync/download.
//
// An idle WebSocket holds no goroutine: between client messages its socket rests in the
// service's readiness poller (an epoll set, on Linux), which starts a reader when bytes arrive.
//
// push knows nothing of PostgreSQL or NATS: package cluster feeds it advances, and package
// httpapi authenticates connections and hands them over.
package push
