//go:build !unix && !windows

package tray

import (
	"errors"

	"github.com/detour-project/detour/helper/paths"
)

// ErrRunning means another tray already shows this user's icon.
var ErrRunning = errors.New("a Detour tray is already running for this user")

// SingleInstance is a no-op where there is no flock; the agent's supervisor
// is then the only starter.
func SingleInstance(paths.Dirs) (func(), error) { return func() {}, nil }
