package installer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fakeWindowsExe(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "Detour", "detour.exe")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("MZ"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestWindowsRegistryInstallUninstall runs the Windows install against an
// in-memory registry: every browser's key under HKCU (or HKLM with System)
// names a manifest beside detour.exe, Check reads them back, and uninstall
// leaves the registry and the folder exactly as they were, including a key
// that was there before and the parents it had to create.
func TestWindowsRegistryInstallUninstall(t *testing.T) {
	for _, system := range []bool{false, true} {
		name := "user"
		hive := "HKCU"
		if system {
			name, hive = "system", "HKLM"
		}
		t.Run(name, func(t *testing.T) {
			exe := fakeWindowsExe(t)
			reg := MapRegistry{}
			// Chrome has run (its key exists) and an older host is registered
			// for Edge: that value must come back on uninstall.
			reg.Set(system, `Software\Google\Chrome`, "")
			old := `C:\old\edge.json`
			reg.Set(system, windowsKey("edge"), old)
			before := len(reg)
			o := Options{GOOS: "windows", System: system, Exe: exe, Home: t.TempDir(), Registry: reg,
				RecordPath: filepath.Join(t.TempDir(), "installed.json")}
			if system {
				t.Setenv("ProgramData", t.TempDir()) // the machine-wide record goes there
			}
			res, err := Install(o)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Written) != len(Browsers) {
				t.Fatalf("wrote %d keys, want %d: %+v", len(res.Written), len(Browsers), res.Written)
			}
			for _, e := range res.Written {
				v, ok, _ := reg.Get(system, windowsKey(e.Browser))
				if !ok || v != windowsManifest(exe, e.Browser) || !strings.HasPrefix(e.Key, hive+`\Software\`) {
					t.Fatalf("%s: key %s = %q (exists %v), want %s", e.Browser, e.Key, v, ok, windowsManifest(exe, e.Browser))
				}
				b, err := os.ReadFile(v)
				if err != nil {
					t.Fatal(err)
				}
				m, err := ParseManifest(b)
				if err != nil || m.Validate(e.Browser) != nil || m.Path != exe {
					t.Fatalf("%s: manifest %s: %v path %q", e.Browser, v, err, m.Path)
				}
			}
			checks, err := Check(Options{GOOS: "windows", Exe: exe, Home: o.Home, Registry: reg})
			if err != nil {
				t.Fatal(err)
			}
			scope := map[bool]string{false: "user", true: "system"}[system]
			n := 0
			for _, c := range checks {
				if c.Scope == scope {
					n++
					if c.Problem != "" || c.Other != "" {
						t.Fatalf("check %+v", c)
					}
				}
			}
			if n != len(Browsers) {
				t.Fatalf("check found %d registrations, want %d: %+v", n, len(Browsers), checks)
			}
			un, err := Uninstall(o)
			if err != nil {
				t.Fatal(err)
			}
			if len(un.Restored) != 1 || un.Restored[0].Browser != "edge" {
				t.Fatalf("restored %+v, want edge's old value", un.Restored)
			}
			if v, _, _ := reg.Get(system, windowsKey("edge")); v != old {
				t.Fatalf("edge key = %q after uninstall, want %q", v, old)
			}
			if len(reg) != before {
				t.Fatalf("registry has %d keys after uninstall, %d before: %v", len(reg), before, reg)
			}
			left, _ := os.ReadDir(filepath.Dir(exe))
			if len(left) != 1 {
				t.Fatalf("left beside the binary: %v", left)
			}
		})
	}
}

// TestWindowsCheckProblems: a found browser without a key, and a key whose
// manifest is gone, are each reported.
func TestWindowsCheckProblems(t *testing.T) {
	exe := fakeWindowsExe(t)
	reg := MapRegistry{}
	reg.Set(false, `Software\Google\Chrome`, "")
	reg.Set(true, windowsKey("firefox"), `C:\nowhere\x.json`)
	checks, err := Check(Options{GOOS: "windows", Exe: exe, Home: t.TempDir(), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range checks {
		got[c.Browser+"/"+c.Scope] = c.Problem
	}
	if !strings.Contains(got["chrome/user"], "not registered") || !strings.Contains(got["firefox/system"], "cannot be read") || len(got) != 2 {
		t.Fatalf("checks %v", got)
	}
}

// TestWindowsCheckRelativeManifest: a machine-wide manifest naming
// detour.exe relative to itself (the MSI's, which follow INSTALLDIR) is
// taken from the manifest's folder, as the browsers take it on Windows:
// beside the running detour.exe it is fine; in another folder it names
// another binary; where no detour.exe is beside it, it is a problem.
func TestWindowsCheckRelativeManifest(t *testing.T) {
	exe := fakeWindowsExe(t)
	manifest := func(dir string) string {
		b, err := NewManifest("chrome", "detour.exe").Encode()
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, FileName)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	other := fakeWindowsExe(t)
	for _, tc := range []struct {
		name, manifest         string
		wantProblem, wantOther string
	}{
		{"beside the running exe", manifest(filepath.Dir(exe)), "", ""},
		{"beside another exe", manifest(filepath.Dir(other)), "", other},
		{"beside no exe", manifest(t.TempDir()), "host binary", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := MapRegistry{}
			reg.Set(true, windowsKey("chrome"), tc.manifest)
			checks, err := Check(Options{GOOS: "windows", Exe: exe, Home: t.TempDir(), Registry: reg, Browsers: []string{"chrome"}})
			if err != nil {
				t.Fatal(err)
			}
			if len(checks) != 1 {
				t.Fatalf("checks %+v", checks)
			}
			c := checks[0]
			if (tc.wantProblem == "") != (c.Problem == "") || !strings.Contains(c.Problem, tc.wantProblem) || c.Other != tc.wantOther {
				t.Fatalf("check %+v, want problem %q, other %q", c, tc.wantProblem, tc.wantOther)
			}
		})
	}
}

// A changed key is left in place.
func TestWindowsUninstallKeepsChangedKey(t *testing.T) {
	exe := fakeWindowsExe(t)
	reg := MapRegistry{}
	o := Options{GOOS: "windows", Exe: exe, Home: t.TempDir(), Registry: reg, Browsers: []string{"chrome"},
		RecordPath: filepath.Join(t.TempDir(), "installed.json")}
	if _, err := Install(o); err != nil {
		t.Fatal(err)
	}
	reg.Set(false, windowsKey("chrome"), `D:\someone\else.json`)
	un, err := Uninstall(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(un.Kept) != 1 {
		t.Fatalf("kept %+v", un.Kept)
	}
	if v, _, _ := reg.Get(false, windowsKey("chrome")); v != `D:\someone\else.json` {
		t.Fatalf("changed key became %q", v)
	}
}
