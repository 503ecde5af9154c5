package whitelist

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/shared/atomicfile"
	"github.com/detour-project/detour/shared/statefile"
	wl "github.com/detour-project/detour/shared/whitelist"
)

// Rollback protection must not depend on the cache. A cache that is
// corrupted, truncated or deleted is rightly distrusted and dropped; if the
// version it held were the only memory of what was accepted, an attacker who
// can serve an older, validly signed envelope (a replay from a proxy, a stale
// mirror) could roll the helper back to a policy the hub has since changed.
// So the highest version ever accepted is kept apart, in a small file of its
// own, and every envelope — pushed, fetched, or read back from the cache —
// must be at least that version.
//
// The record is per hub URL: a different hub numbers its versions on its own,
// so it starts afresh. It also starts afresh when none of the keys pinned
// when it was written is pinned any more (the same URL now serves a different
// hub, e.g. one rebuilt after a re-enrolment); a key rotation keeps at least
// one key pinned across each step and so keeps the record. Changing the hub
// or the keys needs the config, which an attacker able only to serve
// envelopes cannot write.

// VersionsName is the file, beside the cache, that remembers the highest
// whitelist version accepted from each hub.
const VersionsName = "whitelist-versions.json"

// VersionsPath is where the agent keeps the highest versions accepted.
func VersionsPath(dirs paths.Dirs) string { return filepath.Join(dirs.State, VersionsName) }

// highWater is the highest version accepted from one hub.
type highWater struct {
	Version int64 `json:"version"`
	// PayloadSHA256 is that version's signed bytes, hashed: a different
	// document under the same number is refused even without a cache.
	PayloadSHA256 string `json:"payload_sha256"`
	// Keys are the public keys pinned when it was accepted.
	Keys []string `json:"keys"`
}

// versionsFormat is the high-water file's schema, a migration step per
// version (shared/statefile).
var versionsFormat = statefile.Format{Name: "whitelist versions", Steps: []statefile.Step{
	{To: 1, Why: "schema versions begin; the fields are as before", Apply: statefile.Stamp},
}}

// versionsFile is the file's content: the record per hub URL.
type versionsFile struct {
	Hubs map[string]highWater `json:"hubs"`
}

// hubID is the hub URL as records are keyed by it.
func hubID(hub string) string { return strings.TrimSuffix(strings.TrimSpace(hub), "/") }

func payloadSum(payload []byte) string {
	s := sha256.Sum256(payload)
	return hex.EncodeToString(s[:])
}

// pinnedKeyStrings lists the pinned keys as recorded in a highWater.
func pinnedKeyStrings(pub []wl.PublicKey) []string {
	out := make([]string, 0, len(pub))
	for _, k := range pub {
		if _, err := wl.ParsePublicKey(k); err == nil {
			out = append(out, k.PublicKey)
		}
	}
	return out
}

// sameTrust says whether a record written under keys still applies now that
// pinned are pinned: true when they share a key (or the record names none).
func (h highWater) sameTrust(pinned []string) bool {
	if len(h.Keys) == 0 {
		return true
	}
	for _, k := range h.Keys {
		if slices.Contains(pinned, k) {
			return true
		}
	}
	return false
}

// readVersions reads the file; a missing file is an empty record and not an
// error.
func readVersions(path string) (map[string]highWater, error) {
	out := map[string]highWater{}
	if path == "" {
		return out, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("whitelist versions: %w", err)
	}
	var f versionsFile
	if _, err := versionsFormat.Decode(b, &f); err != nil {
		return out, fmt.Errorf("whitelist versions %s: %w", path, err)
	}
	for hub, h := range f.Hubs {
		if h.Version > 0 {
			out[hubID(hub)] = h
		}
	}
	return out, nil
}

func writeVersions(path string, hubs map[string]highWater) error {
	if path == "" {
		return nil
	}
	b, err := versionsFormat.Encode(versionsFile{Hubs: hubs})
	if err != nil {
		return fmt.Errorf("whitelist versions: %w", err)
	}
	if err := atomicfile.Write(path, b, 0o600); err != nil {
		return fmt.Errorf("whitelist versions: %w", err)
	}
	return nil
}

// mergeVersions raises what c remembers to what the file says (another
// process, such as `detour sync` run without an agent, may have accepted a
// newer version): a record only ever goes up. Called with acceptMu held.
func (c *Client) mergeVersions() {
	disk, err := readVersions(c.opt.VersionsPath)
	if err != nil {
		// What is in memory still holds; the next accepted version rewrites
		// the file whole.
		c.opt.Log.Warn("whitelist version record unreadable; using the one in memory", "err", err)
	}
	for hub, h := range disk {
		if mine, ok := c.high[hub]; !ok || h.Version > mine.Version {
			c.high[hub] = h
		}
	}
}

// floor is the record that an envelope from hub must not go below, if any.
func (c *Client) floor(hub string, pinned []string) (highWater, bool) {
	h, ok := c.high[hub]
	if !ok || !h.sameTrust(pinned) {
		return highWater{}, false
	}
	return h, true
}

// checkFloor refuses a version below the record for hub, or the record's
// version with other content.
func (c *Client) checkFloor(hub string, pinned []string, version int64, sum string) error {
	h, ok := c.floor(hub, pinned)
	switch {
	case !ok:
		return nil
	case version < h.Version:
		return fmt.Errorf("version %d is older than version %d accepted before; %w", version, h.Version, ErrRollback)
	case version == h.Version && h.PayloadSHA256 != "" && sum != h.PayloadSHA256:
		return fmt.Errorf("%w (version %d)", ErrConflict, version)
	}
	return nil
}

// raise records version as accepted from hub and writes the file. A write
// that fails is logged: the record in memory still protects this run.
func (c *Client) raise(hub string, pinned []string, version int64, sum string) {
	h, ok := c.floor(hub, pinned)
	if ok && h.Version > version {
		return
	}
	next := highWater{Version: version, PayloadSHA256: sum, Keys: pinned}
	if ok && h.Version == next.Version && h.PayloadSHA256 == next.PayloadSHA256 && slices.Equal(h.Keys, next.Keys) {
		return // nothing new to write
	}
	c.high[hub] = next
	if err := writeVersions(c.opt.VersionsPath, c.high); err != nil {
		c.opt.Log.Error("whitelist version record not written", "err", err)
	}
}
