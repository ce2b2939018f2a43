// Package pgtest gives each test a fresh PostgreSQL database on one throwaway cluster per test binary.
//
// A test binary calls Main from TestMain; tests call NewDB for a database of their own, which is
// dropped when the test ends. The cluster comes from internal/pgcluster, so `go test ./...` needs
// no database running beforehand, only the PostgreSQL server binaries (13 or newer) on the machine.
// The cluster lives in /dev/shm when that has room (set TMPDIR to choose another place), since
// creating a database in RAM is about ten times faster than on disk.
//
// pgtest must not import any pulsesync package but internal/pgcluster: the packages it serves
// import it from their tests, and an import back would be a cycle.
package pgtest
