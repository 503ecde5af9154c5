package whitelist

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/detour-project/detour/shared/statefile"
)

// The high-water file from before schema versions is read as before; one
// from a newer Detour is refused (and the client then keeps what it holds
// in memory); what is written carries the schema.
func TestVersionsFileSchema(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, VersionsName)
	os.WriteFile(path, []byte(`{"hubs":{"https://hub.example":{"version":7}}}`), 0o600)
	got, err := readVersions(path)
	if err != nil || got[hubID("https://hub.example")].Version != 7 {
		t.Fatalf("old file read as %+v, %v", got, err)
	}
	if err := writeVersions(path, got); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), "{\n  \"schema\": 1,") {
		t.Fatalf("written %s", b)
	}
	if again, err := readVersions(path); err != nil || again[hubID("https://hub.example")].Version != 7 {
		t.Fatalf("reread %+v, %v", again, err)
	}
	os.WriteFile(path, []byte(`{"schema":5,"hubs":{}}`), 0o600)
	if _, err := readVersions(path); !errors.Is(err, statefile.ErrNewer) {
		t.Fatalf("newer file: %v, want ErrNewer", err)
	}
}
