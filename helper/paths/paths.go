// Package paths says where the helper keeps things for the current user:
// configuration (hub, pinned keys), state (whitelist cache, report queue,
// logs) and the agent's local socket.
//
// DETOUR_HOME puts all three under one folder; tests and `make run` use it so
// that nothing touches the real profile. Otherwise the XDG base directories
// are used, with their documented defaults.
package paths

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// Dirs is the set of folders one user's helper uses.
type Dirs struct {
	Config  string // config.json: hub URL, pinned keys, organisation, settings
	State   string // whitelist cache, report queue, agent.log
	Runtime string // the agent's socket and lock; mode 0700
}

// Socket is the agent's Unix socket path.
func (d Dirs) Socket() string { return filepath.Join(d.Runtime, "agent.sock") }

// Lock is the file the agent holds a lock on while it runs, so that exactly
// one agent serves a user however many relays race to start one.
func (d Dirs) Lock() string { return filepath.Join(d.Runtime, "agent.lock") }

// Log is the agent's log file. Logs never go to stdout: stdout belongs to the
// native-messaging frames when the process is a relay.
func (d Dirs) Log() string { return filepath.Join(d.State, "agent.log") }

// ConfigFile is the helper's configuration file.
func (d Dirs) ConfigFile() string { return filepath.Join(d.Config, "config.json") }

// Default returns the folders for the current user.
func Default() (Dirs, error) {
	if h := os.Getenv("DETOUR_HOME"); h != "" {
		h, err := filepath.Abs(h)
		if err != nil {
			return Dirs{}, fmt.Errorf("paths: DETOUR_HOME: %w", err)
		}
		return Dirs{Config: filepath.Join(h, "config"), State: filepath.Join(h, "state"), Runtime: filepath.Join(h, "run")}, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return Dirs{}, fmt.Errorf("paths: no home folder: %w", err)
	}
	cfg := os.Getenv("XDG_CONFIG_HOME")
	if cfg == "" {
		cfg = filepath.Join(home, ".config")
	}
	state := os.Getenv("XDG_STATE_HOME")
	if state == "" {
		state = filepath.Join(home, ".local", "state")
	}
	run := os.Getenv("XDG_RUNTIME_DIR")
	if run == "" || runtime.GOOS != "linux" {
		// No per-user runtime folder: fall back to one under the temp folder,
		// named for the user and created 0700 (Ensure checks the owner).
		run = filepath.Join(os.TempDir(), fmt.Sprintf("detour-%d", os.Getuid()))
	} else {
		run = filepath.Join(run, "detour")
	}
	return Dirs{Config: filepath.Join(cfg, "detour"), State: filepath.Join(state, "detour"), Runtime: run}, nil
}

// Ensure creates the folders with private permissions and refuses a runtime
// folder that another user owns or others can write to (a planted socket).
func (d Dirs) Ensure() error {
	for _, p := range []string{d.Config, d.State, d.Runtime} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			return fmt.Errorf("paths: create %s: %w", p, err)
		}
	}
	fi, err := os.Stat(d.Runtime)
	if err != nil {
		return fmt.Errorf("paths: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(d.Runtime, 0o700); err != nil {
			return fmt.Errorf("paths: %s is open to others and cannot be made private: %w", d.Runtime, err)
		}
	}
	return checkOwner(d.Runtime, fi)
}
