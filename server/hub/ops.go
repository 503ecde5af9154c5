package hub

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// setupOps registers what an operator and a load balancer ask a hub:
// GET /healthz (the process answers), GET /readyz (it can serve: database
// reachable, keys loaded, migrations done, not draining) and GET /metrics
// (Prometheus text format, detour_* series).
func (h *Hub) setupOps(ctx context.Context) error {
	m := h.Metrics
	m.Gauge("detour_websocket_clients", "WebSocket clients connected to this hub.", func() float64 {
		if h.pub == nil {
			return 0
		}
		return float64(h.pub.push.Clients())
	})
	m.Gauge("detour_whitelist_version", "The whitelist version this hub publishes.", func() float64 {
		if h.pub == nil || h.pub.cur.Load() == nil {
			return 0
		}
		return float64(h.pub.cur.Load().version)
	})
	m.Gauge("detour_whitelist_signing_keys", "Signing keys this hub's whitelist is signed with.", func() float64 {
		if h.pub == nil || h.pub.cur.Load() == nil {
			return 0
		}
		return float64(len(h.pub.cur.Load().keys))
	})
	m.Gauge("detour_db_listening", "1 while this hub hears PostgreSQL change notifications, else 0 (it polls).", func() float64 {
		if h.Listening() {
			return 1
		}
		return 0
	})
	m.Counter("detour_db_errors_total", "Database failures seen by this hub (statements, commits, a lost listener).", func() float64 {
		return float64(h.DB.Errors())
	})
	m.Gauge("detour_draining", "1 once this hub has begun shutting down.", func() float64 {
		if h.draining.Load() {
			return 1
		}
		return 0
	})
	h.Mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	h.Mux.HandleFunc("GET /readyz", h.handleReady)
	h.Mux.Handle("GET /metrics", m.Handler())
	return nil
}

// Ready checks what /readyz reports and returns each check's result: a
// failed check is a short reason, a passed one "ok".
func (h *Hub) Ready(ctx context.Context) (bool, map[string]string) {
	checks := map[string]string{"migrations": "ok", "database": "ok", "keys": "ok", "draining": "ok"}
	ok := true
	fail := func(name, why string) { checks[name], ok = why, false }
	if !h.opened.Load() {
		fail("migrations", "the hub is still starting")
	}
	if h.draining.Load() {
		fail("draining", "the hub is shutting down")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := h.DB.SQL().PingContext(ctx); err != nil {
		fail("database", "unreachable")
	}
	if h.pub == nil || h.pub.cur.Load() == nil || len(h.pub.cur.Load().keys) == 0 {
		fail("keys", "no signed whitelist")
	} else if h.signingKeys != nil {
		if keys, err := h.signingKeys.Active(); err != nil || len(keys) == 0 {
			fail("keys", "signing keys unreadable")
		}
	}
	return ok, checks
}

func (h *Hub) handleReady(w http.ResponseWriter, r *http.Request) {
	ok, checks := h.Ready(r.Context())
	status, word := http.StatusOK, "ready"
	if !ok {
		status, word = http.StatusServiceUnavailable, "not ready"
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}{word, checks})
}

// Drain begins a shutdown: /readyz answers 503 from now on (a load
// balancer stops sending new work), and every WebSocket client is told to
// reconnect (close code 1012), which helpers do after a random delay,
// through the load balancer to another hub. Requests in flight are left to
// the HTTP server's Shutdown.
func (h *Hub) Drain() {
	h.draining.Store(true)
	if h.pub != nil {
		h.pub.push.Restart()
	}
}
