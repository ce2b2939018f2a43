// Package pgcluster starts and stops a throwaway PostgreSQL cluster from the machine's own binaries.
//
// A cluster lives in a fresh temporary directory (data, server log and unix socket) and listens
// on 127.0.0.1 only, with trust authentication for the superuser "postgres". It exists for
// `pulsesync dev` and for test binaries (through internal/pgtest); it is never a production
// database. PostgreSQL refuses to run as root, so when the calling process is root the server
// runs as the "postgres" OS user.
//
// The package knows nothing about pulsesync's schema or other packages.
package pgcluster
