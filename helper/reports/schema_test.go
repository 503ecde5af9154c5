package reports

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Store files written before schema versions are read as before; one from a
// newer Detour is neither sent nor moved aside as corrupt; what the store
// writes carries the current schema.
func TestStoreFilesCarryASchema(t *testing.T) {
	d := diskStore{dir: t.TempDir()}
	if err := d.ensure(); err != nil {
		t.Fatal(err)
	}
	const oldID, newID = "0123456789abcdef01234567", "fedcba9876543210fedcba98"
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(d.queueDir(), name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(oldID+".json", `{"id":"`+oldID+`","report":{"service":"zoom","host":"zoom.us"},"attempts":2}`)
	write(newID+".json", `{"schema":99,"id":"`+newID+`","report":{}}`)
	os.WriteFile(d.reportedPath(), []byte(`{"hashes":["h1","h2"]}`), 0o600)

	items, err := d.items()
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].ID != oldID || items[0].Attempts != 2 || items[0].Report.Host != "zoom.us" {
		t.Fatalf("items = %+v, want the old-format item alone", items)
	}
	if _, err := os.Stat(filepath.Join(d.queueDir(), newID+".json")); err != nil {
		t.Fatalf("the newer file was moved: %v", err)
	}
	if h := d.reported(); len(h) != 2 {
		t.Fatalf("old reported.json read as %v", h)
	}
	// A write brings a file to the current schema.
	items[0].Attempts = 3
	if err := d.putItem(items[0]); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(d.queueDir(), oldID+".json"))
	if !strings.HasPrefix(string(b), "{\n  \"schema\": 1,") {
		t.Fatalf("rewritten item: %s", b)
	}
	if items, _ := d.items(); len(items) != 1 || items[0].Attempts != 3 {
		t.Fatalf("after rewrite: %+v", items)
	}
}
