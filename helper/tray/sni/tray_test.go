package sni

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/detour-project/detour/helper/localapi"
	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/shared/protocol"
)

// bin holds detour and detour-tray, built once for the package's tests.
var bin string

// TestMain builds the real binaries: the test drives them as a desktop would.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "detour-tray-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = dir
	code := func() int {
		for _, b := range []struct{ out, pkg, cgo string }{
			{"detour", "./helper/cmd/detour", "0"},
			{"detour-tray", "./helper/cmd/detour-tray", "1"},
		} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(dir, b.out), b.pkg)
			cmd.Dir = repoRoot()
			cmd.Env = append(os.Environ(), "CGO_ENABLED="+b.cgo)
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b.pkg, err, out)
				return 1
			}
		}
		return m.Run()
	}()
	os.RemoveAll(dir)
	os.Exit(code)
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// start runs a command and stops it (SIGTERM, then SIGKILL) when the test ends.
func start(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() { stop(cmd) })
}

func stop(cmd *exec.Cmd) {
	if cmd.ProcessState != nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// xvfb starts an X server on a free display (-displayfd picks it).
func xvfb(t *testing.T) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "640x480x24", "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	start(t, cmd)
	w.Close()
	defer r.Close()
	line, err := readLine(r, 15*time.Second)
	if err != nil {
		t.Fatalf("Xvfb did not report its display: %v", err)
	}
	return ":" + line
}

// session starts a private D-Bus session bus and returns its address.
func session(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start(t, cmd)
	addr, err := readLine(out, 10*time.Second)
	if err != nil {
		t.Fatalf("dbus-daemon did not print its address: %v", err)
	}
	return addr
}

func readLine(f interface{ Read([]byte) (int, error) }, timeout time.Duration) (string, error) {
	ch := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		s, err := bufio.NewReader(f).ReadString('\n')
		if err != nil {
			errc <- err
			return
		}
		ch <- strings.TrimSpace(s)
	}()
	select {
	case s := <-ch:
		return s, nil
	case err := <-errc:
		return "", err
	case <-time.After(timeout):
		return "", fmt.Errorf("nothing after %s", timeout)
	}
}

// eventually polls f until it returns nil or the time is up.
func eventually(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

func labels(n MenuNode) []string {
	var out []string
	for _, c := range n.Flatten() {
		if c.Visible && c.Type != "separator" {
			out = append(out, c.Label)
		}
	}
	return out
}

// The real tray, headless: Xvfb, a private session bus with the fake
// watcher, a real `detour agent`. The test reads the menu over dbusmenu as a
// panel would, clicks "Report automatically" and sees the agent's setting
// change and the checkbox follow; then Quit ends the tray and not the agent.
func TestTrayMenuReachesAgent(t *testing.T) {
	display := xvfb(t)
	bus := session(t)
	conn, err := dbus.Connect(bus)
	if err != nil {
		t.Fatalf("connect to the private bus: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	w, err := StartWatcher(conn)
	if err != nil {
		t.Fatal(err)
	}

	// A short DETOUR_HOME keeps the socket path under the sun_path limit.
	home, err := os.MkdirTemp("", "dtr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	env := append(os.Environ(),
		"DETOUR_HOME="+home,
		"DBUS_SESSION_BUS_ADDRESS="+bus,
		"DISPLAY="+display,
		"LANG=C.UTF-8", "LC_ALL=", "LC_MESSAGES=", // English; always installed
		"TMPDIR="+home, // systray writes its icon file there
	)
	agent := exec.Command(filepath.Join(bin, "detour"), "agent", "--no-tray")
	agent.Env = env
	agentLog := &strings.Builder{}
	agent.Stderr = agentLog
	start(t, agent)
	dirs := paths.Dirs{Config: filepath.Join(home, "config"), State: filepath.Join(home, "state"), Runtime: filepath.Join(home, "run")}
	var api *localapi.Client
	eventually(t, 10*time.Second, "agent socket", func() error {
		c, err := localapi.Dial(context.Background(), dirs)
		api = c
		return err
	})
	t.Cleanup(func() { api.Close() })

	trayCmd := exec.Command(filepath.Join(bin, "detour-tray"))
	trayCmd.Env = env
	trayLog := &strings.Builder{}
	trayCmd.Stdout, trayCmd.Stderr = trayLog, trayLog
	start(t, trayCmd)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("tray output:\n%s\nagent output:\n%s", trayLog, agentLog)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	item, err := w.WaitItem(ctx)
	if err != nil {
		t.Fatal(err)
	}
	menu, err := ItemMenu(conn, item)
	if err != nil {
		t.Fatal(err)
	}

	// The menu shows the agent's state once the tray has connected.
	var layout MenuNode
	eventually(t, 15*time.Second, "menu with the agent's state", func() error {
		l, err := menu.Layout(ctx)
		if err != nil {
			return err
		}
		layout = l
		got := labels(l)
		for _, want := range []string{"Hub: not set up", "Sync now", "Report automatically", "Pause prompts for an hour", "Quit"} {
			if _, ok := l.Find(want); !ok {
				return fmt.Errorf("no %q in %q", want, got)
			}
		}
		for _, s := range got {
			if strings.HasPrefix(s, "Whitelist: ") {
				return nil
			}
		}
		return fmt.Errorf("no whitelist line in %q", got)
	})
	report, _ := layout.Find("Report automatically")
	if report.ToggleType != "checkmark" || report.ToggleState != 0 || !report.Enabled {
		t.Fatalf("Report automatically: %+v, want an enabled, unchecked checkbox", report)
	}
	if hub, _ := layout.Find("Hub: not set up"); hub.Enabled {
		t.Error("the hub status line is clickable")
	}

	// A click reaches the agent: the setting changes there.
	if err := menu.Click(ctx, report.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "report_automatically set in the agent", func() error {
		var s protocol.Settings
		if err := api.Call(ctx, "settings", nil, &s); err != nil {
			return err
		}
		if !s.ReportAutomatically {
			return fmt.Errorf("agent settings %+v", s)
		}
		return nil
	})
	b, err := os.ReadFile(dirs.ConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ReportAutomatically bool `json:"report_automatically"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil || !cfg.ReportAutomatically {
		t.Fatalf("config file %s: %s (%v)", dirs.ConfigFile(), b, err)
	}
	// And the checkbox follows the agent's answer.
	eventually(t, 10*time.Second, "checkbox checked", func() error {
		l, err := menu.Layout(ctx)
		if err != nil {
			return err
		}
		n, ok := l.Find("Report automatically")
		if !ok || n.ToggleState != 1 {
			return fmt.Errorf("item %+v", n)
		}
		return nil
	})

	// A change made elsewhere (here, through the agent's API) shows in the
	// tray through the settings-changed event.
	if err := api.Call(ctx, "settings", map[string]any{"set": map[string]any{"paused_until": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}}, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "Resume prompts shown", func() error {
		l, err := menu.Layout(ctx)
		if err != nil {
			return err
		}
		if _, ok := l.Find("Resume prompts"); !ok {
			return fmt.Errorf("menu %q", labels(l))
		}
		for _, s := range labels(l) {
			if strings.HasPrefix(s, "Prompts paused until ") {
				return nil
			}
		}
		return fmt.Errorf("no paused line in %q", labels(l))
	})

	// Quit ends the tray, cleanly, and leaves the agent running.
	quit, _ := layout.Find("Quit")
	if err := menu.Click(ctx, quit.ID); err != nil && !strings.Contains(err.Error(), "disconnected") {
		// The tray may leave the bus before it answers the click: that is Quit working.
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- trayCmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("tray exited with %v after Quit", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tray still running 10 s after Quit")
	}
	var s protocol.Settings
	if err := api.Call(ctx, "settings", nil, &s); err != nil {
		t.Fatalf("agent gone after the tray quit: %v", err)
	}
}
