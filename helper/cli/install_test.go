package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/detour-project/detour/installer"
)

// The install and uninstall commands under a temporary HOME and DETOUR_HOME:
// the record goes into the helper's config folder, --dir writes where told,
// and uninstall takes everything away.
func TestInstallUninstallCommands(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("DETOUR_HOME", filepath.Join(home, "detour"))
	os.MkdirAll(filepath.Join(home, ".config", "chromium"), 0o700)
	os.MkdirAll(filepath.Join(home, ".mozilla"), 0o700)
	profile := filepath.Join(t.TempDir(), "profile")

	run := func(c string, args ...string) (string, int) {
		cmd, ok := Lookup(c)
		if !ok {
			t.Fatalf("no %s command", c)
		}
		var out, errb bytes.Buffer
		code := cmd.Run(args, &out, &errb)
		return out.String() + errb.String(), code
	}

	out, code := run("install", "--json")
	if code != 0 {
		t.Fatalf("install: %d %s", code, out)
	}
	var res installer.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("install --json: %v\n%s", err, out)
	}
	if len(res.Written) != 2 || res.Record != filepath.Join(home, "detour", "config", "installed.json") {
		t.Fatalf("install: %+v", res)
	}
	out, code = run("install", "--browser", "chromium", "--dir", filepath.Join(profile, "NativeMessagingHosts"))
	if code != 0 || !strings.Contains(out, "registered with chromium") {
		t.Fatalf("install --dir: %d %s", code, out)
	}
	if _, err := os.Stat(filepath.Join(profile, "NativeMessagingHosts", installer.FileName)); err != nil {
		t.Fatal(err)
	}
	if out, code = run("install", "--browser", "mosaic"); code == 0 {
		t.Fatalf("unknown browser accepted: %s", out)
	}
	out, code = run("uninstall")
	if code != 0 || strings.Count(out, "removed") != 3 {
		t.Fatalf("uninstall: %d %s", code, out)
	}
	for _, p := range []string{
		filepath.Join(home, ".config", "chromium", "NativeMessagingHosts"),
		filepath.Join(home, ".mozilla", "native-messaging-hosts"),
		filepath.Join(profile, "NativeMessagingHosts"),
		res.Record,
	} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left after uninstall", p)
		}
	}
	if out, code = run("uninstall"); code != 0 || !strings.Contains(out, "nothing to remove") {
		t.Fatalf("second uninstall: %d %s", code, out)
	}
}
