//go:build unix

package localapi

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"syscall"

	"github.com/detour-project/detour/helper/paths"
)

// detached puts the agent in its own session, so that the browser's signals
// to the relay's process group do not reach it.
func detached() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }

func startDetached(mk func(*syscall.SysProcAttr) *exec.Cmd) (*exec.Cmd, error) {
	cmd := mk(detached())
	return cmd, cmd.Start()
}

func dial(ctx context.Context, dirs paths.Dirs) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", dirs.Socket())
	if err != nil {
		return nil, fmt.Errorf("localapi: connect to agent at %s: %w", dirs.Socket(), err)
	}
	return c, nil
}
