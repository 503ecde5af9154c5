package hub

import (
	"context"
	"fmt"
	"strings"

	"github.com/detour-project/detour/server/aggregates"
	"github.com/detour-project/detour/server/catalog"
	"github.com/detour-project/detour/server/dashboard"
	"github.com/detour-project/detour/server/masterkey"
)

// setupDashboard sets up the dashboard domain: its migrations, its service on the
// Hub, and its routes on h.Mux.
func (h *Hub) setupDashboard(ctx context.Context) error {
	var codes dashboard.Codes
	if h.Reports != nil { // a nil *reports.Service would be a non-nil Codes
		codes = h.Reports
	}
	var ssoCfg *dashboard.SSOConfig
	if h.Cfg.SSOFile != "" {
		c, err := dashboard.LoadSSOConfig(h.Cfg.SSOFile)
		if err != nil {
			return err
		}
		ssoCfg = c
	}
	secretKeys, err := h.secretKeys()
	if err != nil {
		return err
	}
	d, err := dashboard.New(ctx, dashboard.Options{
		SecretKeys:  secretKeys,
		SSO:         ssoCfg,
		RequireTOTP: h.Cfg.RequireTOTP,
		// Sign-in limits per source see through these to the client.
		TrustedProxies: h.Cfg.TrustedProxies,
		Codes:          codes,
		DB:             h.DB,
		// Read lazily: the catalog may be replaced after set-up.
		Catalog: func() catalog.Service { return h.Catalog },
		Privacy: h.Privacy(),
		Log:     h.Log,
		// Behind a TLS proxy the request arrives as plain HTTP, but the
		// browser is on HTTPS: cookies must still be Secure.
		Secure: h.Cfg.TLSCert != "" || strings.HasPrefix(h.Cfg.PublicURL, "https://"),
	})
	if err != nil {
		return err
	}
	d.Routes(h.Mux)
	return nil
}

// Privacy is the k-anonymity rule every figure the hub shows follows.
func (h *Hub) Privacy() aggregates.Privacy {
	return aggregates.Privacy{K: h.Cfg.K, Round: h.Cfg.Round}
}

// secretKeys seal the dashboard's second-factor secrets: the master key in
// a cluster, else a key made from the single hub's reports seal file; with
// both, the seal file's key still opens what was sealed before the hub
// moved to the master key.
func (h *Hub) secretKeys() ([]*masterkey.Key, error) {
	var keys []*masterkey.Key
	if h.MasterKey != nil {
		keys = append(keys, h.MasterKey)
	}
	file, err := h.reportsSealKey() // nil with a master key and no file
	if err != nil {
		return nil, err
	}
	if file != nil {
		k, err := masterkey.New(file)
		if err != nil {
			return nil, fmt.Errorf("hub: second-factor seal key: %w", err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}
