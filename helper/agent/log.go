package agent

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/detour-project/detour/helper/paths"
)

// maxLogSize is the size past which the log is moved to agent.log.1 at start,
// so that a long-lived profile keeps at most two files' worth.
const maxLogSize = 10 << 20

// openLog returns the logger: the given one, or the agent log file, plus
// stderr when it is a terminal. Never stdout.
func openLog(given *slog.Logger, dirs paths.Dirs) (*slog.Logger, *os.File, error) {
	if given != nil {
		return given, nil, nil
	}
	if fi, err := os.Stat(dirs.Log()); err == nil && fi.Size() > maxLogSize {
		os.Rename(dirs.Log(), dirs.Log()+".1")
	}
	f, err := os.OpenFile(dirs.Log(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("agent: open log: %w", err)
	}
	var w io.Writer = f
	if isTerminal(os.Stderr) {
		w = io.MultiWriter(f, os.Stderr)
	}
	return slog.New(slog.NewTextHandler(w, nil)), f, nil
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
