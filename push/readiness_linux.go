package push

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
)

// readiness calls back when a watched socket has bytes to read, so that an idle WebSocket
// needs no goroutine parked in a read: at tens of thousands of connections those goroutines'
// stacks would be a third of the memory, and every garbage collection would scan them all.
//
// It is an epoll set of its own whose descriptor sits in the Go runtime's poller, so waiting
// for it holds no thread. Sockets are watched one-shot: after a callback a socket stays quiet
// until rearmed, so at most one reader runs per socket.
type readiness struct {
	file *os.File
	raw  syscall.RawConn

	mu      sync.Mutex
	watches map[uint64]func()
	lastID  uint64
}

// newReadiness starts a readiness poller; Close stops it.
func newReadiness() (*readiness, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("create epoll set: %w", err)
	}
	// Non-blocking, so that os.NewFile hands it to the runtime's poller.
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("create epoll set: %w", err)
	}
	file := os.NewFile(uintptr(fd), "push-readiness")
	raw, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("create epoll set: %w", err)
	}
	p := &readiness{file: file, raw: raw, watches: map[uint64]func(){}}
	go p.run()
	return p, nil
}

// Close stops the poller. Watches left in it never fire.
func (p *readiness) Close() error { return p.file.Close() }

func (p *readiness) run() {
	events := make([]syscall.EpollEvent, 256)
	for {
		var n int
		var waitErr error
		err := p.raw.Read(func(fd uintptr) bool {
			for {
				n, waitErr = syscall.EpollWait(int(fd), events, 0)
				if waitErr != syscall.EINTR {
					return n > 0 || waitErr != nil
				}
			}
		})
		if err != nil || waitErr != nil { // closed
			return
		}
		p.mu.Lock()
		for _, ev := range events[:n] {
			if onReadable := p.watches[eventID(ev)]; onReadable != nil {
				go onReadable()
			}
		}
		p.mu.Unlock()
	}
}

// watch is one socket in a readiness set.
type watch struct {
	p          *readiness
	raw        syscall.RawConn
	onReadable func()
	id         uint64 // never reused, so an event for a socket gone since finds nothing
	added      bool   // in the epoll set; only Arm's callers, one at a time, touch it
}

// Watch prepares a watch of raw that runs onReadable, on a goroutine of its own, once raw has
// bytes to read or the peer closed it. Nothing is heard until Arm.
func (p *readiness) Watch(raw syscall.RawConn, onReadable func()) *watch {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastID++
	return &watch{p: p, raw: raw, onReadable: onReadable, id: p.lastID}
}

// errWatchStopped is Arm's answer after Stop.
var errWatchStopped = errors.New("readiness watch stopped")

// Arm arms the next callback; call it again after each callback to hear of more bytes. If the
// socket already has bytes, the callback comes at once. Calls must not overlap.
func (w *watch) Arm() error {
	if w.added {
		return w.ctl(syscall.EPOLL_CTL_MOD)
	}
	w.added = true
	w.p.mu.Lock()
	if w.id == 0 {
		w.p.mu.Unlock()
		return errWatchStopped
	}
	w.p.watches[w.id] = w.onReadable
	w.p.mu.Unlock()
	return w.ctl(syscall.EPOLL_CTL_ADD)
}

// Stop ends the watch. Call it before closing the socket.
func (w *watch) Stop() {
	w.p.mu.Lock()
	delete(w.p.watches, w.id)
	w.id = 0
	w.p.mu.Unlock()
	_ = w.ctl(syscall.EPOLL_CTL_DEL)
}

func (w *watch) ctl(op int) error {
	w.p.mu.Lock()
	id := w.id
	w.p.mu.Unlock()
	if id == 0 && op != syscall.EPOLL_CTL_DEL {
		return errWatchStopped
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT}
	ev.Fd, ev.Pad = int32(uint32(id)), int32(uint32(id>>32))
	// Both descriptors are used inside Control, where neither can be closed and reused.
	var ctlErr error
	err := w.raw.Control(func(socket uintptr) {
		err := w.p.raw.Control(func(set uintptr) {
			ctlErr = syscall.EpollCtl(int(set), op, int(socket), &ev)
		})
		if ctlErr == nil {
			ctlErr = err
		}
	})
	if err != nil {
		return err
	}
	return ctlErr
}

func eventID(ev syscall.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}
