package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// verifyUnit runs `systemd-analyze verify` on unit inside a throwaway root
// that holds the machine's own system units (the targets the unit orders
// itself against) and a stand-in /usr/local/bin/detour-server, so the check
// needs neither an installed hub nor a running systemd. systemd-analyze
// reports unknown keys and bad values as warnings with exit status 0, so any
// output at all is a failure.
func verifyUnit(t *testing.T, analyze, unit string) (string, error) {
	t.Helper()
	root := t.TempDir()
	if err := os.CopyFS(filepath.Join(root, "usr/lib/systemd/system"), os.DirFS("/usr/lib/systemd/system")); err != nil {
		t.Fatalf("copying the system units into the verify root: %v", err)
	}
	for _, f := range []struct {
		name, body string
		mode       os.FileMode
	}{
		{"usr/local/bin/detour-server", "#!/bin/sh\n", 0o755},
		{"etc/systemd/system/detour-server.service", unit, 0o644},
	} {
		p := filepath.Join(root, f.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.body), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	cmd := exec.Command(analyze, "verify", "--root="+root, "detour-server.service")
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

// TestUnitVerifies keeps detour-server.service acceptable to systemd itself,
// and checks that the check can fail: a misspelt key and a bad value in a
// copy of the unit must be reported.
func TestUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd, scripts/deps.sh)")
	}
	unit := read(t, "detour-server.service")
	for _, tc := range []struct {
		name, unit string
		ok         bool
	}{
		{"the unit as shipped", unit, true},
		{"a misspelt key", strings.Replace(unit, "\nType=simple", "\nTyp=simple", 1), false},
		{"a bad value", strings.Replace(unit, "\nRestart=on-failure", "\nRestart=sometimes", 1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.ok && tc.unit == unit {
				t.Fatal("the broken copy equals the unit: the replacement no longer matches it")
			}
			out, err := verifyUnit(t, analyze, tc.unit)
			clean := err == nil && out == ""
			if clean != tc.ok {
				t.Errorf("systemd-analyze verify: clean %v, want %v (err %v):\n%s", clean, tc.ok, err, out)
			}
		})
	}
}
