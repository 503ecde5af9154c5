// Package packages tests the release packages for real: it builds the .deb
// and .rpm with scripts/dist.d/linux.sh, installs the .deb on this machine
// with dpkg, checks every file and manifest, runs the installed
// `/usr/bin/detour doctor`, upgrades from an older version, removes the
// package and checks that nothing of it is left while a person's settings
// and queued reports are untouched.
//
// It changes the machine, so it runs only when asked (DETOUR_TEST_PACKAGES=1,
// as scripts/test.sh does after the other Go tests), as root, on Debian with
// dpkg, and only when no detour package or file is there already.
package packages

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/detour-project/detour/installer"
)

const (
	binPath = "/usr/bin/detour"
	oldVer  = "9.9.8"
	newVer  = "9.9.9"
	epoch   = "1767225600" // 2026-01-01: any fixed time
)

// systemManifests are where the package must register the host, spelled out
// rather than taken from the table the packages are built from.
var systemManifests = map[string]string{
	"chrome":   "/etc/opt/chrome/native-messaging-hosts/org.detour.helper.json",
	"chromium": "/etc/chromium/native-messaging-hosts/org.detour.helper.json",
	"edge":     "/etc/opt/edge/native-messaging-hosts/org.detour.helper.json",
	"brave":    "/etc/opt/brave.com/brave/native-messaging-hosts/org.detour.helper.json",
	"vivaldi":  "/etc/opt/vivaldi/native-messaging-hosts/org.detour.helper.json",
	"firefox":  "/usr/lib/mozilla/native-messaging-hosts/org.detour.helper.json",
}

const autostart = "/etc/xdg/autostart/detour.desktop"

// watched are the folders the package writes into: their whole trees must be
// the same after removal as before installation.
var watched = []string{"/etc/opt", "/etc/chromium", "/usr/lib/mozilla", "/etc/xdg/autostart", "/var/lib/detour"}

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(filepath.Dir(wd))
}

func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// dpkg runs dpkg, waiting while another package tool holds its lock (an
// apt run elsewhere on the machine) rather than failing on it.
func dpkg(t *testing.T, env []string, args ...string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		cmd := exec.Command("dpkg", args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err == nil {
			return
		}
		if !strings.Contains(string(out), "lock") || time.Now().After(deadline) {
			t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		time.Sleep(2 * time.Second)
	}
}

// guard skips unless this machine may be changed, and says why not.
func guard(t *testing.T) {
	t.Helper()
	switch {
	case os.Getenv("DETOUR_TEST_PACKAGES") != "1":
		t.Skip("installs a package on this machine: set DETOUR_TEST_PACKAGES=1 (scripts/test.sh does, as root on Debian)")
	case os.Getuid() != 0:
		t.Skip("needs root to run dpkg")
	}
	if _, err := os.Stat("/etc/debian_version"); err != nil {
		t.Skip("not Debian")
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("no dpkg")
	}
	if out, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", "detour").Output(); strings.Contains(string(out), "installed") {
		t.Skip("a detour package is installed on this machine already: not touching it")
	}
	for _, p := range append([]string{binPath, "/usr/bin/detour-tray", autostart}, values(systemManifests)...) {
		if _, err := os.Lstat(p); err == nil {
			t.Skipf("%s exists already: not touching this machine", p)
		}
	}
}

func values(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// built holds the packages already built per version, shared by the tests
// (each build links three binaries: seconds on a loaded machine).
var (
	builtMu sync.Mutex
	built   = map[string]string{}
)

// TestMain removes the shared builds.
func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range built {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// build returns the packages for version, built once for all the tests.
func build(t *testing.T, version string) string {
	t.Helper()
	builtMu.Lock()
	defer builtMu.Unlock()
	if d, ok := built[version]; ok {
		return d
	}
	d, err := os.MkdirTemp("", "detour-packages-")
	if err != nil {
		t.Fatal(err)
	}
	built[version] = d
	buildInto(t, version, d)
	return d
}

// buildInto runs the dist part for version into dist.
func buildInto(t *testing.T, version, dist string) {
	t.Helper()
	run(t, []string{"VERSION=" + version, "DIST=" + dist, "SOURCE_DATE_EPOCH=" + epoch,
		"DETOUR_LINUX_ARCHES=amd64", "DETOUR_LINUX_PACKAGES=detour"},
		"bash", filepath.Join(repoRoot(t), "scripts/dist.d/linux.sh"))
}

// tree maps every path under the roots to its mode and content digest.
func tree(t *testing.T, roots ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) && p == root {
				return nil
			}
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
				s := sha256.Sum256(b)
				v += " " + hex.EncodeToString(s[:])
			}
			out[p] = v
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
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

// person makes a fake person's home with settings and queued reports where
// the helper keeps them, and returns the environment that points at it.
func person(t *testing.T) (home string, env []string) {
	home = t.TempDir()
	files := map[string]string{
		".config/detour/config.json":                    `{"hub":"https://hub.example.org","report_automatically":true}`,
		".local/state/detour/reports/0001-queued.json":  `{"service":"example","need":"video-call"}`,
		".local/state/detour/whitelist.json":            `{"payload":"","signatures":[]}`,
		".config/chromium/NativeMessagingHosts/x.json":  `{}`,
		".mozilla/native-messaging-hosts/other.json":    `{}`,
		".local/share/detour/kept-by-the-person.txt":    "mine",
		".config/autostart/someone-elses-entry.desktop": "[Desktop Entry]\n",
	}
	for p, s := range files {
		p = filepath.Join(home, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run := filepath.Join(t.TempDir(), "run")
	os.Mkdir(run, 0o700)
	return home, []string{"HOME=" + home, "DETOUR_HOME=", "XDG_CONFIG_HOME=", "XDG_STATE_HOME=", "XDG_DATA_HOME=",
		"XDG_RUNTIME_DIR=" + run, "DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/detour-package-test"}
}

func TestDebInstallUpgradeRemove(t *testing.T) {
	guard(t)
	older := build(t, oldVer)
	newer := build(t, newVer)
	deb := func(dist, v string) string { return filepath.Join(dist, "detour_"+v+"_amd64.deb") }

	// The same commit and time give the same bytes.
	again := t.TempDir()
	buildInto(t, newVer, again)
	for _, name := range []string{"detour_" + newVer + "_amd64.deb", "detour-" + newVer + ".x86_64.rpm"} {
		a, _ := os.ReadFile(filepath.Join(newer, name))
		b, _ := os.ReadFile(filepath.Join(again, name))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s: two builds differ (%d and %d bytes): not reproducible", name, len(a), len(b))
		}
	}

	// No maintainer scripts: nothing but dpkg's own bookkeeping may run.
	ctl := t.TempDir()
	run(t, nil, "dpkg-deb", "-e", deb(newer, newVer), ctl)
	ents, _ := os.ReadDir(ctl)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"control", "md5sums"}) {
		t.Errorf("control files %v, want only control and md5sums", names)
	}
	control, _ := os.ReadFile(filepath.Join(ctl, "control"))
	for _, dep := range []string{"libayatana-appindicator3-1", "libgtk-3-0"} {
		if !strings.Contains(string(control), dep) {
			t.Errorf("control does not depend on %s:\n%s", dep, control)
		}
	}

	before := tree(t, watched...)
	// dpkg takes away, with the package, every folder it listed that is then
	// empty and no other package lists: /etc/opt on a machine where nothing
	// else uses it. The one difference allowed, and only then.
	optMayGo := emptyUnowned("/etc/opt")
	optInfo, _ := os.Stat("/etc/opt")
	home, env := person(t)
	homeBefore := tree(t, home)
	t.Cleanup(func() {
		// Whatever happened, leave the machine as it was.
		exec.Command("dpkg", "--purge", "detour").Run()
		if optMayGo && os.Mkdir("/etc/opt", 0o755) == nil { // see optMayGo
			os.Chtimes("/etc/opt", optInfo.ModTime(), optInfo.ModTime())
		}
	})
	// Maintainer scripts run with the caller's HOME: point it at the person,
	// so a script that cleaned "~" would be caught.
	dpkg(t, env, "-i", deb(older, oldVer))
	checkInstalled(t, env, oldVer)
	dpkg(t, env, "-i", deb(newer, newVer))
	checkInstalled(t, env, newVer)
	if d := diff(homeBefore, tree(t, home)); len(d) != 0 {
		t.Errorf("install and upgrade changed the person's files:\n%s", strings.Join(d, "\n"))
	}

	dpkg(t, env, "-r", "detour")
	if out, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", "detour").Output(); strings.Contains(string(out), " installed") || strings.Contains(string(out), "config-files") {
		t.Errorf("after dpkg -r the package is %q: something (a conffile?) was kept", out)
	}
	for _, p := range append([]string{binPath, "/usr/bin/detour-tray", autostart}, values(systemManifests)...) {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s left after dpkg -r", p)
		}
	}
	d := diff(before, tree(t, watched...))
	if optMayGo {
		d = slices.DeleteFunc(d, func(s string) bool { return s == "removed /etc/opt" })
	}
	if len(d) != 0 {
		t.Errorf("dpkg -r left the system changed:\n%s", strings.Join(d, "\n"))
	}
	if d := diff(homeBefore, tree(t, home)); len(d) != 0 {
		t.Errorf("dpkg -r changed the person's files:\n%s", strings.Join(d, "\n"))
	}
}

// emptyUnowned says whether dir is an empty folder that no package owns.
func emptyUnowned(dir string) bool {
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 0 {
		return false
	}
	return exec.Command("dpkg", "-S", dir).Run() != nil
}

// checkInstalled checks the installed package's every file, then runs the
// installed doctor as the fake person.
func checkInstalled(t *testing.T, env []string, version string) {
	t.Helper()
	if got := run(t, nil, "dpkg-query", "-W", "-f=${Version}", "detour"); !strings.HasPrefix(got, version) {
		t.Fatalf("installed version %q, want %s", got, version)
	}
	var files []string
	sc := bufio.NewScanner(strings.NewReader(run(t, nil, "dpkg", "-L", "detour")))
	for sc.Scan() {
		p := sc.Text()
		if fi, err := os.Lstat(p); err != nil {
			t.Errorf("dpkg -L lists %s but it is not there: %v", p, err)
		} else if fi.Mode().IsRegular() {
			files = append(files, p)
		}
	}
	want := append([]string{binPath, "/usr/bin/detour-tray", autostart}, values(systemManifests)...)
	slices.Sort(files)
	slices.Sort(want)
	if !slices.Equal(files, want) {
		t.Errorf("package files:\n%s\nwant:\n%s", strings.Join(files, "\n"), strings.Join(want, "\n"))
	}
	for _, exe := range []string{binPath, "/usr/bin/detour-tray"} {
		if err := installer.CheckExecutable(exe); err != nil {
			t.Error(err)
		}
	}
	for browser, p := range systemManifests {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("%s: %v", browser, err)
			continue
		}
		m, err := installer.ParseManifest(b)
		if err == nil {
			err = m.Validate(browser)
		}
		if err != nil || m.Path != binPath {
			t.Errorf("%s: %s names %q (%v), want %s", browser, p, m.Path, err, binPath)
		}
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
			t.Errorf("%s is %v: every user's browser must read it", p, fi.Mode().Perm())
		}
	}
	desk, err := os.ReadFile(autostart)
	if err != nil || !strings.Contains(string(desk), "\nExec="+binPath+" agent\n") || !strings.Contains(string(desk), "Comment[cy]=") {
		t.Errorf("autostart entry %s (%v):\n%s", autostart, err, desk)
	}
	if got := strings.TrimSpace(run(t, nil, binPath, "version")); !strings.Contains(got, version) {
		t.Errorf("%s version says %q, want %s", binPath, got, version)
	}

	// The installed doctor, as the person: no agent runs, so it exits 1, but
	// the binary and every machine-wide manifest are in order.
	cmd := exec.Command(binPath, "doctor", "--json")
	cmd.Env = append(os.Environ(), env...)
	out, _ := cmd.Output()
	var doc struct {
		Checks []struct{ Name, Status, Detail string }
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, out)
	}
	seen := map[string]string{}
	for _, c := range doc.Checks {
		seen[c.Name] = c.Status + ": " + c.Detail
	}
	for name, w := range map[string]string{
		"binary":           "ok: " + binPath,
		"tray":             "ok: /usr/bin/detour-tray",
		"package":          "ok: installed by the dpkg package detour " + version,
		"start at sign-in": "ok: " + autostart + " (system)",
	} {
		if !strings.HasPrefix(seen[name], w) {
			t.Errorf("doctor %s: %q, want %q…", name, seen[name], w)
		}
	}
	if !strings.HasSuffix(seen["package"], ") name "+binPath) {
		t.Errorf("doctor package: %q: the entries should be the package's", seen["package"])
	}
	for browser, p := range systemManifests {
		if got := seen["manifest "+browser+" (system)"]; got != "ok: "+p {
			t.Errorf("doctor on %s: %q, want ok: %s", browser, got, p)
		}
	}
}

// The .rpm holds the same files, read back with rpm itself, and installs,
// upgrades and erases cleanly.
func TestRpmInstallUpgradeErase(t *testing.T) {
	if os.Getenv("DETOUR_TEST_PACKAGES") != "1" {
		t.Skip("builds the packages: set DETOUR_TEST_PACKAGES=1 (scripts/test.sh does)")
	}
	if _, err := exec.LookPath("rpm"); err != nil {
		t.Skip("no rpm (scripts/deps.sh installs it)")
	}
	dist := build(t, newVer)
	rpm := filepath.Join(dist, "detour-"+newVer+".x86_64.rpm")
	var files []string
	for _, l := range strings.Split(strings.TrimSpace(run(t, nil, "rpm", "-qp", "--qf", "[%{FILEMODES:perms} %{FILENAMES}\n]", rpm)), "\n") {
		perm, name, _ := strings.Cut(l, " ")
		if !strings.HasPrefix(perm, "d") {
			files = append(files, name)
		}
	}
	want := append([]string{binPath, "/usr/bin/detour-tray", autostart}, values(systemManifests)...)
	slices.Sort(files)
	slices.Sort(want)
	if !slices.Equal(files, want) {
		t.Errorf("rpm files:\n%s\nwant:\n%s", strings.Join(files, "\n"), strings.Join(want, "\n"))
	}
	reqs := run(t, nil, "rpm", "-qp", "--requires", rpm)
	for _, dep := range []string{"libayatana-appindicator-gtk3", "gtk3"} {
		if !strings.Contains(reqs, dep) {
			t.Errorf("rpm does not require %s:\n%s", dep, reqs)
		}
	}
	if v := run(t, nil, "rpm", "-qp", "--qf", "%{VERSION}", rpm); v != newVer {
		t.Errorf("rpm version %q, want %s", v, newVer)
	}
	if s := run(t, nil, "rpm", "-qp", "--scripts", rpm); strings.TrimSpace(s) != "" {
		t.Errorf("rpm has scripts:\n%s", s)
	}
	// Installed, upgraded and erased for real by rpm, into a private root
	// with its own database (Debian's rpm is not this machine's package
	// manager; --nodeps because that root has no GTK).
	older := build(t, oldVer)
	r := t.TempDir()
	rpmIn := func(args ...string) string { return run(t, nil, "rpm", append([]string{"--root", r}, args...)...) }
	rpmIn("--initdb")
	rpmIn("--nodeps", "-i", filepath.Join(older, "detour-"+oldVer+".x86_64.rpm"))
	rpmIn("--nodeps", "-U", rpm)
	if got := strings.TrimSpace(rpmIn("-q", "--qf", "%{VERSION}", "detour")); got != newVer {
		t.Errorf("after rpm -U the installed version is %q, want %s", got, newVer)
	}
	if got := strings.TrimSpace(rpmIn("-qf", binPath)); !strings.HasPrefix(got, "detour-"+newVer) {
		t.Errorf("rpm -qf %s: %q", binPath, got)
	}
	for _, f := range want {
		if _, err := os.Lstat(filepath.Join(r, f)); err != nil {
			t.Errorf("installed rpm lacks %s", f)
		}
	}
	rpmIn("-e", "detour")
	var left []string
	filepath.WalkDir(r, func(p string, d fs.DirEntry, err error) error {
		rel := strings.TrimPrefix(p, r)
		switch {
		case err != nil || rel == "":
		case d.IsDir() && (strings.HasPrefix(rel, "/var") || strings.HasPrefix(rel, "/root") || strings.Contains(rel, "/.rpmdb")):
			return filepath.SkipDir // rpm's own database
		case d.IsDir() && slices.Contains([]string{"/etc", "/etc/opt", "/etc/xdg", "/etc/xdg/autostart", "/usr", "/usr/bin", "/usr/lib"}, rel):
			// folders every system has; rpm made them here only because the root was empty
		default:
			left = append(left, rel)
		}
		return nil
	})
	if len(left) != 0 {
		t.Errorf("rpm -e left:\n%s", strings.Join(left, "\n"))
	}

	// The manifests inside name the installed binary.
	x := t.TempDir()
	cmd := exec.Command("sh", "-c", "rpm2cpio \"$1\" | cpio -idm --quiet --no-absolute-filenames", "sh", rpm)
	cmd.Dir = x
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rpm2cpio: %v\n%s", err, out)
	}
	for browser, p := range systemManifests {
		b, err := os.ReadFile(filepath.Join(x, p))
		if err != nil {
			t.Errorf("%s: %v", browser, err)
			continue
		}
		if m, err := installer.ParseManifest(b); err != nil || m.Path != binPath {
			t.Errorf("%s: %s names %q (%v)", browser, p, m.Path, err)
		}
	}
}
