// Package loadtarget starts a whole throwaway pulsesync deployment inside the load generator's
// process, for `pulsesync-load --embedded`: a PostgreSQL cluster from the machine's own binaries
// (internal/pgcluster), the sync schemas and the demo tables, N nodes (internal/node) serving on
// loopback ports, and with more than one node an in-process NATS server (internal/natsembed) for
// the fan-out between them. Close tears all of it down again.
//
// It exists so that the load generator's engine (package loadtest) stays a black box that
// imports no pulsesync package: only the binary joins the two.
package loadtarget
