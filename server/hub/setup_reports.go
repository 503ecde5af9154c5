package hub

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"

	"github.com/detour-project/detour/server/reports"
	"github.com/detour-project/detour/shared/whitelist"
)

// setupReports sets up the reports domain: its migrations, its service on the
// Hub, and its routes on h.Mux (POST /api/v1/enrol, /tokens, /reports). It
// publishes each organisation's token issuer keys through h.IssuerKeys.
func (h *Hub) setupReports(ctx context.Context) error {
	svc, err := h.OpenReports(ctx)
	if err != nil {
		return err
	}
	svc.Routes(h.Mux)
	h.IssuerKeys = func(ctx context.Context) (map[string][]IssuerKey, error) {
		keys, err := svc.PublishedKeys(ctx)
		if err != nil {
			return nil, err
		}
		out := make(map[string][]IssuerKey, len(keys))
		for org, ks := range keys {
			for _, k := range ks {
				out[org] = append(out[org], IssuerKey{KeyID: k.KeyID, PublicKey: k.PublicKey, NotAfter: k.NotAfter})
			}
		}
		return out, nil
	}
	return nil
}

// OpenReports opens the reports service on this hub's database and catalog
// (admin commands use it too). The catalog is read on each use, so a hub
// whose catalog is set after setup still checks reports against it.
//
// DETOUR_TOKENS_PER_DAY overrides the daily token quota per device
// (default 20).
func (h *Hub) OpenReports(ctx context.Context) (*reports.Service, error) {
	perDay := 0
	if v := os.Getenv("DETOUR_TOKENS_PER_DAY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("hub: DETOUR_TOKENS_PER_DAY=%q: want a positive number", v)
		}
		perDay = n
	}
	return reports.Open(ctx, h.DB, reports.Config{
		IssuerName:   h.issuerName(),
		TokensPerDay: perDay,
		Document: func() *whitelist.Document {
			if h.Catalog == nil {
				return nil
			}
			return h.Catalog.Document()
		},
		Log: h.Log,
	})
}

// issuerName is the hub's name in token challenges: its public host, or a
// fixed name when it has none. Changing it invalidates unspent tokens.
func (h *Hub) issuerName() string {
	if h.Cfg.PublicURL != "" {
		if u, err := url.Parse(h.Cfg.PublicURL); err == nil && u.Hostname() != "" {
			return u.Hostname()
		}
	}
	return "detour-hub"
}
