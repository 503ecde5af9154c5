//go:build !windows

package localapi

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"syscall"

	"github.com/detour-project/detour/helper/paths"
)

// startDetached starts the agent with this platform's detached() attributes.
func startDetached(mk func(*syscall.SysProcAttr) *exec.Cmd) (*exec.Cmd, error) {
	cmd := mk(detached())
	return cmd, cmd.Start()
}

// dial connects to the agent's Unix socket (Windows uses its named pipe).
func dial(ctx context.Context, dirs paths.Dirs) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", dirs.Socket())
	if err != nil {
		return nil, fmt.Errorf("localapi: connect to agent at %s: %w", dirs.Socket(), err)
	}
	return c, nil
}
