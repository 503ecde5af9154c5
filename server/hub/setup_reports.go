package hub

import "context"

// setupReports sets up the reports domain: its migrations, its service on the
// Hub, and its routes on h.Mux.
func (h *Hub) setupReports(ctx context.Context) error {
	_ = ctx
	return nil
}
