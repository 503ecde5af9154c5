package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		path string
		data string
		perm os.FileMode
	}{
		{"new file in a new folder", filepath.Join(dir, "a", "b", "config.json"), "{}\n", 0o600},
		{"replace", filepath.Join(dir, "a", "b", "config.json"), `{"hub":"x"}`, 0o600},
		{"empty", filepath.Join(dir, "empty"), "", 0o644},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Write(tc.path, []byte(tc.data), tc.perm); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(tc.path)
			if err != nil || string(b) != tc.data {
				t.Fatalf("read back %q, %v; want %q", b, err, tc.data)
			}
			if st, _ := os.Stat(tc.path); runtime.GOOS != "windows" && st.Mode().Perm() != tc.perm {
				t.Fatalf("mode %v, want %v", st.Mode().Perm(), tc.perm)
			}
		})
	}
	// No temporary file is left behind.
	entries, _ := os.ReadDir(filepath.Join(dir, "a", "b"))
	if len(entries) != 1 {
		t.Fatalf("folder holds %v, want only config.json", entries)
	}
}

// A write that cannot finish leaves the old file as it was.
func TestFailedWriteKeepsTheOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	if err := Write(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The target is a folder: the rename fails after the temp file is made.
	bad := filepath.Join(dir, "folder")
	os.Mkdir(bad, 0o700)
	os.WriteFile(filepath.Join(bad, "x"), nil, 0o600)
	if err := Write(bad, []byte("new"), 0o600); err == nil {
		t.Fatal("replacing a non-empty folder succeeded")
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Fatalf("old file now %q", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("a failed write left %v", entries)
	}
	// A folder that cannot be created is an error naming the path.
	if err := Write(filepath.Join(path, "child"), []byte("x"), 0o600); err == nil {
		t.Fatal("writing under a file succeeded")
	}
}

// Of many racing creators exactly one wins; the others see fs.ErrExist and
// the file holds the winner's bytes, whole.
func TestWriteNewRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seal.key")
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = WriteNew(path, []byte{byte('a' + i), byte('a' + i)}, 0o600)
		}()
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if won >= 0 {
				t.Fatalf("both %d and %d created the file", won, i)
			}
			won = i
		case !errors.Is(err, fs.ErrExist):
			t.Fatalf("creator %d: %v, want fs.ErrExist", i, err)
		}
	}
	b, _ := os.ReadFile(path)
	if won < 0 || string(b) != string([]byte{byte('a' + won), byte('a' + won)}) {
		t.Fatalf("file holds %q, winner %d", b, won)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}
