//go:build unix

package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/detour-project/detour/helper/localapi"
	"github.com/detour-project/detour/helper/paths"
)

// agentLock is the exclusive flock on dirs.Lock(): the kernel drops it when
// the process dies, so a crashed agent never leaves a lock behind.
type agentLock struct{ f *os.File }

// acquireLock takes the lock or reports that another agent serves. A holder
// that does not answer on its socket may be on its way out, so the lock is
// retried for lockWait before giving up.
func acquireLock(ctx context.Context, dirs paths.Dirs) (*agentLock, error) {
	f, err := os.OpenFile(dirs.Lock(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("agent: open lock: %w", err)
	}
	deadline := time.Now().Add(lockWait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("agent: lock %s: %w", dirs.Lock(), err)
		}
		if socketAnswers(ctx, dirs) || time.Now().After(deadline) || ctx.Err() != nil {
			f.Close()
			return nil, ErrAlreadyRunning
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The pid in the lock file is for people and `detour doctor`; the lock
	// itself is what counts.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &agentLock{f: f}, nil
}

func (l *agentLock) release() {
	l.f.Truncate(0)
	syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
}

func socketAnswers(ctx context.Context, dirs paths.Dirs) bool {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	c, err := localapi.DialConn(ctx, dirs)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// listenSocket listens on path with mode 0600 from the first moment: the
// umask covers the window between bind and chmod.
func listenSocket(path string) (net.Listener, error) {
	// sun_path holds 108 bytes with the terminating NUL on Linux (104 on
	// macOS); say so plainly rather than let bind fail with EINVAL.
	if len(path) > 103 {
		return nil, fmt.Errorf("agent: socket path %s is %d bytes, over the limit for a Unix socket; use a shorter DETOUR_HOME or XDG_RUNTIME_DIR", path, len(path))
	}
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("agent: listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("agent: %w", err)
	}
	return ln, nil
}

// removeStaleSocket removes a socket file left by a crashed agent. Only the
// lock holder calls it, so it never removes the live socket of another.
func removeStaleSocket(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("agent: remove stale socket: %w", err)
	}
	return nil
}
