//go:build !linux

package push

import (
	"errors"
	"syscall"
)

// readiness needs epoll; elsewhere every WebSocket keeps a goroutine parked in its read.
type readiness struct{}

func newReadiness() (*readiness, error) {
	return nil, errors.New("readiness polling needs epoll (Linux)")
}

// Close does nothing.
func (*readiness) Close() error { return nil }

// Watch is never called: newReadiness gave no readiness.
func (*readiness) Watch(syscall.RawConn, func()) *watch { return &watch{} }

type watch struct{}

// Arm is not supported.
func (*watch) Arm() error { return errors.ErrUnsupported }

// Stop does nothing.
func (*watch) Stop() {}
