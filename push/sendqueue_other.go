//go:build !linux

package push

import "syscall"

// sendQueue is always 0 here: reading a socket's unacknowledged bytes needs Linux's SIOCOUTQ,
// so sessions write without waiting for the previous frame and only the per-write deadline
// bounds a stalled peer.
func sendQueue(syscall.RawConn) int { return 0 }
