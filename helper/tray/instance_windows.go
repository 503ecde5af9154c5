package tray

import (
	"errors"

	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/helper/winipc"
)

// ErrRunning means another tray already shows this user's icon.
var ErrRunning = errors.New("a Detour tray is already running for this user")

// SingleInstance holds the per-user tray lock, a named kernel object in the
// session (winipc.NamedLock), so that one icon shows however the tray was
// started (by the agent, or at sign-in). It goes with the process.
func SingleInstance(dirs paths.Dirs) (release func(), err error) {
	release, held, err := winipc.NamedLock(winipc.LockName(dirs.Socket(), "tray"))
	if err != nil {
		return nil, err
	}
	if held {
		return nil, ErrRunning
	}
	return release, nil
}
