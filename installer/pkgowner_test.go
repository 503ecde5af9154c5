package installer

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseDpkgSearch(t *testing.T) {
	for _, tc := range []struct {
		name, out, path, want string
	}{
		{"one package", "detour: /usr/bin/detour\n", "/usr/bin/detour", "detour"},
		{"arch qualified", "libc6:amd64: /usr/lib/x86_64-linux-gnu/libc.so.6\n", "/usr/lib/x86_64-linux-gnu/libc.so.6", "libc6"},
		{"several own a folder", "chromium, detour: /etc/chromium\n", "/etc/chromium", "chromium"},
		{"diversion first", "diversion by dash from: /bin/sh\ndiversion by dash to: /bin/sh.distrib\ndash: /bin/sh\n", "/bin/sh", "dash"},
		{"another path only", "detour: /usr/bin/detour-tray\n", "/usr/bin/detour", ""},
		{"nothing", "", "/usr/bin/detour", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseDpkgSearch(tc.out, tc.path)
			if got != tc.want || ok != (tc.want != "") {
				t.Fatalf("got %q %v, want %q", got, ok, tc.want)
			}
		})
	}
}

func TestParseRpmQuery(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want *Package
	}{
		{"detour\t1.2.3-1\n", &Package{Manager: "rpm", Name: "detour", Version: "1.2.3-1"}},
		{"file /usr/bin/detour is not owned by any package\n", nil},
		{"", nil},
	} {
		got := parseRpmQuery(tc.out)
		if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
			t.Errorf("%q: got %+v, want %+v", tc.out, got, tc.want)
		}
	}
}

func TestParsePkgutilFileInfo(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want *Package
	}{
		{"volume: /\npath: /usr/local/bin/detour\n\npkgid: org.detour.helper\npkg-version: 1.2.3\ninstall-time: 1700000000\nuid: 0\ngid: 0\nmode: 755\n",
			&Package{Manager: "pkgutil", Name: "org.detour.helper", Version: "1.2.3"}},
		{"volume: /\npath: /usr/local/bin/detour\n\npkgid: org.detour.helper\npkg-version: 1.2.4\n\npkgid: org.other\npkg-version: 9\n",
			&Package{Manager: "pkgutil", Name: "org.detour.helper", Version: "1.2.4"}},
		{"volume: /\npath: /usr/local/bin/detour\n", nil},
	} {
		got := parsePkgutilFileInfo(tc.out)
		if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
			t.Errorf("%q: got %+v, want %+v", tc.out, got, tc.want)
		}
	}
}

type fakeFinder struct {
	pkg *Package
	err error
}

func (f fakeFinder) Manager() string { return "fake" }
func (f fakeFinder) Find(context.Context, string) (*Package, error) {
	return f.pkg, f.err
}

func TestInstalledByAsksInOrder(t *testing.T) {
	p := &Package{Manager: "fake", Name: "detour", Version: "1"}
	broken := fakeFinder{err: errors.New("database locked")}
	got, err := InstalledBy(context.Background(), "/x", []PackageFinder{fakeFinder{}, broken, fakeFinder{pkg: p}})
	if err != nil || got != p {
		t.Fatalf("got %+v %v: a later database that knows the file wins over an earlier broken one", got, err)
	}
	got, err = InstalledBy(context.Background(), "/x", []PackageFinder{fakeFinder{}, broken})
	if got != nil || err == nil || !strings.Contains(err.Error(), "database locked") {
		t.Fatalf("got %+v %v, want the broken database's error", got, err)
	}
	if got, err := InstalledBy(context.Background(), "/x", nil); got != nil || err != nil {
		t.Fatalf("no databases: %+v %v", got, err)
	}
}

// The real dpkg database of this machine: dpkg owns its own binary, and a
// fresh file is nobody's.
func TestDpkgFindsRealOwner(t *testing.T) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("no dpkg on this machine")
	}
	want, err := exec.Command("dpkg-query", "--show", "--showformat=${Version}", "dpkg").Output()
	if err != nil {
		t.Skip("dpkg is not installed as a package here")
	}
	exe, err := exec.LookPath("dpkg")
	if err != nil {
		t.Fatal(err)
	}
	exe, _ = filepath.EvalSymlinks(exe)
	p, err := Dpkg.Find(context.Background(), exe)
	if err != nil || p == nil || p.Name != "dpkg" || p.Version != string(want) || p.Manager != "dpkg" {
		t.Fatalf("%s: got %+v %v, want the dpkg package %s", exe, p, err, want)
	}
	mine := filepath.Join(t.TempDir(), "detour")
	os.WriteFile(mine, []byte("x"), 0o755)
	for _, f := range []PackageFinder{Dpkg, Rpm} {
		if p, err := f.Find(context.Background(), mine); p != nil || err != nil {
			t.Errorf("%s: a fresh file is owned by %+v (%v)", f.Manager(), p, err)
		}
	}
	if p, err := InstalledBy(context.Background(), exe, PackageFinders); err != nil || p == nil || p.Name != "dpkg" {
		t.Errorf("InstalledBy(%s) on this platform: %+v %v", exe, p, err)
	}
}
