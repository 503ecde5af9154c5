package hub

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/detour-project/detour/server/masterkey"
	"github.com/detour-project/detour/server/store/storetest"
	"github.com/detour-project/detour/shared/whitelist"
	"github.com/gorilla/websocket"
)

// Hubs started at the same moment on one empty PostgreSQL database all come
// up (migrations, seeding and first version included) and agree on the
// catalog version.
func TestHubsStartTogetherOnOnePostgres(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	const n = 4
	type result struct {
		h   *Hub
		err error
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := make(chan result, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		dir := t.TempDir()
		go func() {
			<-start
			h, err := Open(ctx, Config{DataDir: dir, DSN: dsn}, nil)
			res <- result{h, err}
		}()
	}
	close(start)
	var hubs []*Hub
	for i := 0; i < n; i++ {
		r := <-res
		if r.err != nil {
			t.Errorf("hub %d did not come up: %v", i, r.err)
			continue
		}
		hubs = append(hubs, r.h)
	}
	defer func() {
		for _, h := range hubs {
			h.Close()
		}
	}()
	for _, h := range hubs[1:] {
		if a, b := h.Catalog.Document().Version, hubs[0].Catalog.Document().Version; a != b {
			t.Errorf("hubs disagree on the first version: %d and %d", a, b)
		}
	}
}

func clusterConfig(t *testing.T, dsn string) func() Config {
	mk := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(mk, masterkey.Generate(), 0o600); err != nil {
		t.Fatal(err)
	}
	return func() Config { return Config{DataDir: t.TempDir(), DSN: dsn, MasterKeyFile: mk} }
}

func keyIDs(keys []ed25519.PublicKey) string {
	var ids []string
	for _, k := range keys {
		ids = append(ids, whitelist.KeyID(k))
	}
	sort.Strings(ids)
	return strings.Join(ids, ",")
}

// Two hubs on one database and master key sign with the same keys, and a
// change made through a third process (an admin command) or a key rotation
// reaches both hubs' WebSocket clients by notification: the fallback poll
// is set to a minute, so only LISTEN/NOTIFY can deliver it within 2 s.
func TestClusterSharesKeysAndHearsChanges(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	old := listenPoll
	listenPoll = time.Minute
	t.Cleanup(func() { listenPoll = old })
	cfg := clusterConfig(t, dsn)
	a, b := openHub(t, cfg()), openHub(t, cfg())
	sa, sb := serveHub(t, a), serveHub(t, b)
	docA, _, _, keysA := fetchVerified(t, sa.URL)
	_, _, _, keysB := fetchVerified(t, sb.URL)
	if keyIDs(keysA) != keyIDs(keysB) || len(keysA) != 1 {
		t.Fatalf("hubs publish different signing keys: %s and %s", keyIDs(keysA), keyIDs(keysB))
	}
	wsA, wsB := dialWS(t, sa, nil), dialWS(t, sb, nil)
	readEnvelope(t, wsA, keysA, docA.Version, time.Now().Add(5*time.Second))
	readEnvelope(t, wsB, keysA, docA.Version, time.Now().Add(5*time.Second))
	// Both listeners are up, so both hubs poll only once a minute.
	waitFor(t, 10*time.Second, func() bool { return a.Listening() && b.Listening() })
	time.Sleep(2 * pollInterval) // the last short poll's timer has been replaced by a long one

	admin := openHub(t, cfg())
	cat, _ := admin.CatalogStore()
	ctx := context.Background()
	if _, err := cat.AddOrganisation(ctx, whitelist.Organisation{ID: "north", Name: "North", Sector: "health"}, "test"); err != nil {
		t.Fatal(err)
	}
	want, err := cat.SetPolicy(ctx, whitelist.Policy{Org: "north", Service: "zoom", Status: whitelist.Blocked}, "test")
	if err != nil {
		t.Fatal(err)
	}
	changed := time.Now()
	for name, ws := range map[string]*websocket.Conn{"a": wsA, "b": wsB} {
		doc, _ := readEnvelope(t, ws, keysA, want, changed.Add(2*time.Second))
		t.Logf("hub %s pushed version %d %v after the change", name, doc.Version, time.Since(changed).Round(time.Millisecond))
	}

	// A rotation by the admin process: both hubs re-sign with both keys.
	keys, _ := admin.WhitelistKeys()
	nk, err := keys.Rotate(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rotated := time.Now()
	for name, ws := range map[string]*websocket.Conn{"a": wsA, "b": wsB} {
		_, env := readEnvelope(t, ws, keysA, want, rotated.Add(2*time.Second))
		for len(env.Signatures) < 2 {
			_, env = readEnvelope(t, ws, keysA, want, rotated.Add(2*time.Second))
		}
		if env.Signatures[0].KeyID != nk.ID && env.Signatures[1].KeyID != nk.ID {
			t.Fatalf("hub %s: not signed with the new key %s", name, nk.ID)
		}
		t.Logf("hub %s re-signed %v after the rotation", name, time.Since(rotated).Round(time.Millisecond))
	}
}

func waitFor(t *testing.T, d time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
