package agent

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"time"
)

// superviseTray runs the tray and restarts it with backoff when it crashes.
// The tray is a separate process so that its crash (or GTK ending the
// process when the display goes) never touches the agent. A tray that exits
// with status 0 was closed on purpose and is not restarted.
func superviseTray(ctx context.Context, log *slog.Logger, path string, stderr io.Writer) {
	if _, err := os.Stat(path); err != nil {
		log.Info("no tray: binary not found", "path", path)
		return
	}
	const minBackoff, maxBackoff = time.Second, 5 * time.Minute
	backoff := minBackoff
	for {
		cmd := exec.CommandContext(ctx, path)
		cmd.Stdout = stderr
		cmd.Stderr = stderr
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		cmd.WaitDelay = 3 * time.Second
		started := time.Now()
		err := cmd.Run()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			log.Info("tray closed")
			return
		}
		if time.Since(started) > time.Minute {
			backoff = minBackoff
		}
		log.Warn("tray stopped; restarting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}
