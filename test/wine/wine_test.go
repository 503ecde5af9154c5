// Package wine tests the Windows build under Wine (Debian's wine64) in a
// throwaway prefix: the MSI that `make dist` builds is installed with
// msiexec, the registry is read back, a hello frame goes through the
// installed detour.exe (the relay, as Chrome starts it) to the agent over
// the named pipe, the device enrols with a real hub on loopback and queues a
// report, and msiexec /x leaves no key or file behind.
//
// It runs when DETOUR_TEST_WINE=1 (scripts/test.sh sets it); it needs wine64,
// wixl and x86_64-w64-mingw32-gcc (scripts/deps.sh installs them). Wine is
// not Windows: what this cannot show is listed in installer/windows/README.md.
package wine

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/detour-project/detour/server/reports/reportstest"
	"github.com/detour-project/detour/shared/ids"
)

const installed = `C:\Program Files\Detour\detour.exe`

type prefix struct {
	t    *testing.T
	dir  string
	wine string
	env  []string
}

func repoRoot(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

// run runs a program under Wine and returns its output; every call is
// bounded, since a Wine process that waits for something never ends.
func (p *prefix) run(stdin io.Reader, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.wine, args...)
	cmd.Env = p.env
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%v: timed out after %s", args, timeout)
	}
	if err != nil {
		return out.String() + errb.String(), err
	}
	return out.String(), nil
}

func (p *prefix) must(timeout time.Duration, args ...string) string {
	p.t.Helper()
	out, err := p.run(nil, timeout, args...)
	if err != nil {
		p.t.Fatalf("wine %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// regValue reads one value with `reg query`; ok is false when the key or
// value is not there.
func (p *prefix) regValue(key, name string) (string, bool) {
	args := []string{"reg", "query", key}
	if name == "" {
		args = append(args, "/ve")
	} else {
		args = append(args, "/v", name)
	}
	out, err := p.run(nil, time.Minute, args...)
	if err != nil {
		return "", false
	}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && strings.HasPrefix(f[1], "REG_") {
			i := strings.Index(l, f[1]) + len(f[1])
			return strings.TrimSpace(l[i:]), true
		}
	}
	return "", false
}

// products lists the DisplayVersion of every installed product named Detour
// (Wine's reg has no /f, so the Uninstall keys are read whole).
func (p *prefix) products() []string {
	out, _ := p.run(nil, time.Minute, "reg", "query", `HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall`, "/s")
	var versions []string
	for _, block := range strings.Split(out, "\nHKEY_") {
		if !regexp.MustCompile(`DisplayName\s+REG_SZ\s+Detour\s*\n`).MatchString(block + "\n") {
			continue
		}
		m := regexp.MustCompile(`DisplayVersion\s+REG_SZ\s+(\S+)`).FindStringSubmatch(block)
		if m == nil {
			versions = append(versions, "?")
		} else {
			versions = append(versions, m[1])
		}
	}
	return versions
}

// wineUser is the Windows user name Wine gives the Unix user.
func wineUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "root"
}

// unixPath maps C:\… to the prefix's drive_c.
func (p *prefix) unixPath(win string) string {
	rest, ok := strings.CutPrefix(win, `C:\`)
	if !ok {
		p.t.Fatalf("%q is not on drive C:", win)
	}
	return filepath.Join(p.dir, "drive_c", filepath.FromSlash(strings.ReplaceAll(rest, `\`, "/")))
}

// detourProcesses lists this prefix's running processes started from the
// installed detour.exe or detour-tray.exe (Wine shows each Windows program's
// command line in /proc), so a test can see what an install or removal left
// running.
func (p *prefix) detourProcesses() []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, proc := range procs {
		cmd, err := os.ReadFile(filepath.Join(proc, "cmdline"))
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join(proc, "environ"))
		if err != nil || !bytes.Contains(env, []byte("WINEPREFIX="+p.dir+"\x00")) {
			continue
		}
		line := strings.ReplaceAll(string(cmd), "\x00", " ")
		if l := strings.ToLower(line); strings.Contains(l, `detour\detour`) || strings.Contains(l, "detour/detour") {
			out = append(out, filepath.Base(proc)+": "+line)
		}
	}
	return out
}

// stillRunning waits up to 10 s for the installed programs to exit (a
// terminated process takes a moment to go) and returns any left.
func (p *prefix) stillRunning() []string {
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := p.detourProcesses()
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// msiLog reads an msiexec /l*v log, which may be UTF-16.
func msiLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("msiexec log: %v", err)
	}
	if len(b) >= 2 && b[0] == 0xff && b[1] == 0xfe {
		b = b[2:]
	}
	if bytes.Count(b, []byte{0}) > len(b)/3 {
		b = bytes.ReplaceAll(b, []byte{0}, nil)
	}
	return string(b)
}

func frame(b []byte) []byte {
	out := binary.LittleEndian.AppendUint32(nil, uint32(len(b)))
	return append(out, b...)
}

// buildMSI runs scripts/dist.d/windows.sh for version, with env added.
func buildMSI(t *testing.T, root, dist, version string, env ...string) string {
	t.Helper()
	build := exec.Command("bash", "scripts/dist.d/windows.sh")
	build.Dir = root
	build.Env = append(append(os.Environ(), "DIST="+dist, "VERSION="+version, "SOURCE_DATE_EPOCH=1700000000", "SIGN_CERT=", "SIGN_KEY="), env...)
	out, err := build.CombinedOutput()
	if err != nil {
		t.Fatalf("windows.sh %s: %v\n%s", version, err, out)
	}
	msi := filepath.Join(dist, "detour-"+version+"-windows-amd64.msi")
	if _, err := os.Stat(msi); err != nil {
		t.Fatal(err)
	}
	signed := strings.Contains(string(out), "(signed with")
	if unsigned := strings.Contains(string(out), "UNSIGNED"); signed == unsigned {
		t.Fatalf("windows.sh %s says neither signed nor unsigned plainly:\n%s", version, out)
	}
	return msi
}

// throwawayCert writes a self-signed code-signing certificate and its key.
func throwawayCert(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Detour test signing (throwaway)"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), 0o600)
	return cert, key
}

// verifySigned checks an Authenticode signature made with cert.
func verifySigned(t *testing.T, file, cert string) {
	t.Helper()
	out, err := exec.Command("osslsigncode", "verify", "-CAfile", cert, "-in", file).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Signature verification: ok") {
		t.Fatalf("%s is not signed as it should be: %v\n%s", filepath.Base(file), err, out)
	}
}

type helloReply struct {
	ID     int64  `json:"id"`
	Type   string `json:"type"`
	OK     bool   `json:"ok"`
	Result struct {
		Version      string   `json:"version"`
		Capabilities []string `json:"capabilities"`
		Hub          *string  `json:"hub"`
		Enrolled     bool     `json:"enrolled"`
	} `json:"result"`
}

// hello writes a hello frame to the installed detour.exe, started as Chrome
// starts a host on Windows, and returns the reply.
func (p *prefix) hello() helloReply {
	p.t.Helper()
	h, err := p.tryHello()
	if err != nil {
		p.t.Fatal(err)
	}
	return h
}

func (p *prefix) tryHello() (helloReply, error) {
	var hello helloReply
	in, w := io.Pipe()
	go func() {
		w.Write(frame([]byte(`{"id":1,"type":"hello","version":1,"browser":"chrome"}`)))
		time.Sleep(20 * time.Second) // the relay exits when stdin closes
		w.Close()
	}()
	relay := exec.Command(p.wine, installed, ids.ChromeOrigin(ids.ChromeExtensionID), "--parent-window=0")
	relay.Env = p.env
	relay.Stdin = in
	stdout, err := relay.StdoutPipe()
	if err != nil {
		return hello, err
	}
	if err := relay.Start(); err != nil {
		return hello, err
	}
	defer func() { w.Close(); relay.Process.Kill(); relay.Wait() }()
	reply := make(chan []byte, 1)
	go func() {
		var n uint32
		if binary.Read(stdout, binary.LittleEndian, &n) != nil || n > 1<<20 {
			reply <- nil
			return
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(stdout, b); err != nil {
			reply <- nil
			return
		}
		reply <- b
	}()
	select {
	case b := <-reply:
		if err := json.Unmarshal(b, &hello); err != nil || !hello.OK || hello.ID != 1 || hello.Type != "hello" {
			return hello, fmt.Errorf("hello reply %s: %v", b, err)
		}
	case <-time.After(2 * time.Minute):
		return hello, fmt.Errorf("no hello reply through detour.exe within 2 minutes")
	}
	return hello, nil
}

func TestMSIUnderWine(t *testing.T) {
	if os.Getenv("DETOUR_TEST_WINE") == "" {
		t.Skip("set DETOUR_TEST_WINE=1 to run the Windows build under Wine (make test does)")
	}
	root := repoRoot(t)
	tmp, err := os.MkdirTemp("", "detour-wine") // not t.TempDir: wineserver may hold files a moment
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })

	// The MSI, exactly as make dist builds it: an unsigned 0.1.0 and a signed
	// 0.1.1 that upgrades it in place.
	dist := filepath.Join(tmp, "dist")
	msi := buildMSI(t, root, dist, "0.1.0-wine")
	cert, key := throwawayCert(t, tmp)
	msi2 := buildMSI(t, root, dist, "0.1.1-wine", "SIGN_CERT="+cert, "SIGN_KEY="+key)
	verifySigned(t, msi2, cert)

	// A throwaway prefix with the ProcessPrng shim.
	setup := exec.Command("bash", "-c", `. test/wine/prefix.sh && wine_setup "$1" && echo "WINE=$WINE"`, "-", tmp)
	setup.Dir = root
	out, err := setup.CombinedOutput()
	if err != nil {
		t.Fatalf("wine prefix: %v\n%s", err, out)
	}
	p := &prefix{t: t, dir: filepath.Join(tmp, "prefix")}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "WINE="); ok {
			p.wine = strings.TrimSpace(v)
		}
	}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "DETOUR_") && !strings.HasPrefix(e, "WINE") && !strings.HasPrefix(e, "DISPLAY=") {
			p.env = append(p.env, e)
		}
	}
	// The agent's diagnosis stays on loopback; reports go out at once.
	p.env = append(p.env, "WINEPREFIX="+p.dir, "WINEDEBUG=-all", "WINEDLLOVERRIDES=mscoree,mshtml=",
		"DETOUR_PROBE_LOOPBACK_ONLY=1", "DETOUR_PROBE_DNS=127.0.0.1:9", "DETOUR_REPORT_DELAY=0")
	killAll := func() {
		k := exec.Command(filepath.Join(filepath.Dir(p.wine), "wineserver"), "-k")
		k.Env = p.env
		k.Run()
	}
	t.Cleanup(killAll)

	// A real hub on loopback, and an enrolment code for the organisation.
	hub := reportstest.Start(t, "")
	svc, err := hub.OpenReports(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	code, _, err := svc.CreateCode(context.Background(), "org-a")
	if err != nil {
		t.Fatal(err)
	}

	// Install, unattended, with the organisation's policy.
	winPath := func(p string) string { return `Z:` + strings.ReplaceAll(p, "/", `\`) }
	winMSI := winPath(msi)
	p.must(3*time.Minute, "msiexec", "/i", winMSI, "/qn", "HUB="+hub.URL, "ORG=org-a", "PROMPTS=0")

	keys := map[string]string{
		"chrome":  `HKLM\Software\Google\Chrome\NativeMessagingHosts\` + ids.NativeHost,
		"edge":    `HKLM\Software\Microsoft\Edge\NativeMessagingHosts\` + ids.NativeHost,
		"firefox": `HKLM\Software\Mozilla\NativeMessagingHosts\` + ids.NativeHost,
	}
	for browser, key := range keys {
		v, ok := p.regValue(key, "")
		if !ok {
			t.Fatalf("%s: no key %s after install", browser, key)
		}
		b, err := os.ReadFile(p.unixPath(v))
		if err != nil {
			t.Fatalf("%s: the key names %s: %v", browser, v, err)
		}
		var m struct {
			Path              string   `json:"path"`
			AllowedOrigins    []string `json:"allowed_origins"`
			AllowedExtensions []string `json:"allowed_extensions"`
		}
		// detour.exe relative to the manifest, which the browsers allow on
		// Windows, so the manifests follow INSTALLDIR.
		if err := json.Unmarshal(b, &m); err != nil || m.Path != "detour.exe" {
			t.Fatalf("%s: manifest %s names %q (%v), want detour.exe beside it", browser, v, m.Path, err)
		}
		if beside := filepath.Join(filepath.Dir(p.unixPath(v)), m.Path); beside != p.unixPath(installed) {
			t.Fatalf("%s: manifest %s names %s, want %s", browser, v, beside, installed)
		}
		if browser == "firefox" && (len(m.AllowedExtensions) != 1 || m.AllowedExtensions[0] != ids.FirefoxExtensionID) {
			t.Fatalf("firefox manifest allows %v", m.AllowedExtensions)
		}
	}
	if v, ok := p.regValue(`HKLM\SOFTWARE\Policies\Detour`, "hub"); !ok || v != hub.URL {
		t.Fatalf("policy hub = %q (%v), want %s", v, ok, hub.URL)
	}
	if v, ok := p.regValue(`HKLM\SOFTWARE\Policies\Detour`, "prompts"); !ok || v != "0x0" {
		t.Fatalf("policy prompts = %q (%v), want REG_DWORD 0", v, ok)
	}
	if _, ok := p.regValue(`HKLM\SOFTWARE\Policies\Detour`, "report_automatically"); ok {
		t.Fatal("report_automatically written although REPORT_AUTOMATICALLY was not given")
	}
	if v, ok := p.regValue(`HKLM\Software\Microsoft\Windows\CurrentVersion\Run`, "Detour"); !ok || !strings.Contains(v, "detour-tray.exe") {
		t.Fatalf("sign-in entry = %q (%v)", v, ok)
	}

	// hello through the relay, started as Chrome starts it on Windows. The
	// relay starts the agent (detached) when none answers.
	h := p.hello()
	if h.Result.Version != "0.1.0-wine" {
		t.Fatalf("hello from %s, want 0.1.0-wine", h.Result.Version)
	}
	if h.Result.Hub == nil || *h.Result.Hub != hub.URL {
		t.Fatalf("the agent's hub is %v, want the policy's %s", h.Result.Hub, hub.URL)
	}

	// Enrol: the credential goes to Credential Manager, the config under
	// %LOCALAPPDATA%\Detour.
	if out, err := p.run(nil, 2*time.Minute, installed, "enrol", "--hub", hub.URL, "--code", code, "--json"); err != nil || !strings.Contains(out, `"org-a"`) {
		t.Fatalf("enrol: %v\n%s", err, out)
	}

	// Major upgrade to the signed 0.1.1, in place, with the 0.1.0 agent
	// still running: the MSI stops it (taskkill before InstallValidate), or
	// it would go on answering every browser with the old version below; the
	// person's enrolment stays.
	if running := p.detourProcesses(); len(running) == 0 {
		t.Fatal("no detour.exe is running before the upgrade: the test would prove nothing")
	}
	upgradeLog := filepath.Join(tmp, "upgrade.log")
	p.must(3*time.Minute, "msiexec", "/i", winPath(msi2), "/qn", "/l*v", winPath(upgradeLog), "HUB="+hub.URL, "ORG=org-a", "PROMPTS=0")
	if running := p.stillRunning(); len(running) > 0 {
		t.Fatalf("the upgrade left the old detour.exe running: %v", running)
	}
	// The log shows the MSI's StopDetour action ran. Without it this very
	// upgrade fails under Wine (msiexec exits 194 with the agent running);
	// Windows Installer would instead ask for a reboot and leave the old
	// agent serving the browsers until then.
	msiLogged := msiLog(t, upgradeLog)
	if !regexp.MustCompile(`(?i)(doing action|action start)[^\n]*StopDetour`).MatchString(msiLogged) {
		var near []string
		for _, l := range strings.Split(msiLogged, "\n") {
			if strings.Contains(l, "StopDetour") || strings.Contains(l, "taskkill") {
				near = append(near, l)
			}
		}
		t.Fatalf("the upgrade's log does not show the StopDetour action running; its lines naming it:\n%s", strings.Join(near, "\n"))
	}
	products := p.products()
	if n := len(products); n != 1 || !strings.HasPrefix(products[0], "0.1.1") {
		t.Fatalf("after the upgrade %d Detour products are registered, want one, 0.1.1:\n%s", n, products)
	}
	installedExe, err := os.ReadFile(p.unixPath(installed))
	if err != nil {
		t.Fatal(err)
	}
	signedExe := filepath.Join(tmp, "installed-detour.exe")
	os.WriteFile(signedExe, installedExe, 0o644)
	verifySigned(t, signedExe, cert)
	// Three browsers start relays at the same moment with no agent running:
	// each gets its reply, and exactly one agent starts.
	replies := make(chan error, 3)
	for i := 0; i < 3; i++ {
		go func() {
			h, err := p.tryHello()
			if err == nil && h.Result.Version != "0.1.1-wine" {
				err = fmt.Errorf("after the upgrade: hello from %s, want 0.1.1-wine", h.Result.Version)
			}
			replies <- err
		}()
	}
	for i := 0; i < 3; i++ {
		if err := <-replies; err != nil {
			t.Fatal(err)
		}
	}
	agentLog := filepath.Join(p.dir, "drive_c", "users", wineUser(), "AppData", "Local", "Detour", "state", "agent.log")
	logged, err := os.ReadFile(agentLog)
	if err != nil {
		t.Fatalf("the agent's log is not under %%LOCALAPPDATA%%\\Detour: %v", err)
	}
	if n := strings.Count(string(logged), `msg="agent listening"`); n != 2 {
		t.Fatalf("%d agents listened (one before the upgrade, one for the three relays after it, want 2):\n%s", n, logged)
	}
	// The person's data stayed: the report below needs the device
	// credential that the enrolment before the upgrade stored.

	// Queue a report; the agent sends it to the hub.
	out2, err := p.run(nil, 2*time.Minute, installed, "report", "docs.google.com", "--need", "meeting", "--json")
	if err != nil || !strings.Contains(out2, `"state"`) {
		t.Fatalf("report: %v\n%s", err, out2)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var n int
		hub.DB.QueryRowContext(context.Background(), `SELECT COALESCE(SUM(n), 0) FROM report_counts WHERE org = 'org-a'`).Scan(&n)
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hub counted %d reports, want 1 (report said %s)", n, out2)
		}
		time.Sleep(200 * time.Millisecond)
	}
	doctor, _ := p.run(nil, 2*time.Minute, installed, "doctor")
	for _, want := range []string{"manifest chrome (system)", "credential-manager", "HKLM\\SOFTWARE\\Policies\\Detour: hub " + hub.URL} {
		if !strings.Contains(doctor, want) {
			t.Errorf("doctor does not say %q:\n%s", want, doctor)
		}
	}

	// Uninstall with the agent running: the MSI stops it, then nothing the
	// MSI wrote is left.
	if running := p.detourProcesses(); len(running) == 0 {
		t.Fatal("no detour.exe is running before the uninstall")
	}
	p.must(3*time.Minute, "msiexec", "/x", winPath(msi2), "/qn")
	if running := p.stillRunning(); len(running) > 0 {
		t.Errorf("the uninstall left detour.exe running: %v", running)
	}
	if products := p.products(); len(products) > 0 {
		t.Errorf("a Detour product is still registered after uninstall:\n%s", products)
	}
	for browser, key := range keys {
		if _, ok := p.regValue(key, ""); ok {
			t.Errorf("%s: %s still there after uninstall", browser, key)
		}
	}
	for _, k := range []string{`HKLM\SOFTWARE\Policies\Detour`} {
		if out, err := p.run(nil, time.Minute, "reg", "query", k); err == nil && strings.Contains(out, "REG_") {
			t.Errorf("%s still holds values after uninstall:\n%s", k, out)
		}
	}
	if _, ok := p.regValue(`HKLM\Software\Microsoft\Windows\CurrentVersion\Run`, "Detour"); ok {
		t.Error("the sign-in entry is still there after uninstall")
	}
	if _, err := os.Stat(p.unixPath(`C:\Program Files\Detour`)); !os.IsNotExist(err) {
		left, _ := os.ReadDir(p.unixPath(`C:\Program Files\Detour`))
		t.Errorf("Program Files\\Detour still there after uninstall (%v): %v", err, left)
	}
}
