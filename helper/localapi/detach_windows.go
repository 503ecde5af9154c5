package localapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"syscall"

	"golang.org/x/sys/windows"

	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/helper/winipc"
)

// detached starts the agent with no console (DETACHED_PROCESS: no window
// flashes up when a browser starts the relay) in a process group of its own,
// out of the browser's job object where the job allows it: Chrome ends the
// host's job when the port closes, and the agent must outlive the relay.
func detached() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		CreationFlags: windows.DETACHED_PROCESS | windows.CREATE_NEW_PROCESS_GROUP | windows.CREATE_BREAKAWAY_FROM_JOB,
		HideWindow:    true,
	}
}

// startDetached starts the command mk makes; a job that forbids breakaway
// refuses the start with access denied, and the agent is then started inside
// it, which is the best that job allows.
func startDetached(mk func(*syscall.SysProcAttr) *exec.Cmd) (*exec.Cmd, error) {
	cmd := mk(detached())
	err := cmd.Start()
	if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		attr := detached()
		attr.CreationFlags &^= windows.CREATE_BREAKAWAY_FROM_JOB
		cmd = mk(attr)
		err = cmd.Start()
	}
	return cmd, err
}

func dial(ctx context.Context, dirs paths.Dirs) (net.Conn, error) {
	c, err := winipc.Dial(ctx, dirs.Socket())
	if err != nil {
		return nil, fmt.Errorf("localapi: connect to agent: %w", err)
	}
	return c, nil
}
