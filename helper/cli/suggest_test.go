package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/detour-project/detour/helper/agent"
	"github.com/detour-project/detour/helper/config"
	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/helper/whitelist"
	"github.com/detour-project/detour/shared/catalog"
	"github.com/detour-project/detour/shared/protocol"
	wl "github.com/detour-project/detour/shared/whitelist"
)

// suggestHome makes a DETOUR_HOME with a short path (the agent's socket must
// fit in sun_path), a config that pins key and names org, and no agent.
func suggestHome(t *testing.T, key ed25519.PrivateKey, hub, org string) paths.Dirs {
	t.Helper()
	d, err := os.MkdirTemp("", "ds")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	t.Setenv("DETOUR_HOME", d)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/detour-test-bus")
	dirs, err := paths.Default()
	if err != nil {
		t.Fatal(err)
	}
	if err := dirs.Ensure(); err != nil {
		t.Fatal(err)
	}
	st, err := config.Open(dirs.ConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(func(c *config.Config) error {
		c.Hub, c.Org = hub, org
		c.WhitelistKeys = []wl.PublicKey{wl.Export(key.Public().(ed25519.PublicKey))}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return dirs
}

func signedExample(t *testing.T, key ed25519.PrivateKey, version int64, issued time.Time) *wl.Envelope {
	t.Helper()
	d, err := catalog.ExampleDocument(version, issued, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	env, err := wl.Sign(d, key)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// writeCache stores a verified copy the way the agent does.
func writeCache(t *testing.T, dirs paths.Dirs, env *wl.Envelope) {
	t.Helper()
	st, _ := config.Open(dirs.ConfigFile())
	c := whitelist.New(whitelist.Options{CachePath: whitelist.CachePath(dirs), Settings: st.Get})
	if _, err := c.Accept(env, "", "test"); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, f func([]string, io.Writer, io.Writer) int, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := f(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestSuggestFromCacheWithoutAgent(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	dirs := suggestHome(t, key, "", "example-borough")
	writeCache(t, dirs, signedExample(t, key, 5, time.Now()))

	cases := []struct {
		name string
		args []string
		want []string // substrings of stdout, in order
		not  []string
	}{
		{"enrolled org, blocked with alternative", []string{"zoom.us"},
			[]string{"zoom.us is Zoom (video).", "Status at Example Borough Council: blocked.", "Approved by 3 organisations.",
				"1. Microsoft Teams — https://teams.microsoft.com/", "Example Borough Council recommends it instead of Zoom."},
			[]string{"Warning"}},
		{"a URL, flags after the host, another org", []string{"https://US02WEB.zoom.us/j/123?pwd=secret", "--org", "example-university"},
			[]string{"us02web.zoom.us is Zoom (video).", "Status at Example University: approved."}, []string{"secret", "/j/123"}},
		{"not in the catalog", []string{"intranet.example.org"},
			[]string{"intranet.example.org is not a service in the Detour catalog."}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := run(t, runSuggest, tc.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			rest := out
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("output lacks %q (in order):\n%s", w, out)
				}
				rest = rest[i+len(w):]
			}
			for _, n := range tc.not {
				if strings.Contains(out, n) {
					t.Errorf("output contains %q:\n%s", n, out)
				}
			}
		})
	}

	code, out, _ := run(t, runSuggest, "--json", "docs.google.com")
	var res protocol.SuggestResult
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
		t.Fatalf("--json: exit %d, %s", code, out)
	}
	if res.Service == nil || *res.Service != "google-docs" || res.Status != wl.Blocked || res.Alternatives[0].Service != "microsoft-365" || res.Stale {
		t.Errorf("--json result %+v", res)
	}
}

func TestSuggestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"a.example", "b.example"}, {"--bogus", "zoom.us"}} {
		if code, _, _ := run(t, runSuggest, args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	if code, _, errs := run(t, runSuggest, "zoom.us/path"); code != 1 || !strings.Contains(errs, "not a host name") {
		t.Errorf("a host with a path: exit %d %q", code, errs)
	}
}

// TestSuggestTamperedCache: the command line trusts the cache no more than
// the agent does; it falls back to the built-in catalog and says so.
func TestSuggestTamperedCache(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	dirs := suggestHome(t, key, "", "example-borough")
	writeCache(t, dirs, signedExample(t, key, 5, time.Now()))
	path := whitelist.CachePath(dirs)
	b, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.Replace(b, []byte(`"payload":"`), []byte(`"payload":"A`), 1), 0o600)

	code, out, errs := run(t, runSuggest, "zoom.us")
	if code != 0 || !strings.Contains(errs, "no verified whitelist") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	if !strings.Contains(out, "Status at example-borough: unknown.") || !strings.Contains(out, "Warning") {
		t.Errorf("output:\n%s", out)
	}
}

// TestSuggestAndSyncThroughAgent runs a real agent (in process, no tray)
// against a small hub, and the commands talk to it over its socket.
func TestSuggestAndSyncThroughAgent(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	var body atomic.Value
	setBody := func(v int64) {
		b, _ := json.Marshal(signedExample(t, key, v, time.Now()))
		body.Store(b)
	}
	setBody(1)
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/whitelist" {
			http.NotFound(w, r)
			return
		}
		w.Write(body.Load().([]byte))
	}))
	defer hub.Close()
	dirs := suggestHome(t, key, hub.URL, "example-health")

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- agent.Run(ctx, agent.Options{Dirs: dirs, NoTray: true, Ready: func() { close(ready) }})
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("agent: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("agent not ready")
	}

	code, out, errs := run(t, runSync, "--json")
	var so syncOutput
	if code != 0 || json.Unmarshal([]byte(out), &so) != nil || !so.Agent || so.Version == nil || *so.Version != 1 {
		t.Fatalf("sync: exit %d %s %s", code, out, errs)
	}
	code, out, errs = run(t, runSuggest, "miro.com")
	if code != 0 || !strings.Contains(out, "Status at Example Health Board: blocked.") ||
		!strings.Contains(out, "1. Microsoft Whiteboard") {
		t.Fatalf("suggest through the agent: exit %d\n%s%s", code, out, errs)
	}

	// Remove the cache file: the agent still answers from memory, so the
	// answer came from the agent and not from the file.
	os.Remove(whitelist.CachePath(dirs))
	setBody(2)
	code, out, _ = run(t, runSync)
	if code != 0 || !strings.Contains(out, "Whitelist updated to version 2.") {
		t.Fatalf("second sync: exit %d %q", code, out)
	}
	if _, err := os.Stat(filepath.Join(dirs.State, whitelist.CacheName)); err != nil {
		t.Errorf("the agent did not write the cache: %v", err)
	}
}

func TestSyncWithoutAgent(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	env := signedExample(t, key, 9, time.Now())
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(env)
	}))
	defer hub.Close()
	dirs := suggestHome(t, key, hub.URL, "")
	code, out, errs := run(t, runSync)
	if code != 0 || !strings.Contains(out, "version 9") {
		t.Fatalf("exit %d %q %q", code, out, errs)
	}
	if _, _, err := loadCache(dirs); err != nil {
		t.Errorf("cache after a direct sync: %v", err)
	}

	// Not enrolled: a clear error.
	suggestHome(t, key, "", "")
	if code, _, errs := run(t, runSync); code != 1 || !strings.Contains(errs, "detour enrol") {
		t.Errorf("sync without a hub: exit %d %q", code, errs)
	}
}

func TestPrintSuggestionNote(t *testing.T) {
	svc, org := "zoom", "example-borough"
	base := protocol.SuggestResult{Host: "zoom.us", Service: &svc, Org: &org, Status: wl.Blocked, Approvals: 2, Alternatives: []protocol.Alternative{}}
	cases := []struct {
		name, note string
		want       []string // lines that must appear
		not        []string // text that must not
	}{
		{"no note: no line", "", nil, []string{"IT team"}},
		{"a note", "Use Teams for meetings with other organisations; ask IT for a guest account.",
			[]string{"What your IT team says: Use Teams for meetings with other organisations; ask IT for a guest account.\n"}, nil},
		{"several lines are indented, markup printed as it is, escapes dropped",
			"Use Teams.\n<img src=x onerror=alert(1)>\x1b[2J\r",
			[]string{"What your IT team says: Use Teams.\n  <img src=x onerror=alert(1)>[2J\n"}, []string{"\x1b", "\r"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := base
			res.Note = tc.note
			var b bytes.Buffer
			printSuggestion(&b, res, nil)
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, b.String())
				}
			}
			for _, n := range tc.not {
				if strings.Contains(b.String(), n) {
					t.Errorf("output has %q:\n%s", n, b.String())
				}
			}
		})
	}
}
