package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/detour-project/detour/helper/localapi/localapitest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/detour-project/detour/helper/nativemsg"
	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/helper/paths/pathstest"
	"github.com/detour-project/detour/installer"
	"github.com/detour-project/detour/shared/protocol"
)

// statusAgent answers hello and status on the socket the way the agent does,
// with the given status result.
func statusAgent(t *testing.T, dirs paths.Dirs, status string) {
	t.Helper()
	localapitest.Serve(t, dirs, func(req protocol.Request, err error, _ []byte, w *nativemsg.Writer) bool {
		if err != nil {
			return false
		}
		var result any = json.RawMessage(status)
		if req.Type == "hello" {
			result = map[string]any{"version": "9.9.9-test", "protocol": 1}
		}
		w.WriteJSON(protocol.Reply{ID: req.ID, Type: req.Type, OK: true, Result: result})
		return true
	})
}

func TestDoctor(t *testing.T) {
	// No Secret Service on this bus: the keyring check must flag the file.
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/detour-test-bus")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		agent  bool
		status string
		want   map[string]string // check name → "status: substring of detail"
	}{
		{
			name: "no agent",
			want: map[string]string{
				"agent": "fail: not running", "hub": "warn: unknown", "whitelist": "warn: unknown",
				"keyring": "warn: fall back to a file", "binary": "ok: ", "manifest chromium (user)": "fail: not registered",
				"managed policy": "ok: none", "tray": "warn: no tray icon",
			},
		},
		{
			name: "fresh", agent: true,
			status: `{"hub":{"url":"http://127.0.0.1:9","reachable":true},"whitelist":{"version":7,"stale":false}}`,
			want:   map[string]string{"agent": "ok: 9.9.9-test", "hub": "ok: reachable", "whitelist": "ok: version 7, fresh"},
		},
		{
			name: "stale and unreachable", agent: true,
			status: `{"hub":{"url":"http://127.0.0.1:9","reachable":false},"whitelist":{"version":7,"stale":true,"fetched_at":"2026-01-02T03:04:05Z"}}`,
			want:   map[string]string{"hub": "fail: not reachable", "whitelist": "warn: stale, fetched 2026-01-02"},
		},
		{
			name: "hub not contacted yet", agent: true,
			status: `{"hub":{"url":"http://127.0.0.1:9","reachable":null},"whitelist":{"version":null,"stale":true}}`,
			want:   map[string]string{"hub": "warn: not contacted yet", "whitelist": "warn: no whitelist yet"},
		},
		{
			name: "not enrolled", agent: true,
			status: `{"hub":{"url":null,"reachable":null},"whitelist":{"version":null}}`,
			want:   map[string]string{"hub": "warn: no hub configured", "whitelist": "warn: no whitelist yet"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dirs := pathstest.Short(t)
			home, root := t.TempDir(), t.TempDir()
			os.MkdirAll(filepath.Join(home, ".config", "chromium"), 0o700)
			if c.agent {
				statusAgent(t, dirs, c.status)
			}
			checks := Doctor(context.Background(), dirs, installer.Options{Home: home, ConfigHome: filepath.Join(home, ".config"), Root: root, Exe: exe})
			got := map[string]DoctorCheck{}
			for _, ch := range checks {
				got[ch.Name] = ch
				if ch.Status != CheckOK && ch.Fix == "" {
					t.Errorf("%s is %s without a fix hint", ch.Name, ch.Status)
				}
			}
			for name, w := range c.want {
				st, sub, _ := strings.Cut(w, ": ")
				ch, ok := got[name]
				if !ok {
					t.Errorf("no %q check in %+v", name, checks)
					continue
				}
				if ch.Status != st || !strings.Contains(ch.Detail, sub) {
					t.Errorf("%s: %s %q, want %s containing %q", name, ch.Status, ch.Detail, st, sub)
				}
			}
		})
	}
}

// The command's text output is one line per check with its fix, and the exit
// code is 1 when a check fails.
func TestDoctorCommandOutput(t *testing.T) {
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/detour-test-bus")
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", "")
	d, _ := os.MkdirTemp("", "dd")
	t.Cleanup(func() { os.RemoveAll(d) })
	t.Setenv("DETOUR_HOME", d)
	var out, errb bytes.Buffer
	code := runDoctor(nil, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d with no agent running, want 1\n%s%s", code, out.String(), errb.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.HasPrefix(line, "OK ") && !strings.Contains(line, "— fix: ") {
			t.Errorf("line without a fix hint: %q", line)
		}
	}
	if !strings.Contains(out.String(), "FAIL  agent") {
		t.Errorf("no failing agent line:\n%s", out.String())
	}
	out.Reset()
	runDoctor([]string{"--json"}, &out, &errb)
	var v struct{ Checks []DoctorCheck }
	if err := json.Unmarshal(out.Bytes(), &v); err != nil || len(v.Checks) < 5 {
		t.Fatalf("--json: %v %s", err, out.String())
	}
}

// doctor reads the browsers' own policy: a blocklist of every native host
// that does not allow Detour's is a failure with the fix, an allow-list
// that names it is fine.
func TestDoctorBrowserPolicy(t *testing.T) {
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/detour-test-bus")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ policy, want string }{
		{`{"NativeMessagingBlocklist":["*"]}`, "fail: NativeMessagingBlocklist refuses the native host org.detour.helper"},
		{`{"NativeMessagingBlocklist":["*"],"NativeMessagingAllowlist":["org.detour.helper"]}`, "ok: allows the native host org.detour.helper"},
	} {
		dirs := pathstest.Short(t)
		home, root := t.TempDir(), t.TempDir()
		os.MkdirAll(filepath.Join(home, ".config", "chromium"), 0o700)
		pdir := filepath.Join(root, "etc/chromium/policies/managed")
		os.MkdirAll(pdir, 0o755)
		os.WriteFile(filepath.Join(pdir, "it.json"), []byte(c.policy), 0o644)
		var got *DoctorCheck
		for _, ch := range Doctor(context.Background(), dirs, installer.Options{Home: home, ConfigHome: filepath.Join(home, ".config"), Root: root, Exe: exe, GOOS: "linux"}) {
			if ch.Name == "browser policy chromium" {
				got = &ch
			}
		}
		st, sub, _ := strings.Cut(c.want, ": ")
		if got == nil || got.Status != st || !strings.Contains(got.Detail, sub) || !strings.Contains(got.Detail, "it.json") {
			t.Errorf("policy %s: check %+v, want %s", c.policy, got, c.want)
		} else if st != CheckOK && got.Fix == "" {
			t.Errorf("no fix for %+v", got)
		}
	}
}
