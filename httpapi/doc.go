// Package httpapi is pulsesync's HTTP edge: routing, authentication, the v0 handlers, errors and
// metrics.
//
// It speaks the wire protocol of docs/protocol-v0.md byte for byte where clients can observe it, turns
// errors of the packages below into HTTP statuses and protocol error codes (nowhere else does
// that), and never touches SQL: every read and write goes through pg.Store. Every answer that is
// not a success carries the JSON envelope {"error":"<code>","message":"<text>"}, 404 and 405
// included.
package httpapi
