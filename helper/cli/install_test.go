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

// --system with --root stages the machine-wide manifests under a folder
// (as a package build does) and uninstall --system takes them away again.
func TestInstallSystemRootCommand(t *testing.T) {
	root := t.TempDir()
	t.Setenv("DETOUR_HOME", t.TempDir())
	cmd, _ := Lookup("install")
	var out bytes.Buffer
	// Without --bin-path the test binary is outside the root: refused, as
	// its build path must never end up in a package's manifests.
	if code := cmd.Run([]string{"--system", "--root", root}, &out, &out); code == 0 || !strings.Contains(out.String(), "--bin-path") {
		t.Fatalf("install --system --root without --bin-path: %d %s", code, out.String())
	}
	out.Reset()
	if code := cmd.Run([]string{"--system", "--root", root, "--bin-path", "/usr/bin/detour", "--json"}, &out, &out); code != 0 {
		t.Fatalf("install --system: %d %s", code, out.String())
	}
	var res installer.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Written) != 6 {
		t.Fatalf("wrote %d manifests, want 6 (every browser with a machine-wide folder): %+v", len(res.Written), res)
	}
	for _, e := range res.Written {
		if !strings.HasPrefix(e.Path, root+"/") {
			t.Fatalf("%s written outside the root", e.Path)
		}
		b, _ := os.ReadFile(e.Path)
		if m, err := installer.ParseManifest(b); err != nil || m.Path != "/usr/bin/detour" {
			t.Fatalf("%s: path %q (%v), want /usr/bin/detour", e.Path, m.Path, err)
		}
	}
	un, _ := Lookup("uninstall")
	out.Reset()
	if code := un.Run([]string{"--system", "--root", root}, &out, &out); code != 0 {
		t.Fatalf("uninstall --system: %d %s", code, out.String())
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Fatalf("left under the root: %v", ents)
	}
}

// --target-os stages another OS's machine-wide folders (the macOS archive is
// built on Linux); it makes sense only for staging.
func TestInstallTargetOSCommand(t *testing.T) {
	root := t.TempDir()
	t.Setenv("DETOUR_HOME", t.TempDir())
	cmd, _ := Lookup("install")
	var out bytes.Buffer
	if code := cmd.Run([]string{"--target-os", "darwin"}, &out, &out); code == 0 || !strings.Contains(out.String(), "--system --root") {
		t.Fatalf("--target-os without --root: %d %s", code, out.String())
	}
	out.Reset()
	if code := cmd.Run([]string{"--system", "--root", root, "--bin-path", "/usr/local/bin/detour", "--target-os", "darwin", "--json"}, &out, &out); code != 0 {
		t.Fatalf("%d %s", code, out.String())
	}
	var res installer.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range res.Written {
		got = append(got, strings.TrimPrefix(e.Path, root))
	}
	want := []string{
		"/Library/Google/Chrome/NativeMessagingHosts/org.detour.helper.json",
		"/Library/Application Support/Chromium/NativeMessagingHosts/org.detour.helper.json",
		"/Library/Microsoft/Edge/NativeMessagingHosts/org.detour.helper.json",
		"/Library/Application Support/Mozilla/NativeMessagingHosts/org.detour.helper.json",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("wrote\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
