package hub

import "context"

// setupWhitelist sets up the whitelist domain: its migrations, its service on the
// Hub, and its routes on h.Mux.
func (h *Hub) setupWhitelist(ctx context.Context) error {
	_ = ctx
	return nil
}
