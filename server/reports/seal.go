package reports

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

const sealedPrefix = "sealed:"

// seal encrypts an issuer private key for storage with AES-256-GCM under
// key, binding it to its organisation and key id (so a sealed key cannot be
// moved to another organisation's row). Without a key it stores plain
// base64.
func seal(key []byte, org, keyID string, der []byte) (string, error) {
	if key == nil {
		return base64.StdEncoding.EncodeToString(der), nil
	}
	aead, err := newAEAD(key)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("reports: seal: %w", err)
	}
	ct := aead.Seal(nonce, nonce, der, []byte(org+"\x00"+keyID))
	return sealedPrefix + base64.StdEncoding.EncodeToString(ct), nil
}

func unseal(key []byte, org, keyID, stored string) ([]byte, error) {
	rest, sealed := strings.CutPrefix(stored, sealedPrefix)
	raw, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("reports: issuer key of %s is not base64: %w", org, err)
	}
	if !sealed {
		return raw, nil
	}
	if key == nil {
		return nil, fmt.Errorf("reports: issuer key of %s is sealed and this hub has no seal key", org)
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(raw) < aead.NonceSize() {
		return nil, fmt.Errorf("reports: sealed issuer key of %s is truncated", org)
	}
	der, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(org+"\x00"+keyID))
	if err != nil {
		return nil, fmt.Errorf("reports: issuer key of %s does not unseal with this hub's seal key: %w", org, err)
	}
	return der, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, errors.New("reports: seal key must be 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("reports: seal key: %w", err)
	}
	return cipher.NewGCM(block)
}
