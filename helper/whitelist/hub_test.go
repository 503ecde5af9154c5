package whitelist

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/detour-project/detour/helper/config"
	"github.com/detour-project/detour/shared/catalog"
	wl "github.com/detour-project/detour/shared/whitelist"
)

// testHub is a stand-in for detour-server's whitelist routes, built from
// shared/whitelist.Sign so these tests do not depend on the real hub: GET
// /api/v1/whitelist with a strong ETag and 304, and a WebSocket that sends
// the current envelope on connect and each new one after.
type testHub struct {
	t   *testing.T
	srv *httptest.Server

	mu          sync.Mutex
	body        []byte
	etag        string
	conns       []*websocket.Conn
	gets        int
	notModified int
	lastINM     string
	// require, if set, is the Authorization header both routes demand.
	require string
}

func (h *testHub) allowed(w http.ResponseWriter, r *http.Request) bool {
	h.mu.Lock()
	req := h.require
	h.mu.Unlock()
	if req != "" && r.Header.Get("Authorization") != req {
		http.Error(w, "a device credential is required", http.StatusUnauthorized)
		return false
	}
	return true
}

func newTestHub(t *testing.T) *testHub {
	h := &testHub{t: t}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/whitelist", h.serveWhitelist)
	mux.HandleFunc("GET /api/v1/whitelist/ws", h.serveWS)
	h.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		h.mu.Lock()
		for _, c := range h.conns {
			c.Close()
		}
		h.mu.Unlock()
		h.srv.Close()
	})
	return h
}

func (h *testHub) URL() string { return h.srv.URL }

func (h *testHub) serveWhitelist(w http.ResponseWriter, r *http.Request) {
	if !h.allowed(w, r) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gets++
	h.lastINM = r.Header.Get("If-None-Match")
	if h.body == nil {
		http.Error(w, "no whitelist yet", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("ETag", h.etag)
	if h.lastINM == h.etag {
		h.notModified++
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(h.body)
}

func (h *testHub) serveWS(w http.ResponseWriter, r *http.Request) {
	if !h.allowed(w, r) {
		return
	}
	up := websocket.Upgrader{}
	c, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	h.mu.Lock()
	h.conns = append(h.conns, c)
	if h.body != nil {
		c.WriteMessage(websocket.TextMessage, h.body)
	}
	h.mu.Unlock()
	// Read until the client goes, so that its pings are answered.
	go func() {
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
}

// set publishes env: served from now on and pushed to every connection.
func (h *testHub) set(env *wl.Envelope) {
	b, err := json.Marshal(env)
	if err != nil {
		h.t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.body, h.etag = b, `"`+hex.EncodeToString(sum[:])+`"`
	for _, c := range h.conns {
		c.WriteMessage(websocket.TextMessage, b) // under h.mu: one writer per connection
	}
}

// waitConn waits until a client holds a push connection.
func (h *testHub) waitConn(t *testing.T) {
	t.Helper()
	// A reconnect after a restart close waits up to restartSpread, by design;
	// the bound is well beyond it for a loaded machine.
	deadline := time.Now().Add(restartSpread + 10*time.Second)
	for {
		h.mu.Lock()
		n := len(h.conns)
		h.mu.Unlock()
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the client never opened the push connection")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *testHub) stats() (gets, notModified int, inm string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gets, h.notModified, h.lastINM
}

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func pub(k ed25519.PrivateKey) wl.PublicKey { return wl.Export(k.Public().(ed25519.PublicKey)) }

// doc is the seed catalog with the example policies, as the demo hub has it.
func doc(t *testing.T, version int64, issued time.Time, ttl time.Duration) *wl.Document {
	t.Helper()
	d, err := catalog.ExampleDocument(version, issued, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func sign(t *testing.T, d *wl.Document, keys ...ed25519.PrivateKey) *wl.Envelope {
	t.Helper()
	env, err := wl.Sign(d, keys...)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// settings is a config the test can change while the client runs.
type settings struct {
	mu  sync.Mutex
	cfg config.Config
}

func (s *settings) get() config.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

func (s *settings) set(f func(*config.Config)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.cfg)
}

func newClient(t *testing.T, dir, hub string, keys ...ed25519.PrivateKey) (*Client, *settings) {
	t.Helper()
	s := &settings{}
	s.cfg.Hub = hub
	for _, k := range keys {
		s.cfg.WhitelistKeys = append(s.cfg.WhitelistKeys, pub(k))
	}
	c := New(Options{CachePath: filepath.Join(dir, CacheName), Settings: s.get})
	return c, s
}
