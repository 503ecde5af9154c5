package hub

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/detour-project/detour/server/catalog"
	"github.com/detour-project/detour/server/push"
	"github.com/detour-project/detour/server/signing"
	"github.com/detour-project/detour/shared/whitelist"
)

// signedWhitelist is one published version as served: the envelope bytes,
// their ETag, and the keys that signed them.
type signedWhitelist struct {
	version int64
	body    []byte
	etag    string
	keys    []whitelist.PublicKey
	keySet  string // the signing key ids, joined: changes on rotation and retirement
}

// whitelistPublisher signs each new version once, keeps the result for
// every request, and pushes it to connected helpers.
type whitelistPublisher struct {
	cat  *catalog.Catalog
	keys signing.Source
	push *push.Hub
	log  *slog.Logger

	mu  sync.Mutex // one publish at a time, in version order
	cur atomic.Pointer[signedWhitelist]

	// lastHeard is the newest version announced by another process, with
	// its commit time, so its propagation delay can be measured when this
	// hub publishes it.
	lastHeard atomic.Pointer[heardVersion]
	// propagated, if set, hears that delay.
	propagated func(time.Duration)
}

type heardVersion struct {
	version int64
	at      time.Time
}

// heard records a version announcement (payload "VERSION UNIXNANO", see
// catalog.NotifyChannel); a catch-up call's empty payload is ignored.
func (p *whitelistPublisher) heard(payload string) {
	v, ns, ok := strings.Cut(payload, " ")
	if !ok {
		return
	}
	ver, err1 := strconv.ParseInt(v, 10, 64)
	at, err2 := strconv.ParseInt(ns, 10, 64)
	if err1 != nil || err2 != nil {
		return
	}
	p.lastHeard.Store(&heardVersion{version: ver, at: time.Unix(0, at)})
}

// publish signs doc with the active keys and makes it current, unless it
// is older than the current version or the same version signed by the same
// keys.
func (p *whitelistPublisher) publish(doc *whitelist.Document) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys, err := p.keys.Active()
	if err != nil {
		return err
	}
	pubs := make([]whitelist.PublicKey, len(keys))
	ids := make([]string, len(keys))
	for i, k := range keys {
		pubs[i] = whitelist.Export(k.Public)
		ids[i] = k.ID
	}
	keySet := strings.Join(ids, ",")
	if cur := p.cur.Load(); cur != nil && (doc.Version < cur.version || (doc.Version == cur.version && keySet == cur.keySet)) {
		return nil
	}
	env, err := whitelist.Sign(doc, signing.PrivateKeys(keys)...)
	if err != nil {
		return err
	}
	body, err := json.Marshal(env)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	s := &signedWhitelist{
		version: doc.Version,
		body:    body,
		etag:    `"` + base64.RawURLEncoding.EncodeToString(sum[:]) + `"`,
		keys:    pubs,
		keySet:  keySet,
	}
	p.cur.Store(s)
	if err := p.push.Publish(body); err != nil {
		return err
	}
	if hv := p.lastHeard.Load(); hv != nil && hv.version == doc.Version && p.propagated != nil {
		if d := time.Since(hv.at); d >= 0 {
			p.propagated(d)
		}
	}
	p.log.Info("whitelist published", "version", doc.Version, "keys", len(keys), "clients", p.push.Clients())
	return nil
}

// whitelistRoutes registers the public whitelist routes.
func (h *Hub) whitelistRoutes(p *whitelistPublisher) {
	h.Mux.HandleFunc("GET /api/v1/whitelist", func(w http.ResponseWriter, r *http.Request) {
		if !h.deviceAllowed(w, r) {
			return
		}
		s := p.cur.Load()
		hdr := w.Header()
		hdr.Set("ETag", s.etag)
		hdr.Set("Cache-Control", h.whitelistCacheControl())
		hdr.Set("X-Detour-Whitelist-Version", strconv.FormatInt(s.version, 10))
		if etagMatches(r.Header.Get("If-None-Match"), s.etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		hdr.Set("Content-Type", "application/json")
		hdr.Set("Content-Length", strconv.Itoa(len(s.body)))
		w.Write(s.body)
	})
	h.Mux.HandleFunc("GET /api/v1/whitelist/ws", func(w http.ResponseWriter, r *http.Request) {
		if !h.deviceAllowed(w, r) {
			return
		}
		p.push.ServeHTTP(w, r)
	})
	h.Mux.HandleFunc("GET /api/v1/keys", func(w http.ResponseWriter, r *http.Request) {
		issuer := map[string][]IssuerKey{}
		if h.IssuerKeys != nil {
			ks, err := h.IssuerKeys(r.Context())
			if err != nil {
				p.log.Error("keys: issuer keys", "err", err)
				http.Error(w, "issuer keys unavailable", http.StatusServiceUnavailable)
				return
			}
			if ks != nil {
				issuer = ks
			}
		}
		body, err := json.Marshal(struct {
			WhitelistKeys []whitelist.PublicKey  `json:"whitelist_keys"`
			IssuerKeys    map[string][]IssuerKey `json:"issuer_keys"`
		}{p.cur.Load().keys, issuer})
		if err != nil {
			http.Error(w, "encode keys", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(body)
	})
}

// whitelistCacheControl lets caches keep the whitelist but makes them ask
// again each time (the ETag makes asking cheap): a new version must reach
// helpers at once. A hub that requires a device credential keeps it out of
// shared caches.
func (h *Hub) whitelistCacheControl() string {
	if h.RequireDevice != nil {
		return "private, no-cache"
	}
	return "public, no-cache"
}

func (h *Hub) deviceAllowed(w http.ResponseWriter, r *http.Request) bool {
	if h.RequireDevice == nil {
		return true
	}
	if err := h.RequireDevice(r); err != nil {
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "a device credential is required", http.StatusUnauthorized)
		return false
	}
	return true
}

// etagMatches applies If-None-Match's weak comparison (RFC 9110 13.1.2):
// any listed tag equal to ours, ignoring a W/ prefix, or "*".
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}
