// Package signing keeps the hub's Ed25519 whitelist signing keys.
//
// Keys live in one folder (DATA/keys, mode 0700), one file per key, mode
// 0600, named ed25519-<key id hex>.pem. Each file is a PEM block of type
// "PRIVATE KEY" holding the PKCS#8 encoding of the key, with headers:
//
//	Created: 2026-11-22T07:40:00Z        when the key was made
//	Retire-After: 2026-12-06T07:40:00Z   only on a superseded key
//
// The newest key without Retire-After is the primary. A rotation makes a new
// primary and gives every older key a Retire-After at the end of a grace
// period: until then it still signs and is still published, so helpers that
// pinned only the old key keep accepting new versions while they learn the
// new one. After it, the key file is deleted (a retired private key has no
// further use and is only a liability).
//
// The folder is shared by `serve` and `admin` processes: every write is a
// temporary file renamed into place, so a reader never sees half a key, and
// creating or rotating keys takes a lock file so two processes starting on an
// empty folder do not both make a primary.
package signing

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/detour-project/detour/shared/atomicfile"
	"github.com/detour-project/detour/shared/whitelist"
)

// DefaultGrace is how long a superseded key keeps signing after a rotation.
const DefaultGrace = 14 * 24 * time.Hour

// Key is one signing key.
type Key struct {
	ID          string // whitelist.KeyID of the public key
	Private     ed25519.PrivateKey
	Public      ed25519.PublicKey
	Created     time.Time
	RetireAfter time.Time // zero for the primary
}

// Keyring is a folder of signing keys.
type Keyring struct {
	dir string
	// Now is the clock (tests move it to see keys retire).
	Now func() time.Time
}

// Open opens (creating it 0700) the key folder and makes a first key if the
// folder holds no active key.
func Open(dir string) (*Keyring, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("signing: key folder: %w", err)
	}
	// MkdirAll keeps an existing folder's mode; a key folder others can read
	// would leak the keys, so tighten it.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("signing: key folder: %w", err)
	}
	k := &Keyring{dir: dir, Now: time.Now}
	if _, err := k.Active(); err != nil {
		return nil, err
	}
	return k, nil
}

// Dir is the key folder.
func (k *Keyring) Dir() string { return k.dir }

// Active returns the keys that sign now, primary first, then older keys in
// their grace period (newest first). Keys past their grace period are
// deleted. If no active key exists, one is made.
func (k *Keyring) Active() ([]Key, error) {
	keys, err := k.read()
	if err != nil {
		return nil, err
	}
	now := k.Now()
	if !needsWrite(keys, now) {
		return active(keys, now), nil
	}
	var out []Key
	err = k.locked(func() error {
		keys, err := k.read() // again, under the lock
		if err != nil {
			return err
		}
		for _, key := range keys {
			if !key.RetireAfter.IsZero() && !now.Before(key.RetireAfter) {
				if err := os.Remove(k.path(key)); err != nil && !errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("signing: retire %s: %w", key.ID, err)
				}
			}
		}
		out = active(keys, now)
		if len(out) == 0 || !out[0].RetireAfter.IsZero() {
			nk, err := k.generate(now)
			if err != nil {
				return err
			}
			out = append([]Key{nk}, out...)
		}
		return nil
	})
	return out, err
}

// Public returns the published form of the active keys, primary first.
func (k *Keyring) Public() ([]whitelist.PublicKey, error) {
	keys, err := k.Active()
	if err != nil {
		return nil, err
	}
	out := make([]whitelist.PublicKey, len(keys))
	for i, key := range keys {
		out[i] = whitelist.Export(key.Public)
	}
	return out, nil
}

// Rotate makes a new primary key. Every older active key that has no
// retirement date yet retires after grace (DefaultGrace when zero or less);
// one already retiring keeps its earlier date.
func (k *Keyring) Rotate(grace time.Duration) (Key, error) {
	if grace <= 0 {
		grace = DefaultGrace
	}
	var nk Key
	err := k.locked(func() error {
		keys, err := k.read()
		if err != nil {
			return err
		}
		now := k.Now()
		for _, key := range active(keys, now) {
			if key.RetireAfter.IsZero() {
				key.RetireAfter = now.Add(grace).UTC().Truncate(time.Second)
				if err := k.write(key); err != nil {
					return err
				}
			}
		}
		nk, err = k.generate(now)
		return err
	})
	return nk, err
}

// needsWrite says whether Active must take the lock: a key to delete, or no
// primary to sign with.
func needsWrite(keys []Key, now time.Time) bool {
	for _, key := range keys {
		if !key.RetireAfter.IsZero() && !now.Before(key.RetireAfter) {
			return true
		}
	}
	act := active(keys, now)
	return len(act) == 0 || !act[0].RetireAfter.IsZero()
}

// active filters out retired keys and orders the rest: keys without a
// retirement date first, newest first.
func active(keys []Key, now time.Time) []Key {
	var out []Key
	for _, key := range keys {
		if key.RetireAfter.IsZero() || now.Before(key.RetireAfter) {
			out = append(out, key)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		pi, pj := out[i].RetireAfter.IsZero(), out[j].RetireAfter.IsZero()
		if pi != pj {
			return pi
		}
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func (k *Keyring) path(key Key) string {
	return filepath.Join(k.dir, strings.Replace(key.ID, ":", "-", 1)+".pem")
}

func (k *Keyring) read() ([]Key, error) {
	entries, err := os.ReadDir(k.dir)
	if err != nil {
		return nil, fmt.Errorf("signing: read key folder: %w", err)
	}
	var keys []Key
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasPrefix(name, "ed25519-") || !strings.HasSuffix(name, ".pem") {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(k.dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue // retired by another process since ReadDir
		}
		if err != nil {
			return nil, fmt.Errorf("signing: %w", err)
		}
		key, err := parse(raw)
		if err != nil {
			return nil, fmt.Errorf("signing: %s: %w", name, err)
		}
		keys = append(keys, key)
	}
	return keys, nil
}

func parse(raw []byte) (Key, error) {
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "PRIVATE KEY" {
		return Key{}, errors.New("not a PEM PRIVATE KEY block")
	}
	anyKey, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return Key{}, fmt.Errorf("PKCS#8: %w", err)
	}
	priv, ok := anyKey.(ed25519.PrivateKey)
	if !ok {
		return Key{}, fmt.Errorf("not an Ed25519 key (%T)", anyKey)
	}
	pub := priv.Public().(ed25519.PublicKey)
	key := Key{ID: whitelist.KeyID(pub), Private: priv, Public: pub}
	if key.Created, err = time.Parse(time.RFC3339, block.Headers["Created"]); err != nil {
		return Key{}, fmt.Errorf("Created header: %w", err)
	}
	if s := block.Headers["Retire-After"]; s != "" {
		if key.RetireAfter, err = time.Parse(time.RFC3339, s); err != nil {
			return Key{}, fmt.Errorf("Retire-After header: %w", err)
		}
	}
	return key, nil
}

func (k *Keyring) generate(now time.Time) (Key, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, fmt.Errorf("signing: generate: %w", err)
	}
	key := Key{ID: whitelist.KeyID(pub), Private: priv, Public: pub, Created: now.UTC().Truncate(time.Second)}
	return key, k.write(key)
}

// write stores key atomically (atomicfile: a 0600 temporary file, fsynced,
// renamed over the old, the folder fsynced).
func (k *Keyring) write(key Key) error {
	der, err := x509.MarshalPKCS8PrivateKey(key.Private)
	if err != nil {
		return fmt.Errorf("signing: encode %s: %w", key.ID, err)
	}
	headers := map[string]string{"Created": key.Created.UTC().Format(time.RFC3339)}
	if !key.RetireAfter.IsZero() {
		headers["Retire-After"] = key.RetireAfter.UTC().Format(time.RFC3339)
	}
	var buf bytes.Buffer
	if err := pem.Encode(&buf, &pem.Block{Type: "PRIVATE KEY", Headers: headers, Bytes: der}); err != nil {
		return fmt.Errorf("signing: encode %s: %w", key.ID, err)
	}
	if err := atomicfile.Write(k.path(key), buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("signing: write %s: %w", key.ID, err)
	}
	return nil
}

// lockStale is how old a lock file may be before it is taken to belong to a
// process that died holding it.
const lockStale = 30 * time.Second

// locked runs f holding DIR/.lock, a file created exclusively (portable,
// unlike flock), waiting up to 10 s for another process to finish.
func (k *Keyring) locked(f func() error) error {
	lock := filepath.Join(k.dir, ".lock")
	deadline := time.Now().Add(10 * time.Second)
	for {
		fd, err := os.OpenFile(lock, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			fd.Close()
			break
		}
		if !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("signing: lock: %w", err)
		}
		if st, err := os.Stat(lock); err == nil && time.Since(st.ModTime()) > lockStale {
			os.Remove(lock)
			continue
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("signing: lock %s held by another process for too long", lock)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer os.Remove(lock)
	return f()
}

// PrivateKeys lists the keys' private halves in order, for whitelist.Sign.
func PrivateKeys(keys []Key) []ed25519.PrivateKey {
	out := make([]ed25519.PrivateKey, len(keys))
	for i, key := range keys {
		out[i] = key.Private
	}
	return out
}
