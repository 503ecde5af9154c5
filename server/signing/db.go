package signing

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/detour-project/detour/server/masterkey"
	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/shared/whitelist"
)

// Migrations are the signing domain's tables: the whitelist signing keys of
// a cluster, each private key sealed with the master key. The table exists
// in every database (empty for a hub with keys in its folder), so a hub
// started without the master key can see that the cluster's keys are here
// and refuse to sign with a folder key of its own.
var Migrations = []store.Step{{Version: 1, SQL: `CREATE TABLE signing_keys (
	key_id       TEXT PRIMARY KEY,
	private_key  TEXT NOT NULL,   -- PKCS#8, sealed with the master key
	created_at   TEXT NOT NULL,   -- RFC 3339, seconds
	retire_after TEXT NOT NULL    -- RFC 3339, or '' for a primary
)`}}

// sealPurpose names what the master key seals here (HKDF label and
// additional data).
const sealPurpose = "whitelist signing key"

// lockName serialises every change to signing_keys across processes.
const lockName = "signing_keys"

// NotifyChannel announces a change of the key set (a first key, a rotation,
// a retirement) at commit, so every hub re-signs at once.
const NotifyChannel = "detour_signing_keys"

// DBKeyring keeps the signing keys in the shared database. Every change
// (first key, rotation, retirement) is one transaction under a lock, so N
// hubs starting on an empty database make one primary between them, and a
// rotation switches every hub at its next read.
type DBKeyring struct {
	db *store.DB
	mk *masterkey.Key
	// Now is the clock (tests move it to see keys retire).
	Now func() time.Time
	// Timeout bounds each database call (default 10 s).
	Timeout time.Duration

	mu    sync.Mutex
	cache map[string]Key // sealed value -> unsealed key: unsealing on every read is wasted work
}

// CountInDB says how many signing keys the database holds (0 when the
// signing tables are not there yet).
func CountInDB(ctx context.Context, db *store.DB) (int, error) {
	if err := db.Migrate(ctx, "signing", Migrations); err != nil {
		return 0, err
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM signing_keys`).Scan(&n); err != nil {
		return 0, fmt.Errorf("signing: count keys: %w", err)
	}
	return n, nil
}

// OpenDB migrates the signing tables and makes a first key if the database
// holds no active key.
func OpenDB(ctx context.Context, db *store.DB, mk *masterkey.Key) (*DBKeyring, error) {
	k, err := newDB(ctx, db, mk)
	if err != nil {
		return nil, err
	}
	if _, err := k.active(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

// ImportToDB adds keys (from a hub's folder, by `admin key move-to-db`)
// that the database does not hold yet, keeping their dates, before any hub
// makes a key of its own there; it says how many it added.
func ImportToDB(ctx context.Context, db *store.DB, mk *masterkey.Key, keys []Key) (int, error) {
	k, err := newDB(ctx, db, mk)
	if err != nil {
		return 0, err
	}
	return k.importKeys(ctx, keys)
}

func newDB(ctx context.Context, db *store.DB, mk *masterkey.Key) (*DBKeyring, error) {
	if mk == nil {
		return nil, errors.New("signing: keys in the database need a master key")
	}
	if err := db.Migrate(ctx, "signing", Migrations); err != nil {
		return nil, err
	}
	return &DBKeyring{db: db, mk: mk, Now: time.Now, Timeout: 10 * time.Second, cache: map[string]Key{}}, nil
}

// Where says the keys are in the database.
func (k *DBKeyring) Where() string { return "database (master key " + k.mk.ID() + ")" }

func (k *DBKeyring) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), k.Timeout)
}

// Active returns the keys that sign now, primary first; see Keyring.Active.
func (k *DBKeyring) Active() ([]Key, error) {
	ctx, cancel := k.ctx()
	defer cancel()
	return k.active(ctx)
}

func (k *DBKeyring) active(ctx context.Context) ([]Key, error) {
	keys, err := k.read(ctx, k.db)
	if err != nil {
		return nil, err
	}
	now := k.Now()
	if !needsWrite(keys, now) {
		return active(keys, now), nil
	}
	var out []Key
	err = k.db.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.Lock(ctx, lockName); err != nil {
			return err
		}
		keys, err := k.read(ctx, tx) // again, under the lock
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM signing_keys WHERE retire_after <> '' AND retire_after <= ?`, stamp(now)); err != nil {
			return fmt.Errorf("signing: retire keys: %w", err)
		}
		out = active(keys, now)
		if len(out) == 0 || !out[0].RetireAfter.IsZero() {
			nk, err := k.insert(ctx, tx, now)
			if err != nil {
				return err
			}
			out = append([]Key{nk}, out...)
		}
		return tx.Notify(ctx, NotifyChannel, "")
	})
	return out, err
}

// Public returns the published form of the active keys, primary first.
func (k *DBKeyring) Public() ([]whitelist.PublicKey, error) {
	keys, err := k.Active()
	if err != nil {
		return nil, err
	}
	return publicOf(keys), nil
}

// Rotate makes a new primary; see Keyring.Rotate. Every hub signs with it
// (and still with the old key, through grace) from its next read.
func (k *DBKeyring) Rotate(grace time.Duration) (Key, error) {
	if grace <= 0 {
		grace = DefaultGrace
	}
	ctx, cancel := k.ctx()
	defer cancel()
	var nk Key
	err := k.db.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.Lock(ctx, lockName); err != nil {
			return err
		}
		now := k.Now()
		retire := stamp(now.Add(grace))
		if _, err := tx.ExecContext(ctx, `UPDATE signing_keys SET retire_after = ? WHERE retire_after = ''`, retire); err != nil {
			return fmt.Errorf("signing: rotate: %w", err)
		}
		var err error
		if nk, err = k.insert(ctx, tx, now); err != nil {
			return err
		}
		return tx.Notify(ctx, NotifyChannel, "")
	})
	return nk, err
}

func (k *DBKeyring) importKeys(ctx context.Context, keys []Key) (int, error) {
	added := 0
	err := k.db.InTx(ctx, func(tx *store.Tx) error {
		added = 0
		if err := tx.Lock(ctx, lockName); err != nil {
			return err
		}
		for _, key := range keys {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM signing_keys WHERE key_id = ?`, key.ID).Scan(&n); err != nil {
				return fmt.Errorf("signing: import %s: %w", key.ID, err)
			}
			if n > 0 {
				continue
			}
			if err := k.store(ctx, tx, key); err != nil {
				return err
			}
			added++
		}
		return tx.Notify(ctx, NotifyChannel, "")
	})
	return added, err
}

func (k *DBKeyring) insert(ctx context.Context, tx *store.Tx, now time.Time) (Key, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, fmt.Errorf("signing: generate: %w", err)
	}
	key := Key{ID: whitelist.KeyID(pub), Private: priv, Public: pub, Created: now.UTC().Truncate(time.Second)}
	return key, k.store(ctx, tx, key)
}

func (k *DBKeyring) store(ctx context.Context, tx *store.Tx, key Key) error {
	der, err := x509.MarshalPKCS8PrivateKey(key.Private)
	if err != nil {
		return fmt.Errorf("signing: encode %s: %w", key.ID, err)
	}
	sealed, err := k.mk.Seal(sealPurpose, key.ID, der)
	if err != nil {
		return fmt.Errorf("signing: seal %s: %w", key.ID, err)
	}
	retire := ""
	if !key.RetireAfter.IsZero() {
		retire = stamp(key.RetireAfter)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO signing_keys (key_id, private_key, created_at, retire_after) VALUES (?, ?, ?, ?)`,
		key.ID, sealed, stamp(key.Created), retire); err != nil {
		return fmt.Errorf("signing: store %s: %w", key.ID, err)
	}
	return nil
}

func (k *DBKeyring) read(ctx context.Context, q store.Querier) ([]Key, error) {
	rows, err := q.QueryContext(ctx, `SELECT key_id, private_key, created_at, retire_after FROM signing_keys`)
	if err != nil {
		return nil, fmt.Errorf("signing: read keys: %w", err)
	}
	defer rows.Close()
	var keys []Key
	for rows.Next() {
		var id, sealed, created, retire string
		if err := rows.Scan(&id, &sealed, &created, &retire); err != nil {
			return nil, fmt.Errorf("signing: read keys: %w", err)
		}
		key, err := k.unseal(id, sealed)
		if err != nil {
			return nil, err
		}
		if key.Created, err = time.Parse(time.RFC3339, created); err != nil {
			return nil, fmt.Errorf("signing: key %s: created_at: %w", id, err)
		}
		key.RetireAfter = time.Time{}
		if retire != "" {
			if key.RetireAfter, err = time.Parse(time.RFC3339, retire); err != nil {
				return nil, fmt.Errorf("signing: key %s: retire_after: %w", id, err)
			}
		}
		keys = append(keys, key)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("signing: read keys: %w", err)
	}
	return keys, nil
}

func (k *DBKeyring) unseal(id, sealed string) (Key, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if key, ok := k.cache[sealed]; ok {
		return key, nil
	}
	der, err := k.mk.Unseal(sealPurpose, id, sealed)
	if err != nil {
		return Key{}, fmt.Errorf("signing: %w", err)
	}
	anyKey, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return Key{}, fmt.Errorf("signing: key %s: PKCS#8: %w", id, err)
	}
	priv, ok := anyKey.(ed25519.PrivateKey)
	if !ok {
		return Key{}, fmt.Errorf("signing: key %s is not an Ed25519 key (%T)", id, anyKey)
	}
	pub := priv.Public().(ed25519.PublicKey)
	if whitelist.KeyID(pub) != id {
		return Key{}, fmt.Errorf("signing: key %s: the stored key has id %s", id, whitelist.KeyID(pub))
	}
	key := Key{ID: id, Private: priv, Public: pub}
	if len(k.cache) > 64 {
		clear(k.cache) // retired keys' entries would otherwise stay forever
	}
	k.cache[sealed] = key
	return key, nil
}

func stamp(t time.Time) string { return t.UTC().Truncate(time.Second).Format(time.RFC3339) }

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
