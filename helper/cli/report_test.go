//go:build unix

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/detour-project/detour/server/reports/reportstest"
)

// TestReportAcceptance runs the real binaries' path: `detour enrol` and
// `detour report --now` against a real hub on loopback through a real
// `detour agent` process; then the agent is killed with SIGKILL while the
// hub holds a report it has stored but not yet answered, and the next agent
// resends it: counted once, nothing acknowledged lost.
func TestReportAcceptance(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the detour binary")
	}
	bin := filepath.Join(t.TempDir(), "detour")
	build := exec.Command("go", "build", "-o", bin, "github.com/detour-project/detour/helper/cmd/detour")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	h := reportstest.Start(t, "")
	svc, err := h.OpenReports(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	code, _, err := svc.CreateCode(context.Background(), "org-a")
	if err != nil {
		t.Fatal(err)
	}
	home, err := os.MkdirTemp("", "dtr") // short: the socket path is limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if b, err := os.ReadFile(filepath.Join(home, "run", "agent.lock")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				syscall.Kill(pid, syscall.SIGTERM)
				time.Sleep(200 * time.Millisecond)
			}
		}
		os.RemoveAll(home)
	})
	// The report has no method, so the agent diagnoses first: keep that probe
	// on loopback whatever the environment says.
	env := []string{"DETOUR_HOME=" + home, "DETOUR_REPORT_DELAY=0", "DISPLAY=", "WAYLAND_DISPLAY=",
		"DETOUR_PROBE_LOOPBACK_ONLY=1", "DETOUR_PROBE_DNS=127.0.0.1:9"}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "DBUS_SESSION_BUS_ADDRESS=") && !strings.HasPrefix(e, "XDG_") && !strings.HasPrefix(e, "DETOUR_") {
			env = append(env, e)
		}
	}
	detour := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if err != nil {
			return out.String() + errb.String(), err
		}
		return out.String(), nil
	}
	count := func() int {
		var n int
		h.DB.QueryRowContext(context.Background(), `SELECT COALESCE(SUM(n), 0) FROM report_counts WHERE org = 'org-a'`).Scan(&n)
		return n
	}

	out, err := detour("enrol", "--hub", h.URL, "--code", code, "--json")
	if err != nil || !strings.Contains(out, `"org": "org-a"`) {
		t.Fatalf("enrol: %v\n%s", err, out)
	}
	// Straight after enrolment, as a script would: the agent has fetched
	// the whitelist with the keys it just pinned.
	out, err = detour("report", "docs.google.com", "--need", "shared-document", "--now", "--json")
	if err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	var res struct{ State string }
	json.Unmarshal([]byte(out), &res)
	if res.State != "sent" || count() != 1 {
		t.Fatalf("report --now: %s, counted %d", out, count())
	}

	// The hub stores the next report, then hangs before answering.
	held := h.HoldReportAnswers()
	out, err = detour("report", "docs.google.com", "--need", "meeting", "--json")
	if err != nil || !strings.Contains(out, `"queued"`) {
		t.Fatalf("queued report: %v\n%s", err, out)
	}
	select {
	case <-held.Committed():
	case <-time.After(20 * time.Second):
		t.Fatal("the queued report never reached the hub")
	}
	b, err := os.ReadFile(filepath.Join(home, "run", "agent.lock"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("agent pid %q: %v", b, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for syscall.Kill(pid, 0) == nil { // wait until it is gone
		time.Sleep(20 * time.Millisecond)
	}
	held.Release()

	// A new agent (started by the next command) resends the stored report:
	// the hub answers 200 and counts it once.
	out, err = detour("report", "docs.google.com", "--need", "guidance", "--now", "--json")
	if err != nil {
		t.Fatalf("report after the kill: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for count() != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("counted %d, want 3 (statuses %v)", count(), held.Statuses())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if statuses := held.Statuses(); !slices.Contains(statuses, http.StatusOK) {
		t.Fatalf("no idempotent resend (200) among %v", statuses)
	}
	time.Sleep(100 * time.Millisecond)
	if c := count(); c != 3 {
		t.Fatalf("counted %d after settling, want 3", c)
	}
	for _, bad := range []string{"127.0.0.1", "::1"} {
		if strings.Contains(h.Log(), bad) {
			t.Errorf("the hub log names a client address (%s)", bad)
		}
	}
}
