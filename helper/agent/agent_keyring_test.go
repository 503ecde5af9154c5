package agent

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/detour-project/detour/helper/config"
	"github.com/detour-project/detour/helper/keyring"
	"github.com/detour-project/detour/helper/localapi"
	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/helper/reports"
	"github.com/detour-project/detour/server/reports/reportstest"
	"github.com/detour-project/detour/shared/protocol"
)

// slowKeyring opens a file store after delay, as a locked or slow Secret
// Service would make keyring.Open wait; opened closes when it returns.
func slowKeyring(delay time.Duration, opened chan<- struct{}) func(paths.Dirs) (keyring.Store, error) {
	return func(d paths.Dirs) (keyring.Store, error) {
		time.Sleep(delay)
		close(opened)
		return keyring.NewFileStore(filepath.Join(d.State, keyring.FileName)), nil
	}
}

// dialSoon connects as soon as the agent's socket accepts, as a relay
// started with the agent does.
func dialSoon(t *testing.T, dirs paths.Dirs, within time.Duration) *localapi.Client {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c, err := localapi.Dial(context.Background(), dirs)
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent's socket did not accept within %s: %v", within, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSlowKeyringDoesNotDelayHello: with a keyring that takes 3 s to open,
// the first hello (and status and settings) is answered well within the
// browser's patience; a report sent meanwhile waits for the keyring rather
// than failing, and an enrolment, which keeps its credential in the
// keyring, works once the keyring is open.
func TestSlowKeyringDoesNotDelayHello(t *testing.T) {
	const keyringDelay = 3 * time.Second
	t.Setenv(ReportDelayEnv, "0")
	t.Setenv(ManagedRootEnv, t.TempDir()) // no managed policy
	h := reportstest.Start(t, "")
	svc, err := h.OpenReports(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	enrolCode, _, err := svc.CreateCode(context.Background(), "org-a")
	if err != nil {
		t.Fatal(err)
	}

	dirs := testDirs(t)
	opened := make(chan struct{})
	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		done <- Run(ctx, Options{Dirs: dirs, NoTray: true, Log: quiet,
			openKeyring: slowKeyring(keyringDelay, opened), Ready: func() { close(ready) }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent stopped with %v", err)
		}
	})

	c := dialSoon(t, dirs, time.Second)
	call := func(typ string, params, out any) error {
		cctx, ccancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer ccancel()
		return c.Call(cctx, typ, params, out)
	}
	var hello protocol.HelloResult
	if err := call("hello", map[string]any{"version": protocol.Version, "browser": "chrome"}, &hello); err != nil {
		t.Fatalf("hello: %v", err)
	}
	if took := time.Since(start); took >= time.Second {
		t.Fatalf("the first hello took %s from the agent's start, want under 1 s", took)
	}
	for _, typ := range reportsTypes {
		if !slices.Contains(hello.Capabilities, typ) {
			t.Errorf("hello's capabilities %v lack %q while the keyring opens", hello.Capabilities, typ)
		}
	}
	var st protocol.StatusResult
	if err := call("status", nil, &st); err != nil || st.Enrolled {
		t.Fatalf("status: %v, enrolled %v", err, st.Enrolled)
	}
	var set protocol.Settings
	if err := call("settings", nil, &set); err != nil {
		t.Fatalf("settings: %v", err)
	}
	select {
	case <-opened:
		t.Fatalf("the keyring opened before hello, status and settings were answered (%s); the test proves nothing", time.Since(start))
	default:
	}
	if took := time.Since(start); took >= time.Second {
		t.Fatalf("hello, status and settings took %s, want under 1 s", took)
	}

	// A report made now reaches the reports subsystem once the keyring is
	// open: "not enrolled", not "unknown type" or a timeout.
	err = call("report", map[string]any{"host": "docs.google.com", "need": "meeting"}, nil)
	if code(err) != protocol.CodeNotEnrolled {
		t.Fatalf("report while the keyring opened: %v, want code %d", err, protocol.CodeNotEnrolled)
	}
	select {
	case <-opened:
	default:
		t.Fatal("the report was answered before the keyring opened")
	}

	var enrolled map[string]any
	if err := call("enrol", map[string]any{"hub": h.URL, "code": enrolCode}, &enrolled); err != nil {
		t.Fatalf("enrol once the keyring is open: %v", err)
	}
	if err := call("status", nil, &st); err != nil || !st.Enrolled {
		t.Fatalf("status after enrolment: %v, enrolled %v", err, st.Enrolled)
	}
	cred, err := keyring.NewFileStore(filepath.Join(dirs.State, keyring.FileName)).Get(reports.CredentialKey)
	if err != nil || cred == "" {
		t.Fatalf("the credential is not in the keyring: %v", err)
	}
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		t.Fatal("Ready was not called once every subsystem was set up")
	}
}

// TestReportsTypes: the types the agent lists before reports is set up are
// the ones setupReports registers, so hello's capabilities do not change
// once the keyring opens.
func TestReportsTypes(t *testing.T) {
	t.Setenv(ManagedRootEnv, t.TempDir())
	dirs := testDirs(t)
	if err := dirs.Ensure(); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Open(dirs.ConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	env := &Env{Dirs: dirs, Config: cfg, Secrets: keyring.NewFileStore(filepath.Join(dirs.State, keyring.FileName)), Log: quiet, Reg: NewRegistry(nil)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := setupReports(ctx, env); err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(reportsTypes))
	if got := env.Reg.Types(); !slices.Equal(got, want) {
		t.Fatalf("setupReports registers %v; reportsTypes says %v", got, want)
	}
}

// TestBackgroundSetupFails: when the background setup fails, its request
// types are withdrawn and answer "unknown type", as for any subsystem that
// cannot start; a request that was waiting gets the same answer.
func TestBackgroundSetupFails(t *testing.T) {
	env := &Env{Log: quiet, Reg: NewRegistry(nil)}
	release := make(chan struct{})
	done := setupInBackground(context.Background(), env, "reports", []string{"report"}, func(ctx context.Context, env *Env) error {
		<-release
		return context.DeadlineExceeded
	})
	if !slices.Contains(env.Reg.Types(), "report") {
		t.Fatal("report not listed while its setup runs")
	}
	waited := make(chan error, 1)
	go func() {
		_, err := env.Reg.Dispatch(context.Background(), protocol.Request{ID: 1, Type: "report"})
		waited <- err
	}()
	close(release)
	<-done
	if err := <-waited; code(err) != protocol.CodeUnknownType {
		t.Fatalf("a waiting request after the setup failed: %v", err)
	}
	if slices.Contains(env.Reg.Types(), "report") {
		t.Fatal("report still listed after its setup failed")
	}
}
