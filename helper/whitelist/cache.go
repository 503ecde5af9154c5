package whitelist

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/shared/atomicfile"
	"github.com/detour-project/detour/shared/statefile"
	wl "github.com/detour-project/detour/shared/whitelist"
)

// CacheName is the cache file's name in the state folder.
const CacheName = "whitelist.json"

// CachePath is where the agent keeps its last good copy.
func CachePath(dirs paths.Dirs) string { return filepath.Join(dirs.State, CacheName) }

// cacheFormat is the cache file's schema, a migration step per version
// (shared/statefile).
var cacheFormat = statefile.Format{Name: "whitelist cache", Compact: true, Steps: []statefile.Step{
	{To: 1, Why: "schema versions begin; the fields are as before", Apply: statefile.Stamp},
}}

// cacheFile is what is written: the envelope exactly as the hub signed it
// (so that it can be verified again on every start) and what the agent
// needs to sync efficiently and to say how old its copy is.
type cacheFile struct {
	Envelope wl.Envelope `json:"envelope"`
	// Hub is the URL the copy came from; empty in caches written before it
	// was recorded, which are taken to come from the configured hub.
	Hub       string    `json:"hub,omitempty"`
	ETag      string    `json:"etag,omitempty"`
	FetchedAt time.Time `json:"fetched_at"`
}

// Copy is one verified whitelist version with what is known about how it
// was obtained.
type Copy struct {
	Doc       *wl.Document
	Index     *Index
	Payload   []byte // the signed bytes, to tell two same-numbered versions apart
	Envelope  wl.Envelope
	Hub       string // the hub URL it came from (see hubID)
	ETag      string
	FetchedAt time.Time
}

// ErrNoPinnedKey means no whitelist key is pinned, so nothing can be trusted.
var ErrNoPinnedKey = errors.New("no pinned hub key: run detour enrol")

// PinnedKeys decodes the pinned keys; a key that does not decode is skipped
// with an error only if none is left.
func PinnedKeys(pub []wl.PublicKey) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	var firstErr error
	for _, k := range pub {
		key, err := wl.ParsePublicKey(k)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		if firstErr != nil {
			return nil, fmt.Errorf("%w (%v)", ErrNoPinnedKey, firstErr)
		}
		return nil, ErrNoPinnedKey
	}
	return keys, nil
}

// ReadCache reads and verifies the cache file. Any failure — missing,
// unreadable, not JSON, a bad or unknown signature, an invalid document — is
// an error and nothing from the file is returned: a cache is never trusted
// because it is ours, only because it verifies.
func ReadCache(path string, keys []ed25519.PublicKey) (*Copy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("whitelist cache: %w", err)
	}
	var f cacheFile
	if _, err := cacheFormat.Decode(b, &f); err != nil {
		return nil, fmt.Errorf("whitelist cache %s: not valid JSON: %w", path, err)
	}
	doc, payload, err := wl.Verify(&f.Envelope, keys)
	if err != nil {
		return nil, fmt.Errorf("whitelist cache %s: %w", path, err)
	}
	return &Copy{Doc: doc, Index: NewIndex(doc), Payload: payload, Envelope: f.Envelope, Hub: hubID(f.Hub), ETag: f.ETag, FetchedAt: f.FetchedAt}, nil
}

func writeCache(path string, c *Copy) error {
	b, err := cacheFormat.Encode(cacheFile{Envelope: c.Envelope, Hub: c.Hub, ETag: c.ETag, FetchedAt: c.FetchedAt.UTC()})
	if err != nil {
		return fmt.Errorf("whitelist cache: %w", err)
	}
	if err := atomicfile.Write(path, b, 0o600); err != nil {
		return fmt.Errorf("whitelist cache: %w", err)
	}
	return nil
}
