package whitelist

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/detour-project/detour/helper/config"
)

// TestRollbackSurvivesCache: the helper accepts version 5 from a hub; then
// its cache is damaged, deleted or swapped, it restarts and is offered
// another validly signed version. The highest version accepted before is
// remembered apart from the cache, so an older one is refused even with no
// usable cache; the same or a newer one is accepted; a different hub, or the
// same URL under entirely new keys, starts afresh.
func TestRollbackSurvivesCache(t *testing.T) {
	hubKey, newHubKey := newKey(t), newKey(t)
	now := time.Now()
	held := doc(t, 5, now, time.Hour)
	cachePath := func(dir string) string { return filepath.Join(dir, CacheName) }
	remove := func(name string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	corrupt := func(t *testing.T, dir string) {
		if err := os.WriteFile(cachePath(dir), []byte(`{"envelope":{"payload":"trunc`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// An older copy, validly signed, put where the cache was.
	swap := func(t *testing.T, dir string) {
		if err := writeCache(cachePath(dir), &Copy{Envelope: *sign(t, doc(t, 3, now, time.Hour), hubKey), FetchedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name     string
		damage   func(t *testing.T, dir string)
		otherHub bool               // restart against another hub URL
		key      ed25519.PrivateKey // pinned after the restart and signing the offer; default hubKey
		start    int64              // the version held right after the restart; 0 for none
		version  int64              // offered
		edited   bool               // the offer differs from what was accepted under its number
		want     error
	}{
		{name: "cache deleted, older version", damage: remove(CacheName), version: 4, want: ErrRollback},
		{name: "cache corrupted, older version", damage: corrupt, version: 2, want: ErrRollback},
		{name: "cache swapped for an older signed copy", damage: swap, version: 3, want: ErrRollback},
		{name: "cache deleted, same version", damage: remove(CacheName), version: 5},
		{name: "cache corrupted, same version", damage: corrupt, version: 5},
		{name: "cache deleted, same version, other content", damage: remove(CacheName), version: 5, edited: true, want: ErrConflict},
		{name: "cache deleted, newer version", damage: remove(CacheName), version: 6},
		{name: "cache corrupted, newer version", damage: corrupt, version: 7},
		{name: "version record deleted, cache intact, older version", damage: remove(VersionsName), start: 5, version: 4, want: ErrRollback},
		{name: "different hub, older version", damage: remove(CacheName), otherHub: true, version: 2},
		{name: "different hub, cache intact, older version", otherHub: true, start: 5, version: 3},
		{name: "same hub under new keys only, older version", damage: corrupt, key: newHubKey, version: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hub := newTestHub(t)
			dir := t.TempDir()
			first, _ := newClient(t, dir, hub.URL(), hubKey)
			hub.set(sign(t, held, hubKey))
			mustSync(t, first)
			if fi, err := os.Stat(filepath.Join(dir, VersionsName)); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("version record: %v, mode %v; want a 0600 file", err, fi.Mode().Perm())
			}
			if tc.damage != nil {
				tc.damage(t, dir)
			}

			key := hubKey
			if tc.key != nil {
				key = tc.key
			}
			serving := hub
			if tc.otherHub {
				serving = newTestHub(t)
			}
			c, _ := newClient(t, dir, serving.URL(), key)
			if got := version(c); got != tc.start {
				t.Fatalf("after the restart: version %d held, want %d", got, tc.start)
			}
			issued := now
			if tc.edited {
				issued = now.Add(time.Minute)
			}
			offered := doc(t, tc.version, issued, time.Hour)
			serving.set(sign(t, offered, key))
			changed, err := c.SyncNow(context.Background())
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("sync: %v, want %v", err, tc.want)
			}
			if tc.want != nil {
				if changed || version(c) != tc.start {
					t.Errorf("changed=%v version=%d after a refused envelope, want %d", changed, version(c), tc.start)
				}
				if tc.want == ErrRollback && !strings.Contains(err.Error(), "accepted before; refusing a rollback") {
					t.Errorf("error does not say why: %v", err)
				}
				return
			}
			if version(c) != offered.Version {
				t.Fatalf("version %d held, want %d", version(c), offered.Version)
			}
			// The record follows what was accepted, and a later restart
			// with the cache gone again still refuses to go below it.
			os.Remove(cachePath(dir))
			again, _ := newClient(t, dir, serving.URL(), key)
			serving.set(sign(t, doc(t, offered.Version-1, now, time.Hour), key))
			if _, err := again.SyncNow(context.Background()); !errors.Is(err, ErrRollback) {
				t.Fatalf("after accepting %d, version %d was not refused: %v", offered.Version, offered.Version-1, err)
			}
		})
	}
}

// TestVersionRecordKeepsOtherHubs: moving to another hub and back keeps the
// first hub's record, and a record file that is not JSON is replaced by the
// next accepted version without lowering what is held in memory.
func TestVersionRecordKeepsOtherHubs(t *testing.T) {
	key := newKey(t)
	a, b := newTestHub(t), newTestHub(t)
	dir := t.TempDir()
	c, s := newClient(t, dir, a.URL(), key)
	a.set(sign(t, doc(t, 8, time.Now(), time.Hour), key))
	mustSync(t, c)

	s.set(func(cfg *config.Config) { cfg.Hub = b.URL() })
	b.set(sign(t, doc(t, 2, time.Now(), time.Hour), key))
	mustSync(t, c)

	os.WriteFile(filepath.Join(dir, VersionsName), []byte("not json"), 0o600)
	s.set(func(cfg *config.Config) { cfg.Hub = a.URL() })
	a.set(sign(t, doc(t, 7, time.Now(), time.Hour), key))
	if _, err := c.SyncNow(context.Background()); !errors.Is(err, ErrRollback) {
		t.Fatalf("back at the first hub, an older version: %v", err)
	}
	a.set(sign(t, doc(t, 9, time.Now(), time.Hour), key))
	mustSync(t, c)
	var f versionsFile
	raw, _ := os.ReadFile(filepath.Join(dir, VersionsName))
	if err := json.Unmarshal(raw, &f); err != nil || f.Hubs[hubID(a.URL())].Version != 9 || f.Hubs[hubID(b.URL())].Version != 2 {
		t.Fatalf("record %s (%v), want hub a at 9 and hub b at 2", raw, err)
	}
}
