package reports

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/detour-project/detour/server/masterkey"
	"github.com/detour-project/detour/server/store"
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

// issuerPurpose names issuer keys to the master key (its HKDF label).
const issuerPurpose = "token issuer key"

// seal stores an issuer private key under the master key when the hub has
// one, else under the hub's own seal key.
func (s *Service) seal(org, keyID string, der []byte) (string, error) {
	if s.cfg.MasterKey != nil {
		return s.cfg.MasterKey.Seal(issuerPurpose, org+"\x00"+keyID, der)
	}
	return seal(s.cfg.SealKey, org, keyID, der)
}

// unseal reads a stored issuer key in any of the forms seal has written.
func (s *Service) unseal(org, keyID, stored string) ([]byte, error) {
	if masterkey.IsSealed(stored) {
		if s.cfg.MasterKey == nil {
			return nil, fmt.Errorf("reports: issuer key of %s is sealed with a master key: start the hub with --master-key-file", org)
		}
		der, err := s.cfg.MasterKey.Unseal(issuerPurpose, org+"\x00"+keyID, stored)
		if err != nil {
			return nil, fmt.Errorf("reports: %w", err)
		}
		return der, nil
	}
	return unseal(s.cfg.SealKey, org, keyID, stored)
}

// ResealIssuerKeys seals every issuer key not yet under the master key with
// it (`admin key move-to-db`): afterwards hubs need only the master key
// file, not this hub's reports-seal.key. It says how many it resealed.
func (s *Service) ResealIssuerKeys(ctx context.Context) (int, error) {
	if s.cfg.MasterKey == nil {
		return 0, errors.New("reports: resealing issuer keys needs a master key")
	}
	n := 0
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		n = 0
		rows, err := tx.QueryContext(ctx, `SELECT key_id, org, private_key FROM issuer_keys`)
		if err != nil {
			return fmt.Errorf("reports: reseal: %w", err)
		}
		type row struct{ id, org, stored string }
		var todo []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.org, &r.stored); err != nil {
				rows.Close()
				return fmt.Errorf("reports: reseal: %w", err)
			}
			if !masterkey.IsSealed(r.stored) {
				todo = append(todo, r)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reports: reseal: %w", err)
		}
		for _, r := range todo {
			der, err := unseal(s.cfg.SealKey, r.org, r.id, r.stored)
			if err != nil {
				return err
			}
			sealed, err := s.cfg.MasterKey.Seal(issuerPurpose, r.org+"\x00"+r.id, der)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE issuer_keys SET private_key = ? WHERE key_id = ?`, sealed, r.id); err != nil {
				return fmt.Errorf("reports: reseal %s: %w", r.id, err)
			}
			n++
		}
		return nil
	})
	return n, err
}
