//go:build !windows

package masterkey

import (
	"os"
	"path/filepath"
	"testing"
)

func TestExposed(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k")
	os.WriteFile(p, Generate(), 0o600)
	if Exposed(p) {
		t.Error("0600 is not exposed")
	}
	os.Chmod(p, 0o644)
	if !Exposed(p) {
		t.Error("0644 is exposed")
	}
}
