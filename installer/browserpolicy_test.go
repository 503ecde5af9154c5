package installer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/detour-project/detour/shared/ids"
)

func TestCheckBrowserPolicy(t *testing.T) {
	user := []ManifestCheck{{Browser: "chromium", Scope: "user", Path: "/home/u/.config/chromium/NativeMessagingHosts/org.detour.helper.json"}}
	system := []ManifestCheck{{Browser: "chromium", Scope: "system", Path: "/etc/chromium/native-messaging-hosts/org.detour.helper.json"}}
	for _, c := range []struct {
		name      string
		files     map[string]string // under /etc/chromium/policies/managed
		manifests []ManifestCheck
		problem   string // substring; "" for none
		note      string
		rows      int
	}{
		{name: "no policy", rows: 0},
		{name: "unrelated policy", files: map[string]string{"a.json": `{"HomepageLocation":"https://intranet.example"}`}, rows: 1},
		{name: "blocklist star", files: map[string]string{"a.json": `{"NativeMessagingBlocklist":["*"]}`}, problem: "NativeMessagingBlocklist refuses", rows: 1},
		{name: "blocklist names us", files: map[string]string{"a.json": `{"NativeMessagingBlocklist":["org.detour.helper"]}`}, problem: "NativeMessagingBlocklist", rows: 1},
		{name: "blocklist star, allow-list names us", files: map[string]string{"a.json": `{"NativeMessagingBlocklist":["*"]}`, "b.json": `{"NativeMessagingAllowlist":["org.detour.helper"]}`}, rows: 1},
		{name: "user-level off, per-user install", files: map[string]string{"a.json": `{"NativeMessagingUserLevelHosts":false}`}, manifests: user, problem: "per-user registration is ignored", rows: 1},
		{name: "user-level off, machine install", files: map[string]string{"a.json": `{"NativeMessagingUserLevelHosts":false}`}, manifests: system, note: "only machine-wide", rows: 1},
		{name: "extensions blocked", files: map[string]string{"a.json": `{"ExtensionInstallBlocklist":["*"]}`}, problem: "ExtensionInstallBlocklist", rows: 1},
		{name: "extensions blocked, ours forced", files: map[string]string{"a.json": `{"ExtensionInstallBlocklist":["*"],"ExtensionInstallForcelist":["` + ids.ChromeExtensionID + `;https://x.example/updates.xml"]}`}, note: "installs or allows", rows: 1},
		{name: "unreadable file is said, others still read", files: map[string]string{"a.json": `{`, "b.json": `{"NativeMessagingBlocklist":["*"]}`}, problem: "NativeMessagingBlocklist", note: "could not read", rows: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "etc/chromium/policies/managed")
			os.MkdirAll(dir, 0o755)
			for n, body := range c.files {
				os.WriteFile(filepath.Join(dir, n), []byte(body), 0o644)
			}
			got, err := CheckBrowserPolicy(Options{Root: root, GOOS: "linux", Browsers: []string{"chromium"}}, c.manifests)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != c.rows {
				t.Fatalf("%d rows, want %d: %+v", len(got), c.rows, got)
			}
			if c.rows == 0 {
				return
			}
			r := got[0]
			if c.problem == "" && r.Problem != "" || !strings.Contains(r.Problem, c.problem) {
				t.Errorf("problem %q, want %q", r.Problem, c.problem)
			}
			if r.Problem != "" && r.Fix == "" {
				t.Error("a problem without a fix")
			}
			if c.note != "" && !strings.Contains(strings.Join(r.Notes, "; "), c.note) {
				t.Errorf("notes %q, want %q", r.Notes, c.note)
			}
		})
	}
}

// The shipped Linux templates, deployed as they are, let Detour run when it
// is installed for the whole machine.
func TestShippedTemplatesPassDoctor(t *testing.T) {
	root := t.TempDir()
	for _, c := range []struct{ src, dst string }{
		{"policy/chrome/detour.json", "etc/chromium/policies/managed/detour.json"},
		{"policy/edge/detour.json", "etc/opt/edge/policies/managed/detour.json"},
	} {
		b, err := os.ReadFile(c.src)
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(root, filepath.Dir(c.dst)), 0o755)
		os.WriteFile(filepath.Join(root, c.dst), b, 0o644)
	}
	ms := []ManifestCheck{{Browser: "chromium", Scope: "system"}, {Browser: "edge", Scope: "system"}}
	got, err := CheckBrowserPolicy(Options{Root: root, GOOS: "linux"}, ms)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("rows %+v", got)
	}
	for _, r := range got {
		if r.Problem != "" {
			t.Errorf("%s: %s", r.Browser, r.Problem)
		}
	}
}

// A macOS managed preferences plist is read the same way.
func TestCheckBrowserPolicyMacPlist(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "Library/Managed Preferences/com.google.Chrome.plist")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict><key>NativeMessagingBlocklist</key><array><string>*</string></array></dict></plist>`), 0o644)
	got, err := CheckBrowserPolicy(Options{Root: root, GOOS: "darwin", Browsers: []string{"chrome"}}, nil)
	if err != nil || len(got) != 1 || !strings.Contains(got[0].Problem, "NativeMessagingBlocklist") {
		t.Fatalf("%+v %v", got, err)
	}
}
