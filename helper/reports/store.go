package reports

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/detour-project/detour/shared/atomicfile"
	"github.com/detour-project/detour/shared/statefile"
)

// Files under dirs.State/reports/:
//
//	queue/<id>.json   one queued report each, with its token once bound
//	failed/<id>.json  reports the hub refused for good (kept for the person)
//	tokens.json       the stash: issuer name, issuer key, finished tokens
//	reported.json     hashes of (organisation, service) this person reported
//
// Every write goes through atomicfile.Write (temporary file, fsync,
// rename, folder fsync): after a crash each file is the old or the new
// version, never half of either.
type diskStore struct {
	dir string
}

// Item is one queued report.
type Item struct {
	ID     string `json:"id"`
	Report Report `json:"report"`
	// Token is bound before the first send and never changes after a send
	// was attempted: a resend after a crash is then byte for byte the same
	// request, which the hub answers with 200.
	Token     string    `json:"token,omitempty"`
	NotBefore time.Time `json:"not_before"`
	// Urgent marks a report the person asked to send at once (--now).
	Urgent        bool   `json:"urgent,omitempty"`
	Attempts      int    `json:"attempts"`
	TokenFailures int    `json:"token_failures,omitempty"`
	LastError     string `json:"last_error,omitempty"`
}

// Stash is the token stash with the issuer they were made for.
type Stash struct {
	Hub        string    `json:"hub"`
	Org        string    `json:"org"`
	IssuerName string    `json:"issuer_name"`
	IssuerKey  IssuerKey `json:"issuer_key"`
	Tokens     []string  `json:"tokens"`
}

func (d diskStore) queueDir() string  { return filepath.Join(d.dir, "queue") }
func (d diskStore) failedDir() string { return filepath.Join(d.dir, "failed") }
func (d diskStore) stashPath() string { return filepath.Join(d.dir, "tokens.json") }
func (d diskStore) reportedPath() string {
	return filepath.Join(d.dir, "reported.json")
}

func (d diskStore) ensure() error {
	for _, p := range []string{d.queueDir(), d.failedDir()} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			return fmt.Errorf("reports: %w", err)
		}
	}
	return nil
}

func newID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func validID(id string) bool {
	if len(id) != 24 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// storeFormat is the schema of every file of the store (queued and failed
// reports, the stash, the pending batch, reported.json), with a migration
// step per version (shared/statefile). A file is migrated when read and
// written in the current schema at its next write.
var storeFormat = statefile.Format{Name: "report store", Steps: []statefile.Step{
	{To: 1, Why: "schema versions begin; the fields are as before", Apply: statefile.Stamp},
}}

func writeJSON(path string, v any) error {
	b, err := storeFormat.Encode(v)
	if err != nil {
		return fmt.Errorf("reports: %s: %w", filepath.Base(path), err)
	}
	return atomicfile.Write(path, b, 0o600)
}

// readJSON reads one store file. A file from a newer Detour is an error
// that matches statefile.ErrNewer: leave it alone.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if _, err := storeFormat.Decode(b, v); err != nil {
		if errors.Is(err, statefile.ErrNewer) {
			return fmt.Errorf("reports: %s: %w", path, err)
		}
		return fmt.Errorf("reports: %s is corrupt: %w", path, err)
	}
	return nil
}

func (d diskStore) putItem(it *Item) error {
	return writeJSON(filepath.Join(d.queueDir(), it.ID+".json"), it)
}

func (d diskStore) removeItem(id string) error {
	err := os.Remove(filepath.Join(d.queueDir(), id+".json"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reports: remove %s: %w", id, err)
	}
	if err := atomicfile.SyncDir(d.queueDir()); err != nil {
		return fmt.Errorf("reports: remove %s: %w", id, err)
	}
	return nil
}

// failItem moves a refused report to failed/, durably.
func (d diskStore) failItem(it *Item) error {
	if err := writeJSON(filepath.Join(d.failedDir(), it.ID+".json"), it); err != nil {
		return err
	}
	return d.removeItem(it.ID)
}

// items lists the queue, oldest first. A file that is not a valid item (it
// cannot be one we wrote: writes are atomic) is moved aside, never sent.
func (d diskStore) items() ([]*Item, error) {
	ents, err := os.ReadDir(d.queueDir())
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("reports: read queue: %w", err)
	}
	var out []*Item
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			continue // temporary files of an interrupted write
		}
		var it Item
		path := filepath.Join(d.queueDir(), name)
		err := readJSON(path, &it)
		if errors.Is(err, statefile.ErrNewer) {
			continue // a newer Detour's report: neither sent nor moved aside
		}
		if err != nil || !validID(it.ID) || it.ID+".json" != name {
			os.Rename(path, path+".corrupt")
			continue
		}
		out = append(out, &it)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NotBefore.Before(out[j].NotBefore) })
	return out, nil
}

func (d diskStore) failedCount() int {
	ents, err := os.ReadDir(d.failedDir())
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".json") && !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	return n
}

func (d diskStore) stash() (*Stash, error) {
	var s Stash
	err := readJSON(d.stashPath(), &s)
	if errors.Is(err, fs.ErrNotExist) {
		return &Stash{}, nil
	}
	if err != nil {
		// A corrupt stash costs a few tokens, nothing else.
		return &Stash{}, nil
	}
	return &s, nil
}

func (d diskStore) putStash(s *Stash) error { return writeJSON(d.stashPath(), s) }

type reportedFile struct {
	Hashes []string `json:"hashes"`
}

func (d diskStore) reported() []string {
	var r reportedFile
	readJSON(d.reportedPath(), &r)
	return r.Hashes
}

func (d diskStore) putReported(h []string) error {
	return writeJSON(d.reportedPath(), reportedFile{Hashes: h})
}
