package localapi

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/detour-project/detour/helper/paths"
)

// StartTimeout bounds how long EnsureAgent waits for a new agent's socket.
// A browser gives the relay no feedback while it waits, and the hello reply
// must come within 2 s, so an agent that cannot listen by then has failed.
const StartTimeout = 5 * time.Second

// EnsureAgent makes sure an agent answers on dirs' socket: it connects, and
// when nothing answers starts `exe agent` detached (its own session, stdin and
// stdout on /dev/null, stderr appended to the agent log) and waits until the
// socket accepts a connection. Several callers may race: each may start an
// agent, the agent's lock lets exactly one of them serve and the others exit
// quietly, and every caller connects to the winner.
func EnsureAgent(ctx context.Context, dirs paths.Dirs, exe string) error {
	if answers(ctx, dirs) {
		return nil
	}
	if err := dirs.Ensure(); err != nil {
		return fmt.Errorf("localapi: start agent: %w", err)
	}
	exited, err := startAgent(dirs, exe)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	wait := 5 * time.Millisecond
	for {
		if answers(ctx, dirs) {
			return nil
		}
		select {
		case err := <-exited:
			exited = nil
			// Exit status 0 is an agent that found another one holding the
			// lock: keep waiting for that one's socket. Anything else failed.
			if err != nil {
				return fmt.Errorf("localapi: agent %s exited: %w (see %s)", exe, err, dirs.Log())
			}
		case <-ctx.Done():
			return fmt.Errorf("localapi: no agent answered on %s within %s (see %s): %w", dirs.Socket(), StartTimeout, dirs.Log(), ctx.Err())
		case <-time.After(wait):
		}
		if wait < 50*time.Millisecond {
			wait *= 2
		}
	}
}

// answers reports whether the socket accepts a connection now.
func answers(ctx context.Context, dirs paths.Dirs) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	c, err := DialConn(ctx, dirs)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// startAgent starts `exe agent` detached from the caller: a browser kills the
// relay's process group and waits on its pipes, so the agent must hold none
// of them. The returned channel receives the agent's exit.
func startAgent(dirs paths.Dirs, exe string) (<-chan error, error) {
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("localapi: start agent: %w", err)
	}
	defer devnull.Close()
	logf, err := os.OpenFile(dirs.Log(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("localapi: start agent: open log: %w", err)
	}
	defer logf.Close()
	cmd, err := startDetached(func(attr *syscall.SysProcAttr) *exec.Cmd {
		cmd := exec.Command(exe, "agent")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, logf
		cmd.Dir = filepath.VolumeName(exe) + string(filepath.Separator) // holds no folder in use
		cmd.SysProcAttr = attr
		return cmd
	})
	if err != nil {
		return nil, fmt.Errorf("localapi: start %s agent: %w", exe, err)
	}
	exited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%s", ee.ProcessState)
		}
		exited <- err
	}()
	return exited, nil
}
