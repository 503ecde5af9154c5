package whitelist

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/detour-project/detour/helper/config"
	wl "github.com/detour-project/detour/shared/whitelist"
)

func mustSync(t *testing.T, c *Client) bool {
	t.Helper()
	changed, err := c.SyncNow(context.Background())
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return changed
}

func version(c *Client) int64 {
	if d := c.Current(); d != nil {
		return d.Version
	}
	return 0
}

// TestSyncRefuses holds a good version 5, then offers each bad envelope over
// HTTP: every one is refused with the right error, and neither the copy in
// memory nor the cache file changes.
func TestSyncRefuses(t *testing.T) {
	hubKey, attacker := newKey(t), newKey(t)
	now := time.Now()
	cases := []struct {
		name string
		env  func() *wl.Envelope
		want error
	}{
		{"forged signature under the pinned key's id", func() *wl.Envelope {
			env := sign(t, doc(t, 6, now, time.Hour), attacker)
			env.Signatures[0].KeyID = pub(hubKey).KeyID
			return env
		}, wl.ErrBadSignature},
		{"altered payload", func() *wl.Envelope {
			env := sign(t, doc(t, 6, now, time.Hour), hubKey)
			p, _ := base64.StdEncoding.DecodeString(env.Payload)
			p = bytes.Replace(p, []byte(`"status":"blocked"`), []byte(`"status":"approved"`), 1)
			env.Payload = base64.StdEncoding.EncodeToString(p)
			return env
		}, wl.ErrBadSignature},
		{"unknown key", func() *wl.Envelope { return sign(t, doc(t, 6, now, time.Hour), attacker) }, wl.ErrNoTrustedSignature},
		{"no signature", func() *wl.Envelope {
			env := sign(t, doc(t, 6, now, time.Hour), hubKey)
			env.Signatures = nil
			return env
		}, wl.ErrNoTrustedSignature},
		{"rollback to an older version", func() *wl.Envelope { return sign(t, doc(t, 4, now, time.Hour), hubKey) }, ErrRollback},
		{"same version, different content", func() *wl.Envelope {
			return sign(t, doc(t, 5, now.Add(time.Minute), time.Hour), hubKey)
		}, ErrConflict},
		{"newer but already expired", func() *wl.Envelope { return sign(t, doc(t, 9, now.Add(-3*time.Hour), time.Hour), hubKey) }, ErrExpired},
		{"payload not base64", func() *wl.Envelope {
			env := sign(t, doc(t, 6, now, time.Hour), hubKey)
			env.Payload = "%%%"
			return env
		}, wl.ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hub := newTestHub(t)
			dir := t.TempDir()
			c, _ := newClient(t, dir, hub.URL(), hubKey)
			hub.set(sign(t, doc(t, 5, now, time.Hour), hubKey))
			mustSync(t, c)
			before, err := os.ReadFile(filepath.Join(dir, CacheName))
			if err != nil {
				t.Fatal(err)
			}

			hub.set(tc.env())
			changed, err := c.SyncNow(context.Background())
			if !errors.Is(err, tc.want) {
				t.Fatalf("sync error = %v, want %v", err, tc.want)
			}
			if changed || version(c) != 5 {
				t.Errorf("changed=%v version=%d after a refused envelope, want the held version 5", changed, version(c))
			}
			after, _ := os.ReadFile(filepath.Join(dir, CacheName))
			if !bytes.Equal(before, after) {
				t.Error("the cache file changed after a refused envelope")
			}
		})
	}
}

func TestNoPinnedKey(t *testing.T) {
	hubKey := newKey(t)
	hub := newTestHub(t)
	hub.set(sign(t, doc(t, 1, time.Now(), time.Hour), hubKey))
	c, _ := newClient(t, t.TempDir(), hub.URL())
	_, err := c.SyncNow(context.Background())
	if !errors.Is(err, ErrNoPinnedKey) || !strings.Contains(err.Error(), "run detour enrol") {
		t.Fatalf("sync without a pinned key: %v, want %v", err, ErrNoPinnedKey)
	}
	if gets, _, _ := hub.stats(); gets != 0 {
		t.Errorf("the hub was asked %d times although nothing could be trusted", gets)
	}
	if c.Current() != nil {
		t.Error("a document was accepted without a pinned key")
	}
}

func TestCacheSurvivesRestart(t *testing.T) {
	hubKey := newKey(t)
	hub := newTestHub(t)
	dir := t.TempDir()
	c, _ := newClient(t, dir, hub.URL(), hubKey)
	hub.set(sign(t, doc(t, 3, time.Now(), time.Hour), hubKey))
	mustSync(t, c)

	b, err := os.ReadFile(filepath.Join(dir, CacheName))
	if err != nil {
		t.Fatal(err)
	}
	var f cacheFile
	if err := json.Unmarshal(b, &f); err != nil || f.ETag == "" || f.FetchedAt.IsZero() {
		t.Fatalf("cache file lacks etag or fetched_at: %s (%v)", b, err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, CacheName)); fi.Mode().Perm() != 0o600 {
		t.Errorf("cache mode %v, want 0600", fi.Mode().Perm())
	}

	again, _ := newClient(t, dir, hub.URL(), hubKey)
	if version(again) != 3 || again.Stale() {
		t.Fatalf("after restart: version %d stale %v, want 3 and fresh", version(again), again.Stale())
	}
	// The restarted agent asks with the cached ETag and gets 304.
	if mustSync(t, again) {
		t.Error("304 reported as a change")
	}
	if _, nm, inm := hub.stats(); nm != 1 || inm != f.ETag {
		t.Errorf("304s %d, If-None-Match %q; want 1 and %q", nm, inm, f.ETag)
	}
}

// TestTamperedCache: a cache that does not verify is never trusted, its
// ETag is not sent (a 304 would confirm a copy we do not have), and the next
// sync replaces it — with a version lower than the tampered file claims, but
// not lower than the version accepted before (TestRollbackSurvivesCache).
func TestTamperedCache(t *testing.T) {
	hubKey, other := newKey(t), newKey(t)
	cases := []struct {
		name   string
		tamper func(t *testing.T, b []byte) []byte
	}{
		{"truncated", func(t *testing.T, b []byte) []byte { return b[:len(b)/2] }},
		{"garbage", func(t *testing.T, b []byte) []byte { return []byte("\x00\x01 not json") }},
		{"empty", func(t *testing.T, b []byte) []byte { return nil }},
		{"payload edited", func(t *testing.T, b []byte) []byte {
			var f cacheFile
			json.Unmarshal(b, &f)
			p, _ := base64.StdEncoding.DecodeString(f.Envelope.Payload)
			p = bytes.Replace(p, []byte(`"version":9`), []byte(`"version":99`), 1)
			f.Envelope.Payload = base64.StdEncoding.EncodeToString(p)
			out, _ := json.Marshal(f)
			return out
		}},
		{"re-signed by another key", func(t *testing.T, b []byte) []byte {
			var f cacheFile
			json.Unmarshal(b, &f)
			f.Envelope = *sign(t, doc(t, 99, time.Now(), time.Hour), other)
			out, _ := json.Marshal(f)
			return out
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hub := newTestHub(t)
			dir := t.TempDir()
			path := filepath.Join(dir, CacheName)
			c, _ := newClient(t, dir, hub.URL(), hubKey)
			hub.set(sign(t, doc(t, 9, time.Now(), time.Hour), hubKey))
			mustSync(t, c)
			b, _ := os.ReadFile(path)
			if err := os.WriteFile(path, tc.tamper(t, b), 0o600); err != nil {
				t.Fatal(err)
			}

			restarted, _ := newClient(t, dir, hub.URL(), hubKey)
			if restarted.Current() != nil || !restarted.Stale() {
				t.Fatalf("tampered cache trusted: version %d", version(restarted))
			}
			if s := restarted.Suggest("zoom.us", "example-borough"); s.Status != wl.Unknown || !s.Stale {
				t.Errorf("without a trusted copy suggest said status %q stale %v", s.Status, s.Stale)
			}

			hub.set(sign(t, doc(t, 10, time.Now(), time.Hour), hubKey))
			if !mustSync(t, restarted) || version(restarted) != 10 {
				t.Fatalf("sync after a tampered cache: version %d, want 10", version(restarted))
			}
			if _, _, inm := hub.stats(); inm != "" {
				t.Errorf("sent If-None-Match %q for a cache that did not verify", inm)
			}
			keys, _ := PinnedKeys([]wl.PublicKey{pub(hubKey)})
			if cp, err := ReadCache(path, keys); err != nil || cp.Doc.Version != 10 {
				t.Fatalf("cache not replaced by a good copy: %v", err)
			}
		})
	}
}

func TestExpiredCopyIsUsedButStale(t *testing.T) {
	hubKey := newKey(t)
	hub := newTestHub(t)
	dir := t.TempDir()
	clock := time.Now()
	s := &settings{}
	s.cfg.Hub, s.cfg.WhitelistKeys = hub.URL(), []wl.PublicKey{pub(hubKey)}
	c := New(Options{CachePath: filepath.Join(dir, CacheName), Settings: s.get, Now: func() time.Time { return clock }})
	hub.set(sign(t, doc(t, 1, clock, time.Hour), hubKey))
	mustSync(t, c)
	// Two hours on, the copy held has expired: it is still used, and stale.
	clock = clock.Add(2 * time.Hour)
	if !c.Stale() {
		t.Error("an expired copy is not stale")
	}
	s2 := c.Suggest("zoom.us", "example-borough")
	if s2.Status != wl.Blocked || !s2.Stale || len(s2.Alternatives) == 0 {
		t.Errorf("expired copy not used: %+v", s2)
	}
	if st := c.Status(); !st.Stale || st.Version == nil || *st.Version != 1 {
		t.Errorf("status %+v", st)
	}
	// A document that arrives already expired is refused even with nothing
	// better held, and the helper keeps its copy.
	fresh := New(Options{CachePath: filepath.Join(t.TempDir(), CacheName), Settings: s.get, Now: func() time.Time { return clock }})
	if _, err := fresh.SyncNow(context.Background()); !errors.Is(err, ErrExpired) {
		t.Errorf("an expired document on first sync: %v, want ErrExpired", err)
	}
	if fresh.Current() != nil {
		t.Error("an expired document was taken on first sync")
	}
}

// TestHubDownAtStart: the agent starts with a good cache fetched two hours
// ago and a hub that refuses connections: it uses the cache and says stale.
func TestHubDownAtStart(t *testing.T) {
	hubKey := newKey(t)
	dir := t.TempDir()
	hub := newTestHub(t)
	hub.set(sign(t, doc(t, 4, time.Now(), 24*time.Hour), hubKey))
	first, _ := newClient(t, dir, hub.URL(), hubKey)
	first.opt.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	mustSync(t, first)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String()
	l.Close()

	c, _ := newClient(t, dir, down, hubKey)
	_, err = c.SyncNow(context.Background())
	if !errors.Is(err, ErrHubUnreachable) {
		t.Fatalf("sync against a closed port: %v, want %v", err, ErrHubUnreachable)
	}
	if version(c) != 4 {
		t.Fatalf("cache not used: version %d", version(c))
	}
	st := c.Status()
	if !st.Stale || st.Reachable == nil || *st.Reachable {
		t.Errorf("status %+v, want stale and unreachable", st)
	}
	if s := c.Suggest("zoom.us", "example-borough"); !s.Stale || s.Status != wl.Blocked {
		t.Errorf("suggest from the cache: %+v", s)
	}
}

// TestKeyRotation: the hub signs with old and new keys during the grace
// period, then with the new key only; the helper follows once the new key
// is pinned, and its cache verifies under the new key alone.
func TestKeyRotation(t *testing.T) {
	oldKey, newK := newKey(t), newKey(t)
	hub := newTestHub(t)
	dir := t.TempDir()
	c, s := newClient(t, dir, hub.URL(), oldKey)
	now := time.Now()

	hub.set(sign(t, doc(t, 1, now, time.Hour), oldKey))
	mustSync(t, c)
	hub.set(sign(t, doc(t, 2, now, time.Hour), oldKey, newK))
	if !mustSync(t, c) || version(c) != 2 {
		t.Fatalf("dual-signed version not accepted with the old key pinned: %d", version(c))
	}

	hub.set(sign(t, doc(t, 3, now, time.Hour), newK))
	if _, err := c.SyncNow(context.Background()); !errors.Is(err, wl.ErrNoTrustedSignature) {
		t.Fatalf("new-key-only version with only the old key pinned: %v", err)
	}
	s.set(func(cfg *config.Config) { cfg.WhitelistKeys = []wl.PublicKey{pub(newK)} })
	if !mustSync(t, c) || version(c) != 3 {
		t.Fatalf("new-key-only version with the new key pinned: version %d", version(c))
	}

	restarted, _ := newClient(t, dir, hub.URL(), newK)
	if version(restarted) != 3 {
		t.Errorf("cache does not verify under the new key: version %d", version(restarted))
	}
	oldOnly, _ := newClient(t, dir, hub.URL(), oldKey)
	if oldOnly.Current() != nil {
		t.Error("cache signed by the new key only was trusted with only the old key pinned")
	}
}

// TestResignedSameVersion: after a key rotation the hub signs the same
// version again with the new key. The helper keeps the newer envelope, so
// its cache still verifies once only the new key is pinned.
func TestResignedSameVersion(t *testing.T) {
	oldKey, newK := newKey(t), newKey(t)
	hub := newTestHub(t)
	dir := t.TempDir()
	c, _ := newClient(t, dir, hub.URL(), oldKey)
	d := doc(t, 2, time.Now(), time.Hour)
	hub.set(sign(t, d, oldKey))
	mustSync(t, c)
	hub.set(sign(t, d, oldKey, newK))
	if mustSync(t, c) {
		t.Error("the same version signed again counted as a change")
	}
	restarted, _ := newClient(t, dir, hub.URL(), newK)
	if version(restarted) != 2 {
		t.Errorf("cache does not carry the new signature: version %d", version(restarted))
	}
}

// TestDeviceCredentialHeader: a hub that requires a device credential gets
// it on the fetch and on the push connection.
func TestDeviceCredentialHeader(t *testing.T) {
	key := newKey(t)
	hub := newTestHub(t)
	hub.require = "Device good"
	hub.set(sign(t, doc(t, 1, time.Now(), time.Hour), key))

	bare, _ := newClient(t, t.TempDir(), hub.URL(), key)
	if _, err := bare.SyncNow(context.Background()); !errors.Is(err, ErrHubRefused) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("without the credential: %v", err)
	}
	if st := bare.Status(); st.Reachable == nil || !*st.Reachable {
		t.Errorf("a hub that answered 401 is reachable: %+v", st)
	}

	s := &settings{}
	s.cfg.Hub, s.cfg.WhitelistKeys = hub.URL(), []wl.PublicKey{pub(key)}
	c := New(Options{CachePath: filepath.Join(t.TempDir(), CacheName), Settings: s.get,
		Header: func() http.Header { return http.Header{"Authorization": {"Device good"}} }})
	ch := updates(c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitVersion(t, ch, 1, 5*time.Second)
	hub.waitConn(t)
	hub.set(sign(t, doc(t, 2, time.Now(), time.Hour), key))
	waitVersion(t, ch, 2, time.Second)
}
