package signing

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/detour-project/detour/server/masterkey"
	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/server/store/storetest"
)

func mustKey(t *testing.T) *masterkey.Key {
	t.Helper()
	k, err := masterkey.New(masterkey.Generate())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Hubs opening an empty database at once make one primary between them, and
// every hub reads the same keys.
func TestDBKeyringConcurrentOpenMakesOnePrimary(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	mk := mustKey(t)
	const n = 5
	rings := make([]*DBKeyring, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range rings {
		db, err := store.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			rings[i], errs[i] = OpenDB(context.Background(), db, mk)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("hub %d: %v", i, err)
		}
	}
	first, _ := rings[0].Active()
	if len(first) != 1 {
		t.Fatalf("want one key, got %d", len(first))
	}
	for _, r := range rings[1:] {
		keys, err := r.Active()
		if err != nil || len(keys) != 1 || keys[0].ID != first[0].ID || !keys[0].Private.Equal(first[0].Private) {
			t.Fatalf("hubs disagree: %v %v", keys, err)
		}
	}
}

func TestDBKeyringRotateRetireAndWrongMasterKey(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mk := mustKey(t)
		a, err := OpenDB(ctx, db, mk)
		if err != nil {
			t.Fatal(err)
		}
		b, err := OpenDB(ctx, db, mk) // another hub
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		a.Now = func() time.Time { return now }
		b.Now = a.Now
		old, _ := a.Active()
		nk, err := a.Rotate(time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := b.Active()
		if err != nil || len(keys) != 2 || keys[0].ID != nk.ID || keys[1].ID != old[0].ID || keys[1].RetireAfter.IsZero() {
			t.Fatalf("the other hub after a rotation: %+v %v", keys, err)
		}
		now = now.Add(2 * time.Hour) // past the grace period
		keys, err = b.Active()
		if err != nil || len(keys) != 1 || keys[0].ID != nk.ID {
			t.Fatalf("after grace: %+v %v", keys, err)
		}
		var rows int
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM signing_keys`).Scan(&rows)
		if rows != 1 {
			t.Fatalf("a retired key must be deleted; %d rows", rows)
		}
		if _, err := OpenDB(ctx, db, mustKey(t)); err == nil || !strings.Contains(err.Error(), "every hub needs the same file") {
			t.Fatalf("another master key: got %v", err)
		}
		var sealed string
		db.QueryRowContext(ctx, `SELECT private_key FROM signing_keys`).Scan(&sealed)
		if !masterkey.IsSealed(sealed) {
			t.Fatalf("stored key is not sealed: %.20s", sealed)
		}
	})
}

func TestDBKeyringImportsFolderKeys(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		dir := filepath.Join(t.TempDir(), "keys")
		if has, err := HasKeys(dir); has || err != nil {
			t.Fatalf("missing folder: %v %v", has, err)
		}
		folder, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if has, _ := HasKeys(dir); !has {
			t.Fatal("HasKeys after Open")
		}
		fk, _ := folder.Active()
		ctx := context.Background()
		// A database that has no keys yet: import before the first OpenDB
		// would make one, as `admin key move-to-db` does.
		mk := mustKey(t)
		for i, want := range []int{1, 0} {
			n, err := ImportToDB(ctx, db, mk, fk)
			if err != nil || n != want {
				t.Fatalf("import %d: %d %v", i, n, err)
			}
		}
		r, err := OpenDB(ctx, db, mk)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := r.Active()
		if err != nil || len(keys) != 1 || keys[0].ID != fk[0].ID {
			t.Fatalf("after import: %+v %v", keys, err)
		}
	})
}
