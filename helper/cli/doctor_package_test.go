package cli

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/detour-project/detour/installer"
)

type fakeFinder struct {
	pkg *installer.Package
	err error
}

func (f fakeFinder) Manager() string { return "fake" }
func (f fakeFinder) Find(context.Context, string) (*installer.Package, error) {
	return f.pkg, f.err
}

// doctor's package line: who installed the binary, and whether the
// machine-wide manifests are still the package's.
func TestDoctorPackage(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "detour")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	deb := &installer.Package{Manager: "dpkg", Name: "detour", Version: "1.2.3"}
	stage := func(t *testing.T) string {
		root := t.TempDir()
		if _, err := installer.Install(installer.Options{System: true, Root: root, Exe: exe, BinPath: exe, GOOS: "linux"}); err != nil {
			t.Fatal(err)
		}
		return root
	}
	for _, tc := range []struct {
		name   string
		finder fakeFinder
		spoil  func(root string) // changes the staged manifests
		status string
		detail []string
		fix    string
	}{
		{name: "a hand install", status: CheckOK, detail: []string{"not from a package", exe}},
		{name: "the package, entries intact", finder: fakeFinder{pkg: deb}, status: CheckOK,
			detail: []string{"installed by the dpkg package detour 1.2.3", "chrome, chromium, edge, brave, vivaldi, firefox", "name " + exe}},
		{name: "the package, entries spoiled", finder: fakeFinder{pkg: deb}, status: CheckWarn,
			spoil: func(root string) {
				os.Remove(filepath.Join(root, "etc/opt/chrome/native-messaging-hosts", installer.FileName))
				b, _ := installer.NewManifest("firefox", "/opt/elsewhere/detour").Encode()
				os.WriteFile(filepath.Join(root, "usr/lib/mozilla/native-messaging-hosts", installer.FileName), b, 0o644)
				os.WriteFile(filepath.Join(root, "etc/chromium/native-messaging-hosts", installer.FileName), []byte("{"), 0o644)
			},
			detail: []string{"missing for chrome", "another binary for chromium, firefox"}, fix: "sudo apt install --reinstall detour"},
		{name: "the database fails", finder: fakeFinder{err: errors.New("lock held")}, status: CheckWarn, detail: []string{"lock held"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := stage(t)
			if tc.spoil != nil {
				tc.spoil(root)
			}
			old := doctorPackageFinders
			doctorPackageFinders = []installer.PackageFinder{tc.finder}
			defer func() { doctorPackageFinders = old }()
			c := checkPackage(context.Background(), installer.Options{Root: root, Exe: exe, GOOS: "linux"})
			if c.Status != tc.status || !strings.Contains(c.Fix, tc.fix) {
				t.Fatalf("%+v, want status %s fix %q", c, tc.status, tc.fix)
			}
			for _, d := range tc.detail {
				if !strings.Contains(c.Detail, d) {
					t.Errorf("detail %q lacks %q", c.Detail, d)
				}
			}
		})
	}
}

// doctor's sign-in line: nothing, an entry, an entry turned off, a broken one.
func TestDoctorAutostart(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "detour")
	os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755)
	home := t.TempDir()
	cfg := filepath.Join(home, ".config")
	entry := filepath.Join(cfg, "autostart", "detour.desktop")
	o := installer.Options{Home: home, ConfigHome: cfg, Root: t.TempDir(), GOOS: "linux", Exe: exe}
	for _, tc := range []struct {
		name, body, status, detail string
	}{
		{"none", "", CheckWarn, "nothing starts the agent"},
		{"an entry", "[Desktop Entry]\nExec=" + exe + " agent\n", CheckOK, entry + " (user)"},
		{"turned off", "[Desktop Entry]\nExec=" + exe + " agent\nHidden=true\n", CheckWarn, "turned off"},
		{"names a missing binary", "[Desktop Entry]\nExec=/gone/detour agent\n", CheckFail, "/gone/detour"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(entry)
			if tc.body != "" {
				os.MkdirAll(filepath.Dir(entry), 0o755)
				os.WriteFile(entry, []byte(tc.body), 0o644)
			}
			cs := checkAutostart(o)
			if len(cs) != 1 || cs[0].Status != tc.status || !strings.Contains(cs[0].Detail, tc.detail) {
				t.Fatalf("%+v, want %s containing %q", cs, tc.status, tc.detail)
			}
		})
	}
	if cs := checkAutostart(installer.Options{Home: home, GOOS: "windows", Exe: exe}); len(cs) != 0 {
		t.Fatalf("windows: %+v (the MSI's Run key is not the installer's)", cs)
	}
}
