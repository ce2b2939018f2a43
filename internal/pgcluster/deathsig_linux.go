package pgcluster

import "syscall"

// setParentDeathSignal makes the kernel send the server SIGQUIT if we die without calling Stop
// (a crash, SIGKILL, a test binary killed on timeout). SIGQUIT is PostgreSQL's immediate
// shutdown: the postmaster stops every backend at once and skips the shutdown checkpoint, which
// a throwaway cluster does not need. SIGTERM would wait for clients to leave, and SIGKILL would
// orphan the backends. Linux sends the signal when the thread that started the child exits; Go
// keeps its threads unless a goroutine ends while locked to one, so callers should not start a
// cluster from a goroutine that holds runtime.LockOSThread.
func setParentDeathSignal(attr *syscall.SysProcAttr) {
	attr.Pdeathsig = syscall.SIGQUIT
}
