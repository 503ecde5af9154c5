package installer

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/detour-project/detour/shared/ids"
)

// fakeExe makes an executable file to register as the host binary.
func fakeExe(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bin", "detour")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// snapshot maps every path under root to its mode and content digest, so a
// test can compare a tree before install and after uninstall.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		v := fi.Mode().String()
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		out[p] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diff(before, after map[string]string) []string {
	var d []string
	for p, v := range after {
		if w, ok := before[p]; !ok {
			d = append(d, "added "+p)
		} else if w != v {
			d = append(d, "changed "+p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			d = append(d, "removed "+p)
		}
	}
	slices.Sort(d)
	return d
}

// parseWritten re-reads a manifest and checks it for browser and exe.
func parseWritten(t *testing.T, e Entry, exe string) {
	t.Helper()
	b, err := os.ReadFile(e.Path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest(b)
	if err != nil {
		t.Fatalf("%s: %v", e.Path, err)
	}
	if err := m.Validate(e.Browser); err != nil {
		t.Fatalf("%s: %v", e.Path, err)
	}
	if m.Path != exe {
		t.Fatalf("%s: path %q, want %q", e.Path, m.Path, exe)
	}
	if IsFirefox(e.Browser) {
		if !slices.Equal(m.AllowedExtensions, ids.FirefoxIDs()) || m.AllowedOrigins != nil {
			t.Fatalf("%s: firefox manifest %+v", e.Path, m)
		}
	} else if !slices.Equal(m.AllowedOrigins, ids.ChromeOrigins()) || m.AllowedExtensions != nil {
		t.Fatalf("%s: chrome manifest %+v", e.Path, m)
	}
	if fi, _ := os.Stat(e.Path); fi.Mode().Perm() != 0o644 {
		t.Fatalf("%s: mode %v, want 0644 (browsers must read it)", e.Path, fi.Mode().Perm())
	}
}

// wantUserPaths are the per-user folders for each browser on Linux, spelled
// out here rather than derived from the table under test.
var wantUserPaths = map[string]string{
	"chrome":   ".config/google-chrome/NativeMessagingHosts",
	"chromium": ".config/chromium/NativeMessagingHosts",
	"edge":     ".config/microsoft-edge/NativeMessagingHosts",
	"brave":    ".config/BraveSoftware/Brave-Browser/NativeMessagingHosts",
	"vivaldi":  ".config/vivaldi/NativeMessagingHosts",
	"opera":    ".config/opera/NativeMessagingHosts",
	"firefox":  ".mozilla/native-messaging-hosts",
}

var wantSystemPaths = map[string]string{
	"chrome":   "etc/opt/chrome/native-messaging-hosts",
	"chromium": "etc/chromium/native-messaging-hosts",
	"edge":     "etc/opt/edge/native-messaging-hosts",
	"brave":    "etc/opt/brave.com/brave/native-messaging-hosts",
	"vivaldi":  "etc/opt/vivaldi/native-messaging-hosts",
	"firefox":  "usr/lib/mozilla/native-messaging-hosts",
}

func TestInstallUninstallPerUserEveryBrowser(t *testing.T) {
	exe := fakeExe(t)
	home := t.TempDir()
	// Each browser's profile folder exists; one already holds another host.
	for _, p := range wantUserPaths {
		if err := os.MkdirAll(filepath.Join(home, filepath.Dir(p)), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	other := filepath.Join(home, wantUserPaths["chrome"], "com.example.other.json")
	os.MkdirAll(filepath.Dir(other), 0o700)
	os.WriteFile(other, []byte(`{"name":"com.example.other"}`), 0o644)
	before := snapshot(t, home)

	o := Options{Home: home, ConfigHome: filepath.Join(home, ".config"), Exe: exe, RecordPath: filepath.Join(home, ".config", "detour", "installed.json"), GOOS: "linux"}
	res, err := Install(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Written) != len(Browsers) || len(res.Skipped) != 0 {
		t.Fatalf("written %v, skipped %v; want every browser", res.Written, res.Skipped)
	}
	for _, e := range res.Written {
		want := filepath.Join(home, wantUserPaths[e.Browser], ids.NativeHost+".json")
		if e.Path != want {
			t.Errorf("%s: wrote %s, want %s", e.Browser, e.Path, want)
		}
		parseWritten(t, e, exe)
	}
	checks, err := Check(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if c.Problem != "" || c.Other != "" {
			t.Errorf("check after install: %+v", c)
		}
	}
	if len(checks) != len(Browsers) {
		t.Errorf("%d checks, want %d", len(checks), len(Browsers))
	}

	// Installing again is harmless and uninstall still restores the tree.
	if _, err := Install(o); err != nil {
		t.Fatal(err)
	}
	un, err := Uninstall(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(un.Removed) != len(Browsers) || len(un.Kept) != 0 {
		t.Fatalf("uninstall: %+v", un)
	}
	if d := diff(before, snapshot(t, home)); len(d) != 0 {
		t.Fatalf("uninstall left the home folder changed:\n%s", strings.Join(d, "\n"))
	}
}

func TestInstallUninstallSystemEveryBrowser(t *testing.T) {
	exe := fakeExe(t)
	root := t.TempDir()
	// Some of the machine's folders exist already and hold other files.
	os.MkdirAll(filepath.Join(root, "etc/opt"), 0o755)
	os.MkdirAll(filepath.Join(root, "usr/lib/mozilla/native-messaging-hosts"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/lib/mozilla/native-messaging-hosts/other.json"), []byte("{}"), 0o644)
	before := snapshot(t, root)

	// The build's binary is elsewhere: the manifests name where the
	// package puts it.
	o := Options{System: true, Root: root, Home: t.TempDir(), Exe: exe, BinPath: "/usr/bin/detour", GOOS: "linux"}
	res, err := Install(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Written) != len(wantSystemPaths) {
		t.Fatalf("written %v", res.Written)
	}
	if len(res.Skipped) != 1 || res.Skipped[0].Browser != "opera" {
		t.Fatalf("skipped %v, want opera (no machine-wide folder)", res.Skipped)
	}
	for _, e := range res.Written {
		want := filepath.Join(root, wantSystemPaths[e.Browser], ids.NativeHost+".json")
		if e.Path != want {
			t.Errorf("%s: wrote %s, want %s", e.Browser, e.Path, want)
		}
		parseWritten(t, e, "/usr/bin/detour")
		// Everyone's browser must be able to reach the manifest.
		for d := filepath.Dir(e.Path); d != root; d = filepath.Dir(d) {
			if fi, _ := os.Stat(d); fi.Mode().Perm()&0o005 != 0o005 {
				t.Errorf("%s is %v: other users cannot read it", d, fi.Mode().Perm())
			}
		}
	}
	if res.Record != filepath.Join(root, SystemRecord) {
		t.Errorf("record at %s", res.Record)
	}
	if _, err := Uninstall(o); err != nil {
		t.Fatal(err)
	}
	if d := diff(before, snapshot(t, root)); len(d) != 0 {
		t.Fatalf("uninstall left the system root changed:\n%s", strings.Join(d, "\n"))
	}
}

// Staging under a root (a package build): the manifests name the installed
// path, never the build folder's; a staged binary gives that path itself.
func TestInstallSystemRootNamesInstalledPath(t *testing.T) {
	exe := fakeExe(t)
	stage := func(t *testing.T, root, rel string, mode os.FileMode) string {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name    string
		binPath string
		staged  string      // a binary placed under the root first, relative
		mode    os.FileMode // its mode
		exe     func(root string) string
		want    string // the manifests' path, or "" for an error
		wantErr string
	}{
		{name: "bin-path, binary not staged", binPath: "/usr/bin/detour", exe: func(string) string { return exe }, want: "/usr/bin/detour"},
		{name: "bin-path, binary staged", binPath: "/usr/lib/detour/detour", staged: "usr/lib/detour/detour", mode: 0o755,
			exe: func(string) string { return exe }, want: "/usr/lib/detour/detour"},
		{name: "derived from the staged binary run", staged: "usr/bin/detour", mode: 0o755,
			exe: func(root string) string { return filepath.Join(root, "usr/bin/detour") }, want: "/usr/bin/detour"},
		{name: "build binary outside the root", exe: func(string) string { return exe }, wantErr: "--bin-path"},
		{name: "relative bin-path", binPath: "usr/bin/detour", exe: func(string) string { return exe }, wantErr: "absolute"},
		{name: "unclean bin-path", binPath: "/usr/bin/../bin/detour", exe: func(string) string { return exe }, wantErr: "absolute, clean"},
		{name: "staged binary not executable", binPath: "/usr/bin/detour", staged: "usr/bin/detour", mode: 0o644,
			exe: func(string) string { return exe }, wantErr: "not executable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if tc.staged != "" {
				stage(t, root, tc.staged, tc.mode)
			}
			before := snapshot(t, root)
			o := Options{System: true, Root: root, Home: t.TempDir(), Exe: tc.exe(root), BinPath: tc.binPath, GOOS: "linux"}
			res, err := Install(o)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
				if d := diff(before, snapshot(t, root)); len(d) != 0 {
					t.Fatalf("a refused install wrote: %v", d)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Exe != tc.want || len(res.Written) != len(wantSystemPaths) {
				t.Fatalf("result %+v, want manifests naming %s", res, tc.want)
			}
			for _, e := range res.Written {
				parseWritten(t, e, tc.want)
				if b, _ := os.ReadFile(e.Path); strings.Contains(string(b), root) || strings.Contains(string(b), filepath.Dir(exe)) {
					t.Fatalf("%s names a build path:\n%s", e.Path, b)
				}
			}
			if _, err := Uninstall(o); err != nil {
				t.Fatal(err)
			}
			if d := diff(before, snapshot(t, root)); len(d) != 0 {
				t.Fatalf("uninstall left: %v", d)
			}
		})
	}
}

func TestInstallOnlyWhereBrowserFound(t *testing.T) {
	exe := fakeExe(t)
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".config/chromium"), 0o700)
	os.MkdirAll(filepath.Join(home, ".mozilla"), 0o700)
	o := Options{Home: home, ConfigHome: filepath.Join(home, ".config"), Exe: exe, RecordPath: filepath.Join(home, "rec.json"), GOOS: "linux"}
	res, err := Install(o)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range res.Written {
		got = append(got, e.Browser)
	}
	if !slices.Equal(got, []string{"chromium", "firefox"}) {
		t.Fatalf("wrote for %v, want chromium and firefox", got)
	}
	if len(res.Skipped) != len(Browsers)-2 {
		t.Fatalf("skipped %v", res.Skipped)
	}
	if _, err := os.Stat(filepath.Join(home, ".config/google-chrome")); err == nil {
		t.Fatal("install created a browser's profile folder")
	}
}

func TestUninstallRestoresReplacedAndKeepsChanged(t *testing.T) {
	exe := fakeExe(t)
	home := t.TempDir()
	chromeDir := filepath.Join(home, wantUserPaths["chrome"])
	ffDir := filepath.Join(home, wantUserPaths["firefox"])
	os.MkdirAll(chromeDir, 0o755)
	os.MkdirAll(ffDir, 0o755)
	// A manifest under our name was already there (a package's, say).
	prev := []byte(`{"name":"org.detour.helper","path":"/usr/bin/detour"}`)
	os.WriteFile(filepath.Join(chromeDir, FileName), prev, 0o640)
	o := Options{Home: home, ConfigHome: filepath.Join(home, ".config"), Exe: exe, RecordPath: filepath.Join(home, "rec.json"), GOOS: "linux", Browsers: []string{"chrome", "firefox"}}
	if _, err := Install(o); err != nil {
		t.Fatal(err)
	}
	// Someone edits the Firefox manifest after install.
	edited := filepath.Join(ffDir, FileName)
	os.WriteFile(edited, []byte(`{"edited":true}`), 0o644)
	un, err := Uninstall(o)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(chromeDir, FileName)); string(b) != string(prev) {
		t.Fatalf("replaced manifest not restored: %s", b)
	}
	if fi, _ := os.Stat(filepath.Join(chromeDir, FileName)); fi.Mode().Perm() != 0o640 {
		t.Fatalf("restored mode %v", fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(edited); string(b) != `{"edited":true}` {
		t.Fatalf("edited manifest touched: %s", b)
	}
	if len(un.Restored) != 1 || len(un.Kept) != 1 || len(un.Removed) != 0 {
		t.Fatalf("uninstall: %+v", un)
	}
	if _, err := os.Stat(o.RecordPath); err == nil {
		t.Fatal("record left behind")
	}
}

func TestInstallIntoDir(t *testing.T) {
	exe := fakeExe(t)
	cases := []struct {
		browsers []string
		wantErr  bool
		want     string
	}{
		{browsers: []string{"chromium"}, want: "chromium"},
		{browsers: []string{"chrome", "chromium", "edge"}, want: "chrome"},
		{browsers: []string{"firefox"}, want: "firefox"},
		{browsers: []string{"chromium", "firefox"}, wantErr: true},
		{browsers: []string{"netscape"}, wantErr: true},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.browsers, "+"), func(t *testing.T) {
			home := t.TempDir()
			dir := filepath.Join(t.TempDir(), "profile", "NativeMessagingHosts")
			o := Options{Dir: dir, Browsers: c.browsers, Home: home, Exe: exe, RecordPath: filepath.Join(home, "rec.json")}
			res, err := Install(o)
			if c.wantErr {
				if err == nil {
					t.Fatalf("no error; wrote %v", res.Written)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Written) != 1 || res.Written[0].Path != filepath.Join(dir, FileName) || res.Written[0].Browser != c.want {
				t.Fatalf("written %v", res.Written)
			}
			parseWritten(t, res.Written[0], exe)
			if _, err := Uninstall(o); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Dir(dir)); err == nil {
				t.Fatal("uninstall left the folders install created")
			}
		})
	}
}

func TestInstallRefusesBadExe(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "detour")
	os.WriteFile(notExec, []byte("x"), 0o644)
	for _, exe := range []string{notExec, filepath.Join(dir, "missing"), dir} {
		_, err := Install(Options{Dir: filepath.Join(dir, "out"), Browsers: []string{"chrome"}, Exe: exe, Home: dir, RecordPath: filepath.Join(dir, "rec.json")})
		if err == nil {
			t.Errorf("install with host binary %s succeeded", exe)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Fatal("a refused install wrote something")
	}
}

// Another OS is rows in the table: the macOS rows install and uninstall the
// same way (paths only; run on any OS).
func TestDarwinRowsInstall(t *testing.T) {
	exe := fakeExe(t)
	home := t.TempDir()
	for _, l := range Locations("darwin") {
		os.MkdirAll(filepath.Dir(strings.Replace(l.UserDir, "$HOME", home, 1)), 0o700)
	}
	before := snapshot(t, home)
	o := Options{Home: home, Exe: exe, RecordPath: filepath.Join(t.TempDir(), "rec.json"), GOOS: "darwin"}
	res, err := Install(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Written) != len(Browsers) {
		t.Fatalf("written %v skipped %v", res.Written, res.Skipped)
	}
	for _, e := range res.Written {
		if !strings.Contains(e.Path, "/Library/Application Support/") {
			t.Errorf("%s: %s", e.Browser, e.Path)
		}
		parseWritten(t, e, exe)
	}
	if _, err := Uninstall(o); err != nil {
		t.Fatal(err)
	}
	if d := diff(before, snapshot(t, home)); len(d) != 0 {
		t.Fatalf("%v", d)
	}
	if _, err := Install(Options{Home: home, Exe: exe, RecordPath: o.RecordPath, GOOS: "plan9"}); err == nil {
		t.Fatal("install on an OS without rows succeeded")
	}
}

func TestCheckFindsProblems(t *testing.T) {
	exe := fakeExe(t)
	home, root := t.TempDir(), t.TempDir()
	cfg := filepath.Join(home, ".config")
	write := func(p, s string, mode os.FileMode) {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(s), mode); err != nil {
			t.Fatal(err)
		}
	}
	good := func(browser, path string) string {
		b, _ := NewManifest(browser, path).Encode()
		return string(b)
	}
	notExec := filepath.Join(t.TempDir(), "detour")
	write(notExec, "x", 0o644)
	otherExe := fakeExe(t)
	write(filepath.Join(cfg, "chromium/NativeMessagingHosts", FileName), good("chromium", exe), 0o644)
	write(filepath.Join(cfg, "google-chrome/NativeMessagingHosts", FileName), good("chrome", notExec), 0o644)
	write(filepath.Join(cfg, "microsoft-edge/NativeMessagingHosts", FileName), `{"name":`, 0o644)
	write(filepath.Join(home, ".mozilla/native-messaging-hosts", FileName), good("chrome", exe), 0o644) // wrong family
	os.MkdirAll(filepath.Join(cfg, "vivaldi"), 0o700)                                                   // found, not registered
	write(filepath.Join(root, "etc/opt/brave.com/brave/native-messaging-hosts", FileName), good("brave", otherExe), 0o644)
	write(filepath.Join(cfg, "opera/NativeMessagingHosts", "unrelated.json"), "{}", 0o644)

	checks, err := Check(Options{Home: home, ConfigHome: cfg, Root: root, Exe: exe, GOOS: "linux"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]ManifestCheck{}
	for _, c := range checks {
		got[c.Browser+"/"+c.Scope] = c
	}
	want := map[string]string{
		"chromium/user": "",
		"chrome/user":   "not executable",
		"edge/user":     "not valid JSON",
		"firefox/user":  "allows origins",
		"vivaldi/user":  "not registered",
		"brave/system":  "",
		"opera/user":    "not registered",
	}
	if len(got) != len(want) {
		t.Fatalf("checks %+v, want keys %v", checks, want)
	}
	for k, w := range want {
		c, ok := got[k]
		if !ok {
			t.Errorf("%s: no check", k)
			continue
		}
		if (w == "") != (c.Problem == "") || !strings.Contains(c.Problem, w) {
			t.Errorf("%s: problem %q, want one containing %q", k, c.Problem, w)
		}
	}
	if got["brave/system"].Other != otherExe {
		t.Errorf("brave/system: other %q, want %q", got["brave/system"].Other, otherExe)
	}
}

// A build with store IDs added (DETOUR_EXTENSION_IDS) writes manifests that
// admit exactly the list in shared/ids, each family its own.
func TestManifestsNameEveryBuildID(t *testing.T) {
	defer func(b string) { ids.Build = b }(ids.Build)
	const cws, edge, org = "abcdefghijklmnopabcdefghijklmnop", "ponmlkjihgfedcbaponmlkjihgfedcba", "it@example.org"
	ids.Build = "chrome-web-store=" + cws + ",edge-add-ons=" + edge + "," + org
	exe := fakeExe(t)
	dir := t.TempDir()
	for _, c := range []struct {
		browser string
		origins []string
		exts    []string
	}{
		{"chromium", []string{"chrome-extension://" + ids.ChromeExtensionID + "/", "chrome-extension://" + cws + "/", "chrome-extension://" + edge + "/"}, nil},
		{"firefox", nil, []string{ids.FirefoxExtensionID, org}},
	} {
		o := Options{Dir: filepath.Join(dir, c.browser), Browsers: []string{c.browser}, Exe: exe, Home: dir, RecordPath: filepath.Join(dir, c.browser+".json"), GOOS: "linux"}
		res, err := Install(o)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(res.Written[0].Path)
		if err != nil {
			t.Fatal(err)
		}
		m, err := ParseManifest(b)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(m.AllowedOrigins, c.origins) || !slices.Equal(m.AllowedExtensions, c.exts) {
			t.Errorf("%s manifest admits %v %v, want %v %v", c.browser, m.AllowedOrigins, m.AllowedExtensions, c.origins, c.exts)
		}
	}
}
