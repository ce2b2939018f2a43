// Package scenarios holds the load scenarios that drive a pulsesync server
// over its wire protocols. For v0 (docs/protocol-v0.md and the push channel):
// upload, download, poll, push_listener + push_uploader (push latency), and
// idle_ws. For the v1 bundle protocol (docs/protocol-v1.md): v1_push,
// v1_pull, v1_snapshot, and v1_watch + v1_watch_uploader (watch latency).
// Each is a loadtest exec, selected by name from Registry.
//
// The server is a black box: this package speaks HTTP, JSON, WebSocket and
// SSE, mints HS256 tokens from the shared secret and computes the v1 hashes
// itself; it imports no other pulsesync package.
//
// Every v0 VU is one device: user load-user-<tag>-<pool>-<n>, device
// load-dev-<tag>-<vu>; every v1 VU one source, load-src-<tag>-<vu>. The pool is
// the scenario's name unless the user_pool param names another (the execs that
// meet others on a board share SharedUserPool), so scenarios of one run never
// touch each other's users by accident. Users are handed out to a scenario's
// VUs in blocks of devices_per_user, so VUs 1…d are the devices (sources) of
// the pool's user 1, the next d of its user 2, and so on.
package scenarios
