package signing

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/detour-project/detour/shared/whitelist"
)

func TestFirstOpenMakesOneKeyStoredPrivately(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	k, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := k.Active()
	if err != nil || len(keys) != 1 {
		t.Fatalf("active keys: %v %v", keys, err)
	}
	st, err := os.Stat(k.path(keys[0]))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", st.Mode().Perm())
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Fatalf("key folder mode %v, want 0700", st.Mode().Perm())
	}
	// A second open (another process) finds the same key.
	k2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := k2.Active()
	if len(again) != 1 || again[0].ID != keys[0].ID || !again[0].Private.Equal(keys[0].Private) {
		t.Fatalf("reopen: got %v, want the key made first", again)
	}
}

func TestConcurrentFirstOpenMakesOnePrimary(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := Open(dir); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	k, _ := Open(dir)
	keys, _ := k.Active()
	if len(keys) != 1 {
		t.Fatalf("%d keys after concurrent first opens, want 1", len(keys))
	}
}

func TestRotationGraceThenRetire(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	k, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	k.Now = func() time.Time { return now }
	old, _ := k.Active()
	now = now.Add(time.Hour)
	nk, err := k.Rotate(48 * time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		at   time.Duration // after the rotation
		want []string
	}{
		{0, []string{nk.ID, old[0].ID}},
		{47 * time.Hour, []string{nk.ID, old[0].ID}},
		{48 * time.Hour, []string{nk.ID}},
		{100 * time.Hour, []string{nk.ID}},
	}
	rotated := now
	for _, s := range steps {
		now = rotated.Add(s.at)
		keys, err := k.Active()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, key := range keys {
			got = append(got, key.ID)
		}
		if len(got) != len(s.want) {
			t.Fatalf("at +%v: keys %v, want %v", s.at, got, s.want)
		}
		for i := range got {
			if got[i] != s.want[i] {
				t.Fatalf("at +%v: keys %v, want %v (primary first)", s.at, got, s.want)
			}
		}
		// Both sign during the grace period; the envelope verifies with either.
		env, err := whitelist.Sign(&whitelist.Document{Schema: 1, Version: 1}, PrivateKeys(keys)...)
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range keys {
			if _, _, err := whitelist.Verify(env, []ed25519.PublicKey{key.Public}); err != nil {
				t.Fatalf("at +%v: verify with %s: %v", s.at, key.ID, err)
			}
		}
	}
	if _, err := os.Stat(k.path(old[0])); !os.IsNotExist(err) {
		t.Fatalf("retired key file still present: %v", err)
	}
}

func TestRotateTwiceKeepsEarliestRetirement(t *testing.T) {
	k, _ := Open(t.TempDir())
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k.Now = func() time.Time { return now }
	first, _ := k.Active()
	k.Rotate(10 * time.Hour)
	now = now.Add(time.Hour)
	k.Rotate(100 * time.Hour)
	keys, _ := k.Active()
	if len(keys) != 3 {
		t.Fatalf("%d keys, want 3", len(keys))
	}
	for _, key := range keys {
		if key.ID == first[0].ID && !key.RetireAfter.Equal(time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)) {
			t.Fatalf("first key retires at %v, want its first date kept", key.RetireAfter)
		}
	}
}

func TestCorruptKeyFileIsAnError(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ed25519-0000.pem"), []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil {
		t.Fatal("a corrupt key file must not be ignored: signing with a surprise key set is worse than failing")
	}
}
