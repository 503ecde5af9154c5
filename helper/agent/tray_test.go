package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/detour-project/detour/helper/paths"
)

// fakeTray writes a script that records each start in a file and exits with
// the given status.
func fakeTray(t *testing.T, status int) (exe, starts string) {
	t.Helper()
	d := t.TempDir()
	starts = filepath.Join(d, "starts")
	exe = filepath.Join(d, "detour-tray")
	script := "#!/bin/sh\necho started >> '" + starts + "'\nexit " + map[int]string{0: "0", 1: "1"}[status] + "\n"
	if err := os.WriteFile(exe, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return exe, starts
}

func countStarts(path string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), "started")
}

// runWithTray runs the agent as on a desktop, with the given tray binary.
func runWithTray(t *testing.T, exe string) paths.Dirs {
	t.Helper()
	t.Setenv("DISPLAY", ":99")
	dirs := testDirs(t)
	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Dirs: dirs, TrayPath: exe, Log: quiet, Ready: func() { close(ready) }})
	}()
	<-ready
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return dirs
}

func waitStarts(path string, n int) int {
	for deadline := time.Now().Add(5 * time.Second); countStarts(path) < n && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	return countStarts(path)
}

func TestTrayRestartedAfterCrash(t *testing.T) {
	exe, starts := fakeTray(t, 1)
	dirs := runWithTray(t, exe)
	if n := waitStarts(starts, 2); n < 2 {
		t.Fatalf("crashed tray started %d times, want a restart", n)
	}
	// The agent is unaffected by the tray's crashes.
	if err := dial(t, dirs).Call(context.Background(), "status", nil, nil); err != nil {
		t.Fatal(err)
	}
}

func TestTrayClosedOnPurposeStaysClosed(t *testing.T) {
	exe, starts := fakeTray(t, 0)
	runWithTray(t, exe)
	waitStarts(starts, 1)
	time.Sleep(1500 * time.Millisecond) // longer than the first restart delay
	if n := countStarts(starts); n != 1 {
		t.Fatalf("tray started %d times, want exactly 1", n)
	}
}
