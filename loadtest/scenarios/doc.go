// Package scenarios holds the load scenarios that drive a pulsesync server
// over its wire protocol (PROTOCOL.md §3–§4 and the push channel of
// DESIGN.md): upload, download, poll, push_listener + push_uploader (push
// latency), and idle_ws. Each is a loadtest exec, selected by name from
// Registry.
//
// The server is a black box: this package speaks HTTP, JSON and WebSocket and
// mints HS256 tokens from the shared secret; it imports no other pulsesync
// package.
//
// Every VU is one device: user load-user-<n>, device load-dev-<vu>. Users are
// handed out to a scenario's VUs in blocks of devices_per_user, so VUs 1…d
// are the devices of load-user-1, the next d of load-user-2, and so on.
package scenarios
