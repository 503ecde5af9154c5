// Package pathstest gives tests a private set of helper folders whose socket
// path fits the ~108-byte sun_path limit (t.TempDir() paths can be too long).
package pathstest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/detour-project/detour/helper/paths"
)

// Short makes fresh config, state and runtime folders under a short temporary
// folder, created with the helper's permissions and removed after the test.
func Short(t testing.TB) paths.Dirs {
	t.Helper()
	d, err := os.MkdirTemp("", "dt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	dirs := paths.Dirs{Config: filepath.Join(d, "c"), State: filepath.Join(d, "s"), Runtime: filepath.Join(d, "r")}
	if err := dirs.Ensure(); err != nil {
		t.Fatal(err)
	}
	return dirs
}
