// Package deploytest tests the files of deploy/ as an operator runs them: real nginx with
// deploy/nginx/pulsesync.conf in front of two pulsesync nodes (one PostgreSQL, fan-out over an
// embedded NATS) carrying uploads, downloads, WebSockets, SSE, long-polls and v1 watch streams,
// also while a node stops; the Prometheus alert rules checked by promtool and against the
// metrics a node exports; the Grafana dashboard against the same metrics.
//
// nginx and promtool come from the Debian packages nginx and prometheus, which .ci/run
// installs. A test fails, naming the package, when one is missing: a deployment nobody ran is
// not tested. The package has no code of its own.
package deploytest
