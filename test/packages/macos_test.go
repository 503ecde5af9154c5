package packages

import (
	"archive/tar"
	"compress/gzip"
	"debug/macho"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/detour-project/detour/helper/config"
	"github.com/detour-project/detour/installer"
)

// The macOS archives, built here (darwin/amd64 and darwin/arm64 cross-
// compiled): the file list, real Mach-O binaries of the right CPU, manifests
// naming the installed path and a LaunchAgent that starts the agent at
// sign-in. What only a Mac can check (install.sh, launchd, the .pkg) is
// listed in installer/macos/README.md.
func TestMacOSArchives(t *testing.T) {
	if os.Getenv("DETOUR_TEST_PACKAGES") != "1" {
		t.Skip("builds the release archives: set DETOUR_TEST_PACKAGES=1 (scripts/test.sh does)")
	}
	dist := macosArchives(t)
	manifests := map[string]string{
		"chrome":   "Library/Google/Chrome/NativeMessagingHosts/org.detour.helper.json",
		"chromium": "Library/Application Support/Chromium/NativeMessagingHosts/org.detour.helper.json",
		"edge":     "Library/Microsoft/Edge/NativeMessagingHosts/org.detour.helper.json",
		"firefox":  "Library/Application Support/Mozilla/NativeMessagingHosts/org.detour.helper.json",
	}
	for arch, cpu := range map[string]macho.Cpu{"amd64": macho.CpuAmd64, "arm64": macho.CpuArm64} {
		t.Run(arch, func(t *testing.T) {
			name := "detour-" + newVer + "-darwin-" + arch
			files := readTarGz(t, filepath.Join(dist, name+".tar.gz"))
			var got []string
			for p := range files {
				got = append(got, p)
			}
			want := []string{"install.sh", "uninstall.sh", "README.md", "root/usr/local/bin/detour", "root/Library/LaunchAgents/org.detour.helper.plist"}
			for _, m := range manifests {
				want = append(want, "root/"+m)
			}
			for i := range want {
				want[i] = name + "/" + want[i]
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("archive holds\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			bin := files[name+"/root/usr/local/bin/detour"]
			f, err := macho.NewFile(strings.NewReader(string(bin.data)))
			if err != nil {
				t.Fatalf("detour is not a Mach-O binary: %v", err)
			}
			if f.Cpu != cpu || f.Type != macho.TypeExec {
				t.Errorf("detour is %v %v, want %v executable", f.Cpu, f.Type, cpu)
			}
			if libs, _ := f.ImportedLibraries(); slices.ContainsFunc(libs, func(l string) bool { return strings.Contains(l, "Cocoa") || strings.Contains(l, "AppKit") }) {
				t.Errorf("detour links %v: it must run without a desktop", libs)
			}
			for _, s := range []string{"install.sh", "uninstall.sh", "root/usr/local/bin/detour"} {
				if files[name+"/"+s].mode&0o111 == 0 {
					t.Errorf("%s is not executable", s)
				}
			}
			for browser, p := range manifests {
				m, err := installer.ParseManifest(files[name+"/root/"+p].data)
				if err == nil {
					err = m.Validate(browser)
				}
				if err != nil || m.Path != "/usr/local/bin/detour" {
					t.Errorf("%s: %s names %q (%v)", browser, p, m.Path, err)
				}
			}
			v, err := config.ParsePlist(files[name+"/root/Library/LaunchAgents/org.detour.helper.plist"].data)
			if err != nil {
				t.Fatal(err)
			}
			la := v.(map[string]any)
			for k, w := range map[string]any{
				"Label":                  "org.detour.helper",
				"ProgramArguments":       []any{"/usr/local/bin/detour", "agent"},
				"RunAtLoad":              true,
				"KeepAlive":              map[string]any{"SuccessfulExit": false},
				"LimitLoadToSessionType": "Aqua",
			} {
				if !reflect.DeepEqual(la[k], w) {
					t.Errorf("LaunchAgent %s = %#v, want %#v", k, la[k], w)
				}
			}
		})
	}
}

type tarFile struct {
	mode int64
	data []byte
}

func readTarGz(t *testing.T, path string) map[string]tarFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	out := map[string]tarFile{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s owned by %d:%d, want root", h.Name, h.Uid, h.Gid)
		}
		out[h.Name] = tarFile{mode: h.Mode, data: b}
	}
}

// install.sh and uninstall.sh from the archive, run on this machine with
// stand-ins for the macOS commands they call (BSD stat, launchctl, xattr,
// chown to wheel, pkgutil) and DETOUR_DESTROOT for /: every file lands with
// its mode, the agent is started for the person at the console, a second run
// (an upgrade) is clean, and uninstall leaves the machine as it was, the
// person's own files included. launchd itself is checked only on a Mac.
func TestMacOSInstallScripts(t *testing.T) {
	if os.Getenv("DETOUR_TEST_PACKAGES") != "1" {
		t.Skip("builds the release archives: set DETOUR_TEST_PACKAGES=1 (scripts/test.sh does)")
	}
	dist := macosArchives(t)
	name := "detour-" + newVer + "-darwin-arm64"
	unpacked := t.TempDir()
	files := readTarGz(t, filepath.Join(dist, name+".tar.gz"))
	for p, f := range files {
		dst := filepath.Join(unpacked, p)
		os.MkdirAll(filepath.Dir(dst), 0o755)
		if err := os.WriteFile(dst, f.data, os.FileMode(f.mode)); err != nil {
			t.Fatal(err)
		}
	}
	shims := t.TempDir()
	calls := filepath.Join(t.TempDir(), "calls")
	for cmd, body := range map[string]string{
		"id":        `if [ "$1" = -u ] && [ -n "${2:-}" ]; then echo 501; elif [ "$1" = -u ]; then echo 0; else exec /usr/bin/id "$@"; fi`,
		"stat":      `if [ "$1" = -f ] && [ "$2" = %Lp ]; then exec /usr/bin/stat -c %a "$3"; elif [ "$1" = -f ] && [ "$2" = %Su ]; then echo ann; else exec /usr/bin/stat "$@"; fi`,
		"chown":     `exit 0`,
		"xattr":     `exit 1`,
		"pkgutil":   `exit 1`,
		"launchctl": `echo "launchctl $*" >>"` + calls + `"`,
	} {
		if err := os.WriteFile(filepath.Join(shims, cmd), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dest := t.TempDir()
	// What a Mac has before Detour, and a person's own files.
	for _, d := range []string{"Library/Application Support", "Library/LaunchAgents", "usr/local", "Users/ann/Library/Application Support/Detour/State/reports"} {
		os.MkdirAll(filepath.Join(dest, d), 0o755)
	}
	os.WriteFile(filepath.Join(dest, "Users/ann/Library/Application Support/Detour/config.json"), []byte(`{"hub":"https://hub.example"}`), 0o600)
	os.WriteFile(filepath.Join(dest, "Users/ann/Library/Application Support/Detour/State/reports/1.json"), []byte(`{}`), 0o600)
	os.WriteFile(filepath.Join(dest, "Library/LaunchAgents/com.example.other.plist"), []byte(`<plist/>`), 0o644)
	before := tree(t, dest)
	env := []string{"DETOUR_DESTROOT=" + dest, "PATH=" + shims + ":" + os.Getenv("PATH")}
	sh := func(script string) {
		t.Helper()
		run(t, env, "sh", filepath.Join(unpacked, name, script))
	}
	sh("install.sh")
	sh("install.sh") // an upgrade over itself
	for p, f := range files {
		rel, ok := strings.CutPrefix(p, name+"/root/")
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dest, rel))
		fi, _ := os.Stat(filepath.Join(dest, rel))
		if err != nil || string(b) != string(f.data) || int64(fi.Mode().Perm()) != f.mode&0o777 {
			t.Errorf("/%s not installed as in the archive (%v)", rel, err)
		}
	}
	log, _ := os.ReadFile(calls)
	if !strings.Contains(string(log), "launchctl bootstrap gui/501 "+dest+"/Library/LaunchAgents/org.detour.helper.plist") {
		t.Errorf("the agent was not started for the person at the console:\n%s", log)
	}
	sh("uninstall.sh")
	if d := diff(before, tree(t, dest)); len(d) != 0 {
		t.Errorf("uninstall.sh left the Mac changed:\n%s", strings.Join(d, "\n"))
	}
	if !strings.Contains(string(mustRead(t, calls)), "launchctl bootout gui/501/org.detour.helper") {
		t.Errorf("uninstall did not stop the agent")
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	macosOnce sync.Once
	macosDist string
)

// macosArchives builds the macOS archives once for the tests.
func macosArchives(t *testing.T) string {
	t.Helper()
	macosOnce.Do(func() {
		d, err := os.MkdirTemp("", "detour-packages-")
		if err != nil {
			t.Fatal(err)
		}
		builtMu.Lock()
		built["macos"] = d
		builtMu.Unlock()
		run(t, []string{"VERSION=" + newVer, "DIST=" + d, "SOURCE_DATE_EPOCH=" + epoch},
			"bash", filepath.Join(repoRoot(t), "scripts/dist.d/macos.sh"))
		macosDist = d
	})
	if macosDist == "" {
		t.Fatal("the macOS archives did not build")
	}
	return macosDist
}
