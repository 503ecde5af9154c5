package agent

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/detour-project/detour/helper/localapi"
	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/helper/winipc"
)

// agentLock is a session-local named kernel object (winipc.NamedLock) held
// open while the agent runs: the kernel removes it with the process, so a
// crashed agent leaves no lock behind. The pipe's first instance is created
// with FILE_FLAG_FIRST_PIPE_INSTANCE as a second guard.
type agentLock struct{ free func() }

// acquireLock takes the lock or reports that another agent serves. A holder
// that does not answer on its pipe may be on its way out, so the lock is
// retried for lockWait before giving up.
func acquireLock(ctx context.Context, dirs paths.Dirs) (*agentLock, error) {
	name := winipc.LockName(dirs.Socket(), "agent")
	deadline := time.Now().Add(lockWait)
	for {
		release, held, err := winipc.NamedLock(name)
		if err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
		if !held {
			return &agentLock{free: release}, nil
		}
		if socketAnswers(ctx, dirs) || time.Now().After(deadline) || ctx.Err() != nil {
			return nil, ErrAlreadyRunning
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (l *agentLock) release() { l.free() }

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

// listenSocket listens on the named pipe, whose DACL admits only this user.
func listenSocket(name string) (net.Listener, error) {
	ln, err := winipc.Listen(name)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	return ln, nil
}

// removeStaleSocket has nothing to do: a pipe goes with its last handle.
func removeStaleSocket(string) error { return nil }
