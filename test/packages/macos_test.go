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
	dist := t.TempDir()
	run(t, []string{"VERSION=" + newVer, "DIST=" + dist, "SOURCE_DATE_EPOCH=" + epoch},
		"bash", filepath.Join(repoRoot(t), "scripts/dist.d/macos.sh"))
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
