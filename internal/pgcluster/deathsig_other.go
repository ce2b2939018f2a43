//go:build !linux

package pgcluster

import "syscall"

// setParentDeathSignal does nothing: only Linux has a parent-death signal, so elsewhere a server
// whose owner died without calling Stop keeps running until it is stopped by hand.
func setParentDeathSignal(*syscall.SysProcAttr) {}
