//go:build unix

package scenarios

import (
	"fmt"
	"syscall"
)

// raiseNoFile raises the soft RLIMIT_NOFILE to the hard limit and returns the
// new soft limit. (Go already does this at start-up on most systems; doing it
// here makes the figure reported in the summary certain.)
func raiseNoFile() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, fmt.Errorf("get RLIMIT_NOFILE: %w", err)
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return 0, fmt.Errorf("set RLIMIT_NOFILE: %w", err)
		}
	}
	return uint64(l.Cur), nil
}
