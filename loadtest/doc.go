// Package loadtest is a k6-style load generator: scenarios driven by executors
// (constant-vus, ramping-vus, constant-arrival-rate, ramping-arrival-rate,
// per-vu-iterations, shared-iterations, externally-controlled), virtual users running one exec function
// per iteration, k6-like metrics (Counter, Gauge, Rate, Trend) sub-keyed by tags,
// k6's HTTP metrics and per-request tags, thresholds in k6 syntax, an
// end-of-test summary, a JSON export of every aggregate and k6's JSON output of
// every sample. A Control, served over HTTP by ControlHandler in the shape of
// k6's REST API, scales the externally-controlled scenario, pauses, resumes and
// stops a running test.
//
// The engine knows nothing about pulsesync: what an iteration does is supplied
// by an Exec, built from a Registry by name. The protocol scenarios that drive a
// pulsesync server over the wire live in the scenarios subpackage, which treats
// the server as a black box and imports no other pulsesync package.
//
// A test or a binary calls Run(ctx, options, registry) and receives a Summary;
// Summary.Passed reports whether every threshold held.
package loadtest
