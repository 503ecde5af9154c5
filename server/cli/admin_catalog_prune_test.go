package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCatalogImportPrune: --dry-run says what --prune would remove and
// changes nothing; --prune then removes it in one version.
func TestCatalogImportPrune(t *testing.T) {
	dir := t.TempDir()
	out, errs, code := adminRun(t, dir, "catalog", "export")
	if code != 0 {
		t.Fatalf("export: %s", errs)
	}
	var b map[string]any
	if err := json.Unmarshal([]byte(out), &b); err != nil {
		t.Fatal(err)
	}
	all := b["services"].([]any)
	dropped := all[len(all)-1].(map[string]any)["id"].(string)
	b["services"] = all[:len(all)-1]
	delete(b, "organisations")
	delete(b, "policies")
	file := filepath.Join(t.TempDir(), "catalog.json")
	raw, _ := json.Marshal(b)
	os.WriteFile(file, raw, 0o600)

	shown := func() string {
		out, _, _ := adminRun(t, dir, "whitelist", "show", "--json")
		return out
	}
	before := shown()
	out, errs, code = adminRun(t, dir, "catalog", "import", file, "--prune", "--dry-run")
	if code != 0 || !strings.Contains(out, "dry run: nothing changed") || !strings.Contains(out, "would remove 1 services: "+dropped) {
		t.Fatalf("dry run: %d %q %s", code, out, errs)
	}
	if shown() != before {
		t.Fatal("the dry run changed the whitelist")
	}
	out, errs, code = adminRun(t, dir, "catalog", "import", file, "--prune", "--json")
	if code != 0 || !strings.Contains(out, `"version"`) {
		t.Fatalf("prune: %d %s %s", code, out, errs)
	}
	out, _, _ = adminRun(t, dir, "catalog", "export")
	if strings.Contains(out, `"id": "`+dropped+`"`) {
		t.Fatalf("%s still in the catalog", dropped)
	}
	if _, errs, code := adminRun(t, dir, "catalog", "import", "--examples", "--prune"); code == 0 || !strings.Contains(errs, "lists none") {
		t.Fatalf("pruning with no services: %d %s", code, errs)
	}
}
