//go:build !unix && !windows

package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/detour-project/detour/helper/paths"
)

type agentLock struct{}

// acquireLock is not written yet for this platform (Windows will use a named
// mutex and a named pipe).
func acquireLock(context.Context, paths.Dirs) (*agentLock, error) {
	return nil, errors.New("agent: not supported on this platform yet")
}

func (*agentLock) release() {}

func listenSocket(path string) (net.Listener, error) {
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("agent: listen on %s: %w", path, err)
	}
	return ln, nil
}

func removeStaleSocket(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("agent: remove stale socket: %w", err)
	}
	return nil
}
