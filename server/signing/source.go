package signing

import (
	"time"

	"github.com/detour-project/detour/shared/whitelist"
)

// Source is where a hub's signing keys live: a folder of its own (Keyring,
// a single hub) or the database that every hub of a cluster shares
// (DBKeyring, sealed with the master key). Both keep the same rules: one
// primary, older keys signing through their grace period, then retired.
type Source interface {
	// Active returns the keys that sign now, primary first, making a
	// first key if there is none.
	Active() ([]Key, error)
	// Rotate makes a new primary; older keys retire after grace.
	Rotate(grace time.Duration) (Key, error)
	// Public is the published form of Active.
	Public() ([]whitelist.PublicKey, error)
	// Where says where the keys are, for messages.
	Where() string
}

var (
	_ Source = (*Keyring)(nil)
	_ Source = (*DBKeyring)(nil)
)

// Where names the key folder.
func (k *Keyring) Where() string { return "folder " + k.dir }

// HasKeys says whether dir holds any signing key file, without creating
// the folder or a key: a hub moving to keys in the database must not leave
// keys its helpers pinned behind.
func HasKeys(dir string) (bool, error) {
	k := &Keyring{dir: dir, Now: time.Now}
	keys, err := k.read()
	if err != nil {
		if isNotExist(err) {
			return false, nil
		}
		return false, err
	}
	return len(keys) > 0, nil
}

func publicOf(keys []Key) []whitelist.PublicKey {
	out := make([]whitelist.PublicKey, len(keys))
	for i, key := range keys {
		out[i] = whitelist.Export(key.Public)
	}
	return out
}
