// Package config is the helper's per-user configuration: which hub, which
// keys are pinned, which organisation, and the person's settings. It is a
// small JSON file written atomically; secrets never go here (see keyring).
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/detour-project/detour/shared/atomicfile"
	"github.com/detour-project/detour/shared/statefile"
	"github.com/detour-project/detour/shared/whitelist"
)

// Config is everything the agent remembers between runs that is not a secret.
type Config struct {
	// Hub is the base URL of detour-server, e.g. http://127.0.0.1:8080.
	Hub string `json:"hub,omitempty"`
	// Org is the organisation this device enrolled with.
	Org string `json:"org,omitempty"`
	// WhitelistKeys are the pinned whitelist signing keys. A document signed
	// by no key here is refused.
	WhitelistKeys []whitelist.PublicKey `json:"whitelist_keys,omitempty"`
	// ReportAutomatically sends a report for each block without asking.
	ReportAutomatically bool `json:"report_automatically"`
	// PausedUntil silences prompts until then (the tray's "Pause for an hour").
	PausedUntil *time.Time `json:"paused_until,omitempty"`
	// Prompts is the organisation's choice to show (true) or not show
	// (false) the prompt on a block; nil leaves it to the extension.
	Prompts *bool `json:"prompts,omitempty"`
	// Managed lists settings fixed by the organisation's managed policy, which
	// the person cannot change.
	Managed []string `json:"managed,omitempty"`
}

// Format is the config file's schema, with a migration step per version
// (shared/statefile). Add a step when a field changes meaning or name.
var Format = statefile.Format{Name: "config", Steps: []statefile.Step{
	{To: 1, Why: "schema versions begin; the fields are as before", Apply: statefile.Stamp},
}}

// Store loads and saves one config file, serialising writers.
type Store struct {
	path string
	mu   sync.Mutex
	cur  Config
}

// Open reads the config file at path; a missing file is an empty config.
func Open(path string) (*Store, error) {
	s := &Store{path: path}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	default:
		migrated, err := Format.Decode(b, &s.cur)
		if errors.Is(err, statefile.ErrNewer) {
			return nil, fmt.Errorf("config: %s: %w", path, err)
		}
		if err != nil {
			return nil, fmt.Errorf("config: %s is not valid JSON: %w", path, err)
		}
		if migrated {
			// Written back at once, so the migration runs once.
			if err := s.save(s.cur); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// Get returns a copy of the current config.
func (s *Store) Get() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cur
	c.WhitelistKeys = append([]whitelist.PublicKey(nil), s.cur.WhitelistKeys...)
	c.Managed = append([]string(nil), s.cur.Managed...)
	return c
}

// Update applies f to the config and saves it atomically; on a failed save
// the in-memory config is left as it was.
func (s *Store) Update(f func(*Config) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.cur
	next.WhitelistKeys = append([]whitelist.PublicKey(nil), s.cur.WhitelistKeys...)
	next.Managed = append([]string(nil), s.cur.Managed...)
	if err := f(&next); err != nil {
		return err
	}
	if err := s.save(next); err != nil {
		return err
	}
	s.cur = next
	return nil
}

// save writes c in the current schema.
func (s *Store) save(c Config) error {
	b, err := Format.Encode(c)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return atomicfile.Write(s.path, b, 0o600)
}

// WriteFileAtomic is atomicfile.Write.
//
// Deprecated: use shared/atomicfile, the one implementation.
func WriteFileAtomic(path string, b []byte, perm os.FileMode) error {
	return atomicfile.Write(path, b, perm)
}
