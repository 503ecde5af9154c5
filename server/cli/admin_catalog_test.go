package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// adminRun runs `detour-server admin --data DIR args...` as the binary
// would: each call opens its own hub on the data folder.
func adminRun(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(append([]string{"admin", "--data", dir}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

func TestCatalogAdminCommands(t *testing.T) {
	dir := t.TempDir()
	version := func() int64 {
		out, errs, code := adminRun(t, dir, "whitelist", "show", "--json")
		if code != 0 {
			t.Fatalf("whitelist show: %d %s", code, errs)
		}
		var v struct {
			Version  int64 `json:"version"`
			Services int   `json:"services"`
			Keys     []struct {
				KeyID string `json:"key_id"`
			} `json:"keys"`
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil || v.Services < 60 || len(v.Keys) == 0 {
			t.Fatalf("whitelist show --json: %s %v", out, err)
		}
		return v.Version
	}
	v0 := version()

	steps := []struct {
		args     []string
		wantCode int
		wantOut  string // in stdout (success) or stderr (failure)
		bumps    bool
	}{
		{[]string{"org", "add", "north", "--name", "Northshire <Council>", "--sector", "local-government"}, 0, "added organisation north", true},
		{[]string{"org", "add", "north", "--name", "again"}, 1, "already exists", false},
		{[]string{"org", "add", "west"}, 1, "name is empty", false},
		{[]string{"policy", "set", "north", "zoom", "blocked", "--alternatives", "microsoft-teams, google-meet", "--note", "Use Teams; 'quotes' & <tags>"}, 0, "policy north/zoom set to blocked", true},
		{[]string{"policy", "set", "north", "zoom", "blocked", "--alternatives", "no-such-service"}, 1, `unknown alternative "no-such-service"`, false},
		{[]string{"policy", "set", "north", "zoom", "permitted"}, 1, `status "permitted"`, false},
		{[]string{"policy", "set", "north", "zoom"}, 1, "want 3 argument(s)", false},
		{[]string{"catalog", "import"}, 1, "want one FILE", false},
		{[]string{"catalog", "import", "--examples"}, 0, "imported 0 services", true},
	}
	v := v0
	for _, s := range steps {
		out, errs, code := adminRun(t, dir, s.args...)
		if code != s.wantCode {
			t.Fatalf("%q: exit %d, want %d\nstdout %s\nstderr %s", s.args, code, s.wantCode, out, errs)
		}
		text := out
		if code != 0 {
			text = errs
		}
		if !strings.Contains(text, s.wantOut) {
			t.Fatalf("%q: output %q, want %q", s.args, text, s.wantOut)
		}
		if s.bumps {
			v++
		}
		if got := version(); got != v {
			t.Fatalf("%q: version %d, want %d", s.args, got, v)
		}
	}

	// Export, then a bad import (a host already claimed) changes nothing,
	// and the export imports back cleanly.
	exported, errs, code := adminRun(t, dir, "catalog", "export")
	if code != 0 {
		t.Fatal(errs)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"services": [{"id": "copycat", "name": "Copycat", "vendor": "", "category": "video", "hosts": ["zoom.us"], "url": "https://copy.example/", "features": []}]}`), 0o600)
	if _, errs, code := adminRun(t, dir, "catalog", "import", bad); code != 1 || !strings.Contains(errs, `host "zoom.us" is claimed by both`) {
		t.Fatalf("duplicate host import: exit %d, %s", code, errs)
	}
	again, _, _ := adminRun(t, dir, "catalog", "export")
	if again != exported {
		t.Fatal("a refused import changed the catalog")
	}
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(exported), 0o600)
	if out, errs, code := adminRun(t, dir, "catalog", "import", good, "--json"); code != 0 || !strings.Contains(out, `"version"`) {
		t.Fatalf("re-import of the export: %d %s %s", code, out, errs)
	}
	if !strings.Contains(exported, `Use Teams; 'quotes' & <tags>`) {
		t.Fatal("the note did not come back unescaped in the export")
	}

	// Key rotation: two keys listed, the new one first.
	out, errs, code := adminRun(t, dir, "key", "rotate", "--grace", "1h", "--json")
	if code != 0 {
		t.Fatal(errs)
	}
	var keys []struct {
		KeyID       string `json:"key_id"`
		Primary     bool   `json:"primary"`
		RetireAfter string `json:"retire_after"`
	}
	if err := json.Unmarshal([]byte(out), &keys); err != nil || len(keys) != 2 || !keys[0].Primary || keys[1].RetireAfter == "" {
		t.Fatalf("key rotate --json: %s %v", out, err)
	}
	if out, _, _ := adminRun(t, dir, "whitelist", "show"); !strings.Contains(out, "retiring") || !strings.Contains(out, keys[0].KeyID+" (primary)") {
		t.Fatalf("whitelist show after rotation:\n%s", out)
	}
}
