package keyring

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	"github.com/detour-project/detour/shared/atomicfile"
	"github.com/detour-project/detour/shared/statefile"
)

// fileFormat is the fallback file's schema, a migration step per version
// (shared/statefile); the secrets' names never include "schema".
var fileFormat = statefile.Format{Name: "secrets file", Steps: []statefile.Step{
	{To: 1, Why: "schema versions begin; the fields are as before", Apply: statefile.Stamp},
}}

// FileStore keeps secrets in a JSON file readable only by the user (0600),
// written atomically. It is the last resort where no OS keyring answers:
// anyone who can read the user's files can read the secrets, which is why
// `detour doctor` flags it.
type FileStore struct {
	path   string
	reason error // why the OS keyring was not used
	mu     sync.Mutex
}

// NewFileStore returns a file store at path; Open uses it only as a fallback.
func NewFileStore(path string) *FileStore { return &FileStore{path: path} }

// Backend is "file".
func (f *FileStore) Backend() string { return "file" }

// Path is the file the secrets are kept in.
func (f *FileStore) Path() string { return f.path }

// Get returns the secret under key, or ErrNotFound.
func (f *FileStore) Get(key string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.load()
	if err != nil {
		return "", err
	}
	v, ok := m[key]
	if !ok {
		return "", ErrNotFound
	}
	return v, nil
}

// Set stores value under key.
func (f *FileStore) Set(key, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.load()
	if err != nil {
		return err
	}
	m[key] = value
	return f.save(m)
}

// Delete removes key; a missing key is not an error.
func (f *FileStore) Delete(key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.load()
	if err != nil {
		return err
	}
	if _, ok := m[key]; !ok {
		return nil
	}
	delete(m, key)
	if len(m) == 0 {
		if err := os.Remove(f.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("keyring: remove %s: %w", f.path, err)
		}
		return nil
	}
	return f.save(m)
}

// load reads the file; a missing file is an empty store. A file that others
// can read is made private again before it is used.
func (f *FileStore) load() (map[string]string, error) {
	m := map[string]string{}
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keyring: read %s: %w", f.path, err)
	}
	if fi, err := os.Stat(f.path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(f.path, 0o600); err != nil {
			return nil, fmt.Errorf("keyring: %s is readable by others and cannot be made private: %w", f.path, err)
		}
	}
	if _, err := fileFormat.Decode(b, &m); err != nil {
		return nil, fmt.Errorf("keyring: %s: %w", f.path, err)
	}
	return m, nil
}

func (f *FileStore) save(m map[string]string) error {
	b, err := fileFormat.Encode(m)
	if err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	if err := atomicfile.Write(f.path, b, 0o600); err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	return nil
}
