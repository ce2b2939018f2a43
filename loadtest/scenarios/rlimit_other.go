//go:build !unix

package scenarios

import "errors"

// raiseNoFile is not supported off Unix.
func raiseNoFile() (uint64, error) {
	return 0, errors.New("RLIMIT_NOFILE is a Unix limit")
}
