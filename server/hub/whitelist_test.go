package hub

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/detour-project/detour/server/signing"
	"github.com/detour-project/detour/server/store/storetest"
	"github.com/detour-project/detour/shared/whitelist"
	"github.com/gorilla/websocket"
)

// engines runs f with a hub configuration on SQLite (in a data folder) and
// on PostgreSQL (a fresh schema; keys still in the data folder).
func engines(t *testing.T, f func(t *testing.T, cfg Config)) {
	t.Run("sqlite", func(t *testing.T) { f(t, Config{DataDir: t.TempDir()}) })
	t.Run("postgres", func(t *testing.T) {
		f(t, Config{DataDir: t.TempDir(), DSN: storetest.PostgresDSN(t)})
	})
}

func openHub(t *testing.T, cfg Config) *Hub {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h, err := Open(ctx, cfg, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.Close()
		cancel()
	})
	return h
}

func serveHub(t *testing.T, h *Hub) *httptest.Server {
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// fetchVerified gets the whitelist and the keys and verifies one with the
// other, as a helper that trusts /keys would.
func fetchVerified(t *testing.T, base string) (*whitelist.Document, *whitelist.Envelope, string, []ed25519.PublicKey) {
	t.Helper()
	resp, body := get(t, base+"/api/v1/keys", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("keys: %d %s", resp.StatusCode, body)
	}
	var keys struct {
		WhitelistKeys []whitelist.PublicKey `json:"whitelist_keys"`
		IssuerKeys    map[string]any        `json:"issuer_keys"`
	}
	if err := json.Unmarshal(body, &keys); err != nil || keys.IssuerKeys == nil {
		t.Fatalf("keys body %s: %v", body, err)
	}
	var trusted []ed25519.PublicKey
	for _, k := range keys.WhitelistKeys {
		pub, err := whitelist.ParsePublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		trusted = append(trusted, pub)
	}
	resp, body = get(t, base+"/api/v1/whitelist", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("whitelist: %d", resp.StatusCode)
	}
	var env whitelist.Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatal(err)
	}
	doc, _, err := whitelist.Verify(&env, trusted)
	if err != nil {
		t.Fatalf("verify with the keys from /keys: %v", err)
	}
	return doc, &env, resp.Header.Get("ETag"), trusted
}

func TestFreshHubServesSignedSeedWhitelist(t *testing.T) {
	engines(t, func(t *testing.T, cfg Config) {
		h := openHub(t, cfg)
		srv := serveHub(t, h)
		doc, _, etag, _ := fetchVerified(t, srv.URL)
		cats := map[string]bool{}
		for _, s := range doc.Services {
			cats[s.Category] = true
		}
		if len(doc.Services) < 60 || len(cats) < 8 || len(doc.Organisations) != 0 {
			t.Fatalf("%d services in %d categories, %d organisations; want >= 60 in 8, none (examples only when asked)",
				len(doc.Services), len(cats), len(doc.Organisations))
		}
		if !strings.HasPrefix(etag, `"`) || strings.HasPrefix(etag, "W/") {
			t.Fatalf("ETag %q is not a strong tag", etag)
		}
		cases := []struct {
			inm  string
			want int
		}{
			{etag, http.StatusNotModified},
			{"W/" + etag, http.StatusNotModified},
			{`"other", ` + etag, http.StatusNotModified},
			{"*", http.StatusNotModified},
			{`"stale"`, http.StatusOK},
			{"", http.StatusOK},
		}
		for _, tc := range cases {
			resp, body := get(t, srv.URL+"/api/v1/whitelist", map[string]string{"If-None-Match": tc.inm})
			if resp.StatusCode != tc.want {
				t.Errorf("If-None-Match %q: %d, want %d", tc.inm, resp.StatusCode, tc.want)
			}
			if resp.StatusCode == http.StatusNotModified && len(body) != 0 {
				t.Errorf("304 with a body")
			}
			if resp.Header.Get("ETag") != etag || !strings.Contains(resp.Header.Get("Cache-Control"), "no-cache") {
				t.Errorf("headers %v", resp.Header)
			}
		}
	})
}

func TestExamplesOnlyWhenAsked(t *testing.T) {
	cfg := Config{DataDir: t.TempDir(), Examples: true}
	h := openHub(t, cfg)
	d := h.Catalog.Document()
	if len(d.Organisations) == 0 || len(d.Policies) == 0 {
		t.Fatalf("--examples: %d organisations, %d policies", len(d.Organisations), len(d.Policies))
	}
}

// readEnvelope reads pushed envelopes until one has at least version v.
func readEnvelope(t *testing.T, c *websocket.Conn, trusted []ed25519.PublicKey, minVersion int64, deadline time.Time) (*whitelist.Document, *whitelist.Envelope) {
	t.Helper()
	c.SetReadDeadline(deadline)
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for version %d over the WebSocket: %v", minVersion, err)
		}
		var env whitelist.Envelope
		if err := json.Unmarshal(msg, &env); err != nil {
			t.Fatal(err)
		}
		doc, _, err := whitelist.Verify(&env, trusted)
		if err != nil {
			t.Fatalf("pushed envelope: %v", err)
		}
		if doc.Version >= minVersion {
			return doc, &env
		}
	}
}

func dialWS(t *testing.T, srv *httptest.Server, hdr http.Header) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/api/v1/whitelist/ws", hdr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestAdminChangeIsPublishedAndPushedBySeparateHub(t *testing.T) {
	engines(t, func(t *testing.T, cfg Config) {
		serving := openHub(t, cfg)
		srv := serveHub(t, serving)
		doc0, _, etag0, trusted := fetchVerified(t, srv.URL)
		ws := dialWS(t, srv, nil)
		first, _ := readEnvelope(t, ws, trusted, doc0.Version, time.Now().Add(5*time.Second))
		if first.Version != doc0.Version {
			t.Fatalf("on connect: version %d, want the current %d", first.Version, doc0.Version)
		}

		// The admin command's hub: same data folder and database, no HTTP.
		admin := openHub(t, cfg)
		cat, err := admin.CatalogStore()
		if err != nil {
			t.Fatal(err)
		}
		hostile := `<script>alert('x')</script> "Cyngor" — ŵ 🙂`
		if _, err := cat.AddOrganisation(context.Background(), whitelist.Organisation{ID: "north", Name: hostile, Sector: "local-government"}, "test"); err != nil {
			t.Fatal(err)
		}
		want, err := cat.SetPolicy(context.Background(), whitelist.Policy{
			Org: "north", Service: "zoom", Status: whitelist.Blocked, Alternatives: []string{"microsoft-teams"}, Note: hostile,
		}, "test")
		if err != nil {
			t.Fatal(err)
		}
		changed := time.Now()
		pushed, _ := readEnvelope(t, ws, trusted, want, changed.Add(2*time.Second))
		if pushed.Version != want {
			t.Fatalf("pushed version %d, want %d", pushed.Version, want)
		}
		if len(pushed.Policies) != 1 || pushed.Policies[0].Note != hostile || pushed.Organisations[0].Name != hostile {
			t.Fatalf("hostile strings did not round-trip: %+v %+v", pushed.Policies, pushed.Organisations)
		}
		doc, _, etag, _ := fetchVerified(t, srv.URL)
		if doc.Version != want || etag == etag0 {
			t.Fatalf("GET after push: version %d etag %s (was %s)", doc.Version, etag, etag0)
		}
		resp, _ := get(t, srv.URL+"/api/v1/whitelist", map[string]string{"If-None-Match": etag0})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("old ETag after a change: %d, want 200", resp.StatusCode)
		}
	})
}

func TestKeyRotationReSignsAndRetires(t *testing.T) {
	cfg := Config{DataDir: t.TempDir()}
	h := openHub(t, cfg)
	srv := serveHub(t, h)
	doc0, _, _, trusted := fetchVerified(t, srv.URL)
	ws := dialWS(t, srv, nil)
	readEnvelope(t, ws, trusted, doc0.Version, time.Now().Add(5*time.Second))

	// `admin key rotate` in another process: its own view of the folder.
	kr, err := signing.Open(filepath.Join(cfg.DataDir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	const grace = 1500 * time.Millisecond
	nk, err := kr.Rotate(grace)
	if err != nil {
		t.Fatal(err)
	}
	// The same version, re-signed by both keys, is pushed; a helper that
	// pinned only the old key still accepts it, one that learnt the new
	// key accepts it too.
	_, env := readEnvelope(t, ws, trusted, doc0.Version, time.Now().Add(2*time.Second))
	for env != nil && len(env.Signatures) != 2 {
		_, env = readEnvelope(t, ws, trusted, doc0.Version, time.Now().Add(2*time.Second))
	}
	if env.Signatures[0].KeyID != nk.ID {
		t.Fatalf("first signature by %s, want the new primary %s", env.Signatures[0].KeyID, nk.ID)
	}
	if _, _, err := whitelist.Verify(env, []ed25519.PublicKey{nk.Public}); err != nil {
		t.Fatalf("verify with the new key alone: %v", err)
	}
	_, _, _, keysNow := fetchVerified(t, srv.URL)
	if len(keysNow) != 2 {
		t.Fatalf("/keys during the grace period lists %d keys, want 2", len(keysNow))
	}
	// After the grace period the old key no longer signs and is not
	// published: a helper must have learnt the new one by then.
	_, env = readEnvelope(t, ws, []ed25519.PublicKey{nk.Public}, doc0.Version, time.Now().Add(grace+2*time.Second))
	for len(env.Signatures) != 1 {
		_, env = readEnvelope(t, ws, []ed25519.PublicKey{nk.Public}, doc0.Version, time.Now().Add(grace+2*time.Second))
	}
	if _, _, err := whitelist.Verify(env, trusted); !errors.Is(err, whitelist.ErrNoTrustedSignature) {
		t.Fatalf("after retirement the old key must not verify: %v", err)
	}
	_, _, _, keysNow = fetchVerified(t, srv.URL)
	if len(keysNow) != 1 || !keysNow[0].Equal(nk.Public) {
		t.Fatalf("/keys after retirement: %d keys", len(keysNow))
	}
}

func TestWebSocketOriginAndDeviceHook(t *testing.T) {
	h := openHub(t, Config{DataDir: t.TempDir()})
	srv := serveHub(t, h)
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/api/v1/whitelist/ws"
	origins := []struct {
		origin string
		want   int
	}{
		{"", http.StatusSwitchingProtocols},
		{srv.URL, http.StatusSwitchingProtocols},
		{"https://elsewhere.example", http.StatusForbidden},
		{"chrome-extension://abcdefghijklmnopabcdefghijklmnop", http.StatusForbidden},
	}
	for _, o := range origins {
		hdr := http.Header{}
		if o.origin != "" {
			hdr.Set("Origin", o.origin)
		}
		c, resp, _ := websocket.DefaultDialer.Dial(wsURL, hdr)
		if resp == nil || resp.StatusCode != o.want {
			t.Errorf("origin %q: %v, want %d", o.origin, resp, o.want)
		}
		if c != nil {
			c.Close()
		}
	}

	h.RequireDevice = func(r *http.Request) error {
		if r.Header.Get("Authorization") != "Device good" {
			return errors.New("no credential")
		}
		return nil
	}
	for _, path := range []string{"/api/v1/whitelist", "/api/v1/whitelist/ws"} {
		resp, _ := get(t, srv.URL+path, nil)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without a credential: %d, want 401", path, resp.StatusCode)
		}
	}
	resp, _ := get(t, srv.URL+"/api/v1/whitelist", map[string]string{"Authorization": "Device good"})
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Cache-Control"), "private") {
		t.Fatalf("with a credential: %d %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	c, _, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Authorization": {"Device good"}})
	if err != nil {
		t.Fatalf("ws with a credential: %v", err)
	}
	c.Close()
	// /keys stays public: a helper needs it before it has a credential.
	if resp, _ := get(t, srv.URL+"/api/v1/keys", nil); resp.StatusCode != 200 {
		t.Fatalf("/keys: %d", resp.StatusCode)
	}
}
