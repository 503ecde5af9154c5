// Package paths says where the helper keeps things for the current user:
// configuration (hub, pinned keys), state (whitelist cache, report queue,
// logs) and the agent's local socket.
//
// DETOUR_HOME puts all of them under one folder; tests and `make run` use it
// so that nothing touches the real profile. Otherwise each platform's own
// places are used: the XDG base directories with their documented defaults
// on Linux; on macOS ~/Library/Application Support/Detour, logs in
// ~/Library/Logs/Detour (where Console.app looks) and the socket under the
// per-user $TMPDIR; on Windows everything under %LOCALAPPDATA%\Detour\ and
// the agent's named pipe (Socket, in socket_windows.go).
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
	// Logs holds agent.log; empty means State (Linux keeps logs as state).
	Logs string
}

// Lock is the file the agent holds a lock on while it runs, so that exactly
// one agent serves a user however many relays race to start one.
func (d Dirs) Lock() string { return filepath.Join(d.Runtime, "agent.lock") }

// Log is the agent's log file. Logs never go to stdout: stdout belongs to the
// native-messaging frames when the process is a relay.
func (d Dirs) Log() string {
	if d.Logs != "" {
		return filepath.Join(d.Logs, "agent.log")
	}
	return filepath.Join(d.State, "agent.log")
}

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
	return For(runtime.GOOS, home, os.Getenv, os.TempDir(), os.Getuid()), nil
}

// For returns the folders on goos for a user with this home, environment,
// temporary folder and uid. It touches nothing, so every platform's answer
// is tested on any machine.
func For(goos, home string, getenv func(string) string, tmp string, uid int) Dirs {
	fallbackRun := filepath.Join(tmp, fmt.Sprintf("detour-%d", uid))
	if goos == "windows" {
		// Per user and not roaming: the queue and cache belong to this
		// machine. The run folder holds only the tray's and agent's
		// bookkeeping; the endpoint itself is a named pipe.
		base := getenv("LOCALAPPDATA")
		if base == "" {
			base = filepath.Join(home, "AppData", "Local")
		}
		d := filepath.Join(base, "Detour")
		return Dirs{Config: d, State: filepath.Join(d, "state"), Runtime: filepath.Join(d, "run")}
	}
	if goos == "darwin" {
		// $TMPDIR is per user on macOS (/var/folders/…/T/), short enough for
		// a socket path (104 bytes), and cleaned by the system.
		support := filepath.Join(home, "Library", "Application Support", "Detour")
		return Dirs{Config: support, State: filepath.Join(support, "State"),
			Runtime: fallbackRun, Logs: filepath.Join(home, "Library", "Logs", "Detour")}
	}
	cfg := getenv("XDG_CONFIG_HOME")
	if cfg == "" {
		cfg = filepath.Join(home, ".config")
	}
	state := getenv("XDG_STATE_HOME")
	if state == "" {
		state = filepath.Join(home, ".local", "state")
	}
	run := getenv("XDG_RUNTIME_DIR")
	if run == "" || goos != "linux" {
		// No per-user runtime folder: fall back to one under the temp folder,
		// named for the user and created 0700 (Ensure checks the owner).
		run = fallbackRun
	} else {
		run = filepath.Join(run, "detour")
	}
	return Dirs{Config: filepath.Join(cfg, "detour"), State: filepath.Join(state, "detour"), Runtime: run}
}

// Ensure creates the folders with private permissions and refuses a runtime
// folder that another user owns or others can write to (a planted socket).
func (d Dirs) Ensure() error {
	for _, p := range []string{d.Config, d.State, d.Runtime, d.Logs} {
		if p == "" {
			continue
		}
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
