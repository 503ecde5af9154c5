// Package atomicfile is the one way Detour replaces or creates a file whose
// loss or tearing would cost state: the helper's config, whitelist cache,
// high-water mark, report queue and fallback secrets, the installer's
// manifests and records, and the hub's key files. A crash at any moment
// leaves the old file or the new one, whole, never a mixture or an empty
// file: the bytes go to a temporary file in the same folder, which is
// fsynced, renamed (or linked) into place, and then the folder is fsynced so
// that the new name itself survives a power cut.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Write replaces path with b (mode perm), creating its folder (0700) when
// missing.
func Write(path string, b []byte, perm os.FileMode) error {
	tmp, err := writeTemp(path, b, perm)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // a no-op after the rename
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("write %s: sync folder: %w", path, err)
	}
	return nil
}

// WriteNew creates path with b (mode perm) only if no file has that name,
// atomically: of several processes racing, exactly one wins, and the others
// get an error that matches fs.ErrExist (and should read the winner's file).
// A crash leaves no file or the whole one.
func WriteNew(path string, b []byte, perm os.FileMode) error {
	tmp, err := writeTemp(path, b, perm)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	// A hard link fails when the name exists, where a rename would replace.
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create %s: %w", path, fs.ErrExist)
		}
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("create %s: sync folder: %w", path, err)
	}
	return nil
}

// SyncDir makes the creations, renames and removals in dir durable (a
// no-op where folders cannot be synced).
func SyncDir(dir string) error { return syncDir(dir) }

// writeTemp writes b to a new temporary file beside path, with mode perm,
// fsynced and closed, and returns its name. Its name starts with a dot and
// the target's name, so that folder scans that read only their own pattern
// (ed25519-*.pem, *.json) skip it.
func writeTemp(path string, b []byte, perm os.FileMode) (string, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(f.Name())
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		return fail(err)
	}
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return f.Name(), nil
}
