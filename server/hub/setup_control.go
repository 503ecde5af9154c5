package hub

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/detour-project/detour/server/control"
)

// setupControl serves GET /api/v1/capabilities (what this hub offers
// beyond the core API) and, with serve --control, the control measurement
// GET /api/v1/control for catalog hosts (server/control).
func (h *Hub) setupControl(context.Context) error {
	offered := h.Cfg.Control
	h.Mux.HandleFunc("GET /api/v1/capabilities", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=300")
		_ = json.NewEncoder(w).Encode(map[string]bool{"control": offered})
	})
	if !offered {
		return nil
	}
	cfg := control.Config{}
	if h.Cfg.ControlConfig != nil {
		cfg = *h.Cfg.ControlConfig
	}
	cfg.CatalogHost = func(host string) string {
		if h.Catalog == nil {
			return ""
		}
		doc := h.Catalog.Document()
		if doc == nil {
			return ""
		}
		_, matched := doc.MatchHost(host)
		return matched
	}
	control.New(cfg).Routes(h.Mux)
	return nil
}
