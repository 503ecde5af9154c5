//go:build unix

package tray

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/detour-project/detour/helper/paths"
)

// ErrRunning means another tray already shows this user's icon.
var ErrRunning = errors.New("a Detour tray is already running for this user")

// SingleInstance takes the per-user tray lock, so that one icon shows however
// the tray was started (by the agent, or by hand while the agent also starts
// one). The lock goes when the process ends; release gives it up earlier.
func SingleInstance(dirs paths.Dirs) (release func(), err error) {
	if err := dirs.Ensure(); err != nil {
		return nil, err
	}
	path := filepath.Join(dirs.Runtime, "tray.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("tray: open lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrRunning
		}
		return nil, fmt.Errorf("tray: lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
