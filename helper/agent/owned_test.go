package agent

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// Every goroutine the agent starts is joined before Run returns: with the
// whitelist client and config watcher running against an absent hub, the
// managed enrolment retrying, the report sender and keyring opener started,
// Run returns with none of them left.
func TestRunJoinsItsGoroutines(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc", "detour"), 0o755)
	if err := os.WriteFile(filepath.Join(root, "etc", "detour", "managed.json"), []byte(`{"hub":"http://127.0.0.1:9","enrolment_code":"CODE"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(ManagedRootEnv, root)
	dirs := testDirs(t)
	ready := make(chan struct{})
	left := make(chan []string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Dirs: dirs, NoTray: true, Log: quiet, Ready: func() { close(ready) }, stopped: func(l []string) { left <- l }})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("agent did not start: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("agent not ready")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if l := <-left; len(l) != 0 {
		t.Fatalf("goroutines still running after Run returned: %v", l)
	}
}

// wait names the goroutines that did not end in time.
func TestOwnedWaitNamesStragglers(t *testing.T) {
	var e Env
	release := make(chan struct{})
	e.Go("quick", func() {})
	e.Go("stuck", func() { <-release })
	if left := e.goroutines().wait(50 * time.Millisecond); !slices.Equal(left, []string{"stuck"}) {
		t.Fatalf("left = %v, want [stuck]", left)
	}
	close(release)
	if left := e.goroutines().wait(10 * time.Second); len(left) != 0 {
		t.Fatalf("left after release = %v", left)
	}
}
