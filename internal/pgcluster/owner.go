package pgcluster

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// ErrNoServerUser means the process runs as root and there is no OS user to run PostgreSQL as.
var ErrNoServerUser = errors.New(`running as root, but there is no "postgres" OS user to run PostgreSQL as`)

// serverUserName is the account PostgreSQL runs as when we are root, as Debian's packages create it.
const serverUserName = "postgres"

// serverCredential returns the identity initdb and postgres must switch to, or nil to run them
// as ourselves. PostgreSQL refuses to run as root, so root hands the server to serverUserName.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(serverUserName)
	if err != nil {
		return nil, fmt.Errorf("%w (PostgreSQL refuses to run as root; create the user, e.g. "+
			"`useradd --system postgres`, or run as a normal user): %w", ErrNoServerUser, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: parse uid %q: %w", serverUserName, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: parse gid %q: %w", serverUserName, u.Gid, err)
	}
	if uid == 0 {
		return nil, fmt.Errorf("%w: user %s has uid 0", ErrNoServerUser, serverUserName)
	}
	// Groups stays empty so the switch also drops root's supplementary groups.
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// makeClusterDir creates the cluster's private directory and hands it to the server user.
func makeClusterDir(parent string, cred *syscall.Credential) (string, error) {
	// The server processes run in the new directory, so paths handed to them must be absolute.
	parent, err := filepath.Abs(cmp.Or(parent, os.TempDir()))
	if err != nil {
		return "", fmt.Errorf("create cluster dir: %w", err)
	}
	dir, err := os.MkdirTemp(parent, "pulsesync-pg-")
	if err != nil {
		return "", fmt.Errorf("create cluster dir: %w", err)
	}
	if cred == nil {
		return dir, nil
	}
	if err := checkSearchable(filepath.Dir(dir), cred); err != nil {
		_ = os.Remove(dir)
		return "", fmt.Errorf("server user %s cannot reach the cluster dir %s (choose a directory "+
			"every user can search, such as /tmp): %w", serverUserName, dir, err)
	}
	if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
		_ = os.Remove(dir)
		return "", fmt.Errorf("hand cluster dir to %s: %w", serverUserName, err)
	}
	return dir, nil
}

// checkSearchable reports the first directory from dir up to / that cred cannot pass through.
// It considers only cred's primary group, which is how the server user normally gets access.
func checkSearchable(dir string, cred *syscall.Credential) error {
	for {
		info, err := os.Stat(dir)
		if err != nil {
			return err
		}
		perm := info.Mode().Perm()
		st, ok := info.Sys().(*syscall.Stat_t)
		searchable := perm&0o001 != 0 ||
			ok && st.Uid == cred.Uid && perm&0o100 != 0 ||
			ok && st.Gid == cred.Gid && perm&0o010 != 0
		if !searchable {
			return fmt.Errorf("%s (mode %v) is not searchable by uid %d", dir, perm, cred.Uid)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil
		}
		dir = parent
	}
}

// sysProcAttr is how every server process starts: in its own process group, so a Ctrl-C in a
// terminal reaches only us and we shut the server down in order, and as cred when set.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	setParentDeathSignal(attr)
	return attr
}
