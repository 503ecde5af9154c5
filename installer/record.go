package installer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"

	"github.com/detour-project/detour/shared/atomicfile"
)

// record is what install wrote, so that uninstall removes exactly that.
type record struct {
	Schema int          `json:"schema"`
	Files  []recordFile `json:"files"`
	// Dirs are folders install created; uninstall removes them when empty.
	Dirs []string `json:"dirs,omitempty"`
	// Keys are the registry keys a Windows install set; CreatedKeys the
	// keys it created (parents included), removed on uninstall when empty.
	Keys        []recordKey  `json:"keys,omitempty"`
	CreatedKeys []createdKey `json:"created_keys,omitempty"`
}

type recordFile struct {
	Browser string `json:"browser"`
	Path    string `json:"path"`
	// SHA256 of what install wrote: a file that no longer matches has been
	// changed by someone else and is left alone.
	SHA256 string `json:"sha256"`
	// Previous is what was at Path before the first install replaced it
	// (nil when there was nothing), restored on uninstall.
	Previous     *string     `json:"previous,omitempty"`
	PreviousMode fs.FileMode `json:"previous_mode,omitempty"`
}

func loadRecord(path string) (*record, error) {
	r := &record{Schema: 1}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("installer: read record %s: %w", path, err)
	}
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("installer: record %s is not valid JSON: %w", path, err)
	}
	return r, nil
}

func (r *record) save(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("installer: encode record: %w", err)
	}
	if err := atomicfile.Write(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("installer: record: %w", err)
	}
	return nil
}

func (r *record) addDirs(dirs []string) {
	for _, d := range dirs {
		if !slices.Contains(r.Dirs, d) {
			r.Dirs = append(r.Dirs, d)
		}
	}
}

// addFile records that b is about to be written at e.Path. The first time a
// path is recorded, whatever is there now is kept to be restored.
func (r *record) addFile(e Entry, b []byte) error {
	sum := digest(b)
	for i := range r.Files {
		if r.Files[i].Path == e.Path {
			r.Files[i].SHA256 = sum
			r.Files[i].Browser = e.Browser
			return nil
		}
	}
	f := recordFile{Browser: e.Browser, Path: e.Path, SHA256: sum}
	prev, err := os.ReadFile(e.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("installer: read %s: %w", e.Path, err)
	default:
		s := string(prev)
		f.Previous = &s
		f.PreviousMode = 0o644
		if fi, err := os.Stat(e.Path); err == nil {
			f.PreviousMode = fi.Mode().Perm()
		}
	}
	r.Files = append(r.Files, f)
	return nil
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
