// Package masterkey seals the hub's private keys (whitelist signing keys,
// token issuer keys) for storage in a database that several hubs share.
//
// Every hub of a cluster reads the same master key file (--master-key-file,
// 32 or more random bytes, e.g. `head -c 32 /dev/urandom`), so any hub can
// unseal what another sealed, while a copy of the database alone cannot sign
// a whitelist or mint a token. The file's bytes are never used directly: each
// purpose gets its own AES-256-GCM key derived with HKDF-SHA256, and every
// sealed value names the master key's id, so a hub given the wrong file says
// so instead of failing with an opaque authentication error.
//
// Sealed form: "mk1:<key id>:<base64 of nonce || ciphertext>". The
// additional data binds the purpose, the caller's context (an organisation
// and key id, say) and the master key id, so a sealed value cannot be moved
// to another row or purpose.
package masterkey

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
)

// MinSize is the least number of bytes a master key file must hold.
const MinSize = 32

// maxSize bounds what Load reads: a master key is small, and a large file
// named by mistake (a log, a disk image) should be refused, not read.
const maxSize = 4096

const prefix = "mk1:"

// Key is a loaded master key.
type Key struct {
	id     string
	secret []byte
}

// Load reads a master key file. It refuses a file shorter than MinSize
// bytes; the bytes are used as they are (a trailing newline included), so
// every hub must be given a byte-for-byte copy.
func Load(path string) (*Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	defer f.Close()
	buf, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("master key %s: %w", path, err)
	}
	if len(buf) > maxSize {
		return nil, fmt.Errorf("master key %s: larger than %d bytes; is this the right file?", path, maxSize)
	}
	k, err := New(buf)
	if err != nil {
		return nil, fmt.Errorf("master key %s: %w", path, err)
	}
	return k, nil
}

// New makes a Key from secret bytes (at least MinSize).
func New(secret []byte) (*Key, error) {
	if len(secret) < MinSize {
		return nil, fmt.Errorf("holds %d bytes; a master key needs at least %d random bytes (e.g. head -c 32 /dev/urandom > FILE)", len(secret), MinSize)
	}
	s := append([]byte(nil), secret...)
	m := hmac.New(sha256.New, s)
	m.Write([]byte("detour master key id"))
	return &Key{id: hex.EncodeToString(m.Sum(nil)[:8]), secret: s}, nil
}

// Generate makes a fresh random key (tests, and `admin` commands that
// write a new file).
func Generate() []byte {
	b := make([]byte, MinSize)
	rand.Read(b)
	return b
}

// ID names the key without revealing it: the first 8 bytes of an HMAC of a
// fixed label, in hex.
func (k *Key) ID() string { return k.id }

// IsSealed says whether stored is in this package's sealed form.
func IsSealed(stored string) bool { return strings.HasPrefix(stored, prefix) }

// Seal encrypts plaintext for purpose (e.g. "whitelist signing key") bound
// to context (e.g. the key's id).
func (k *Key) Seal(purpose, context string, plaintext []byte) (string, error) {
	aead, err := k.aead(purpose)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("master key: seal: %w", err)
	}
	ct := aead.Seal(nonce, nonce, plaintext, k.ad(purpose, context))
	return prefix + k.id + ":" + base64.StdEncoding.EncodeToString(ct), nil
}

// Unseal reverses Seal. A value sealed under another master key, or moved
// to another purpose or context, is refused with an error that says which.
func (k *Key) Unseal(purpose, context, stored string) ([]byte, error) {
	rest, ok := strings.CutPrefix(stored, prefix)
	if !ok {
		return nil, fmt.Errorf("master key: %s for %s is not sealed with a master key", purpose, context)
	}
	id, b64, ok := strings.Cut(rest, ":")
	if !ok {
		return nil, fmt.Errorf("master key: %s for %s: malformed sealed value", purpose, context)
	}
	if id != k.id {
		return nil, fmt.Errorf("master key: %s for %s was sealed with master key %s, but the given --master-key-file is key %s: every hub needs the same file", purpose, context, id, k.id)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("master key: %s for %s: %w", purpose, context, err)
	}
	aead, err := k.aead(purpose)
	if err != nil {
		return nil, err
	}
	if len(raw) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("master key: %s for %s is truncated", purpose, context)
	}
	pt, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], k.ad(purpose, context))
	if err != nil {
		return nil, fmt.Errorf("master key: %s for %s does not unseal (altered, or moved from another row): %w", purpose, context, err)
	}
	return pt, nil
}

func (k *Key) ad(purpose, context string) []byte {
	return []byte(purpose + "\x00" + context + "\x00" + k.id)
}

func (k *Key) aead(purpose string) (cipher.AEAD, error) {
	sub, err := hkdf.Key(sha256.New, k.secret, nil, "detour seal: "+purpose, 32)
	if err != nil {
		return nil, fmt.Errorf("master key: derive: %w", err)
	}
	block, err := aes.NewCipher(sub)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return cipher.NewGCM(block)
}
