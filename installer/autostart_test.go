package installer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/detour-project/detour/helper/config"
)

// The packages ship the templates as they are: generating the entry for the
// packages' own paths gives exactly the shipped files.
func TestAutostartEntryMatchesPackages(t *testing.T) {
	for _, tc := range []struct{ goos, exe, file string }{
		{"linux", "/usr/bin/detour", "linux/detour.desktop"},
		{"darwin", "/usr/local/bin/detour", "macos/org.detour.helper.plist"},
	} {
		b, err := AutostartEntry(tc.goos, tc.exe)
		if err != nil {
			t.Fatal(err)
		}
		f, _ := os.ReadFile(tc.file)
		if string(b) != string(f) {
			t.Errorf("%s: generated entry differs from %s", tc.goos, tc.file)
		}
		if got := autostartExe(tc.goos, string(b)); got != tc.exe {
			t.Errorf("%s: reads back %q", tc.goos, got)
		}
	}
}

func TestAutostartEntryPaths(t *testing.T) {
	for _, tc := range []struct {
		goos, exe string
		wantErr   string
		contains  string
	}{
		{goos: "linux", exe: "/home/ann/bin/detour", contains: "\nExec=/home/ann/bin/detour agent\n"},
		{goos: "linux", exe: "/home/ann/My Apps/detour", contains: "\nExec=\"/home/ann/My Apps/detour\" agent\n"},
		{goos: "linux", exe: "/home/ann/$HOME/detour", wantErr: "cannot carry"},
		{goos: "linux", exe: "/home/ann/100%/detour", wantErr: "cannot carry"},
		{goos: "linux", exe: "bin/detour", wantErr: "absolute"},
		{goos: "darwin", exe: "/Users/ann/Apps & Tools/detour", contains: "<string>/Users/ann/Apps &amp; Tools/detour</string>"},
		{goos: "windows", exe: "/x/detour", wantErr: "not supported"},
	} {
		t.Run(tc.goos+" "+tc.exe, func(t *testing.T) {
			b, err := AutostartEntry(tc.goos, tc.exe)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), tc.contains) {
				t.Fatalf("entry lacks %q:\n%s", tc.contains, b)
			}
			if got := autostartExe(tc.goos, string(b)); got != tc.exe {
				t.Fatalf("reads back %q, want %q", got, tc.exe)
			}
			if tc.goos == "darwin" {
				if _, err := config.ParsePlist(b); err != nil {
					t.Fatalf("not a plist: %v", err)
				}
			}
		})
	}
}

// install --autostart writes the entry where each desktop looks, keeps it in
// the record, and uninstall takes it away with the folders it made.
func TestInstallAutostart(t *testing.T) {
	exe := fakeExe(t)
	for _, tc := range []struct {
		name, goos string
		system     bool
		want       string // relative to home (per user) or root
	}{
		{"linux user", "linux", false, ".config/autostart/detour.desktop"},
		{"linux system", "linux", true, "etc/xdg/autostart/detour.desktop"},
		{"macOS user", "darwin", false, "Library/LaunchAgents/org.detour.helper.plist"},
		{"macOS system", "darwin", true, "Library/LaunchAgents/org.detour.helper.plist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home, root := t.TempDir(), t.TempDir()
			base := home
			if tc.system {
				base = root
			}
			before := snapshot(t, base)
			o := Options{System: tc.system, Root: root, Home: home, Exe: exe, BinPath: exe, GOOS: tc.goos,
				RecordPath: filepath.Join(home, "rec", "installed.json"), Autostart: true}
			if !tc.system {
				o.Root = ""
			}
			res, err := Install(o)
			if err != nil {
				t.Fatal(err)
			}
			if res.Autostart != filepath.Join(base, tc.want) {
				t.Fatalf("autostart at %s, want %s", res.Autostart, filepath.Join(base, tc.want))
			}
			b, err := os.ReadFile(res.Autostart)
			if err != nil || autostartExe(tc.goos, string(b)) != exe {
				t.Fatalf("entry %v:\n%s", err, b)
			}
			cs, err := CheckAutostart(Options{Root: o.Root, Home: home, GOOS: tc.goos})
			if err != nil || len(cs) != 1 || cs[0].Path != res.Autostart || cs[0].Problem != "" {
				t.Fatalf("check: %+v %v", cs, err)
			}
			if _, err := Uninstall(o); err != nil {
				t.Fatal(err)
			}
			after := snapshot(t, base)
			if tc.system {
				if d := diff(before, after); len(d) != 0 {
					t.Fatalf("uninstall left: %v", d)
				}
			} else if _, err := os.Stat(res.Autostart); err == nil {
				t.Fatal("entry left after uninstall")
			}
		})
	}
}

func TestCheckAutostartProblems(t *testing.T) {
	home := t.TempDir()
	p := filepath.Join(home, ".config/autostart/detour.desktop")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("[Desktop Entry]\nExec=/nowhere/detour agent\n"), 0o644)
	cs, err := CheckAutostart(Options{Home: home, ConfigHome: filepath.Join(home, ".config"), Root: t.TempDir(), GOOS: "linux"})
	if err != nil || len(cs) != 1 || !strings.Contains(cs[0].Problem, "/nowhere/detour") {
		t.Fatalf("%+v %v", cs, err)
	}
	os.WriteFile(p, []byte("[Desktop Entry]\nName=x\n"), 0o644)
	cs, _ = CheckAutostart(Options{Home: home, ConfigHome: filepath.Join(home, ".config"), Root: t.TempDir(), GOOS: "linux"})
	if len(cs) != 1 || !strings.Contains(cs[0].Problem, "does not say") {
		t.Fatalf("%+v", cs)
	}
	// Turned off in the desktop's startup settings: the person's choice.
	exe := fakeExe(t)
	for _, off := range []string{"Hidden=true", "X-GNOME-Autostart-enabled=false"} {
		os.WriteFile(p, []byte("[Desktop Entry]\nExec="+exe+" agent\n"+off+"\n"), 0o644)
		cs, _ = CheckAutostart(Options{Home: home, ConfigHome: filepath.Join(home, ".config"), Root: t.TempDir(), GOOS: "linux"})
		if len(cs) != 1 || !cs[0].Off || cs[0].Problem != "" {
			t.Fatalf("%s: %+v", off, cs)
		}
	}
	b, _ := AutostartEntry("darwin", exe)
	la := filepath.Join(home, "Library/LaunchAgents/org.detour.helper.plist")
	os.MkdirAll(filepath.Dir(la), 0o755)
	os.WriteFile(la, []byte(strings.Replace(string(b), "<dict>", "<dict>\n\t<key>Disabled</key>\n\t<true/>", 1)), 0o644)
	if cs, _ := CheckAutostart(Options{Home: home, Root: t.TempDir(), GOOS: "darwin"}); len(cs) != 1 || !cs[0].Off {
		t.Fatalf("darwin Disabled: %+v", cs)
	}
	if cs, _ := CheckAutostart(Options{Home: t.TempDir(), Root: t.TempDir(), GOOS: "linux"}); len(cs) != 0 {
		t.Fatalf("found %+v in an empty home", cs)
	}
}
