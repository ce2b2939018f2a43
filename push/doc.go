// Package push tells connected devices that their user's stream moved: the hub of live
// connections per user, and the WebSocket, Server-Sent-Events and long-poll sessions built on it.
//
// The hub receives sequencer.Advance values and keeps, per connection, only the latest seq to
// tell and the last seq told: a burst of commits coalesces into one notification and a
// connection costs the same memory whatever the write rate (invariant I5). A notification is a
// hint; devices learn the changes themselves through GET /sync/download.
//
// Nothing queues in the kernel either: a session writes a notification only once its socket
// has drained, so a device that stops reading holds at most one frame in the server's send
// queue while later advances replace the pending one in the hub, and one that stays stalled
// past WriteTimeout is disconnected (see drain.go). Every stream and long-poll ends at its
// token's expiry.
//
// An idle WebSocket holds no goroutine: between client messages its socket rests in the
// service's readiness poller (an epoll set, on Linux), which starts a reader when bytes arrive.
// The WebSocket protocol itself is the package's own (wsconn.go), so that an idle connection
// keeps its session and no library's reader, writer and buffers.
//
// push knows nothing of PostgreSQL or NATS: package cluster feeds it advances, and package
// httpapi authenticates connections and hands them over.
package push
