// Package hub assembles detour-server: it opens the database, sets up each
// domain (catalog and whitelist publishing, reports and tokens, the
// dashboard) in a fixed order, and serves their routes. Admin commands use
// the same Hub without serving HTTP, so they work while `serve` runs.
package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/detour-project/detour/server/aggregates"
	"github.com/detour-project/detour/server/catalog"
	"github.com/detour-project/detour/server/control"
	"github.com/detour-project/detour/server/masterkey"
	"github.com/detour-project/detour/server/metrics"
	"github.com/detour-project/detour/server/reports"
	"github.com/detour-project/detour/server/signing"
	"github.com/detour-project/detour/server/store"
)

// Config is the hub's configuration, from serve's and admin's flags.
type Config struct {
	Addr    string // listen address, e.g. 127.0.0.1:8080
	DataDir string // signing keys, SQLite database, logs
	DSN     string // sqlite:PATH or postgres://...; default sqlite:DATA/detour.db
	TLSCert string // serve HTTPS with this certificate...
	TLSKey  string // ...and key
	K       int    // k-anonymity threshold for every count shown (default 5)
	// Round applies the ONS "10-5" style rounding to counts at or above K.
	Round bool
	// PublicURL is how helpers reach the hub (for printed instructions).
	PublicURL string
	// Examples imports the fictional example organisations and policies
	// into a catalog that has none (demos: `serve --examples`).
	Examples bool
	// SSOFile is the dashboard's single sign-on configuration (JSON, see
	// dashboard.SSOConfig); empty: local accounts only.
	SSOFile string
	// RequireTOTP makes sector admins' local accounts use a second factor.
	RequireTOTP bool
	// MasterKeyFile names the master key (32 or more random bytes, the same
	// file on every hub of a cluster): with it the whitelist signing keys
	// and token issuer keys live in the database, sealed with it. Without
	// it the signing keys stay in DATA/keys (a single hub).
	MasterKeyFile string
	// MaxWSClients caps this hub's WebSocket clients; one more is refused
	// with 503 and Retry-After, so it tries again later or elsewhere (0:
	// no cap).
	MaxWSClients int
	// TrustedProxies are the load balancers in front of the hub, whose
	// X-Forwarded-For names the client for sign-in limits per source.
	TrustedProxies []netip.Prefix
	// ReportConcurrency caps report, token and enrolment requests handled
	// at once; more wait briefly, then get 503 (default 64).
	ReportConcurrency int
	// MoveKeysToDB imports DATA/keys into the database before the hub opens
	// its keys there (`admin key move-to-db`); it needs MasterKeyFile.
	MoveKeysToDB bool
	// Control offers the control measurement, GET /api/v1/control (serve
	// --control): for a hub that sits outside its members' networks.
	Control bool
	// ControlConfig overrides the control measurement's fetcher (tests: a
	// loopback "outside world"); its CatalogHost is always the hub's.
	ControlConfig *control.Config
}

// Hub is one running hub: its database and its domains.
type Hub struct {
	Cfg Config
	DB  *store.DB
	Log *slog.Logger
	// Mux carries every route. Domains add theirs in their setup function.
	Mux *http.ServeMux

	// Catalog is set by setupWhitelist.
	Catalog catalog.Service
	// IssuerKeys is set by setupReports: each organisation's token issuer
	// public keys, published by GET /api/v1/keys beside the whitelist keys.
	IssuerKeys func(ctx context.Context) (map[string][]IssuerKey, error)
	// Reports is set by setupReports (the dashboard's codes pages use it).
	Reports *reports.Service
	// RequireDevice, when set, guards GET /api/v1/whitelist and
	// /api/v1/whitelist/ws: a hub that does not publish its members'
	// policies sets it to a check of the request's device credential
	// (returning an error refuses the request with 401). Nil: public.
	RequireDevice func(r *http.Request) error

	// MasterKey is loaded from Cfg.MasterKeyFile; nil without it.
	MasterKey *masterkey.Key
	// signingKeys is set by setupWhitelist (see WhitelistKeys).
	signingKeys signing.Source
	// listening is set by setupWhitelist (see Listening).
	listening store.Listening
	// Metrics are this hub's Prometheus series (GET /metrics).
	Metrics *metrics.Metrics
	// pub is set by setupWhitelist: the signed whitelist and its push hub.
	pub *whitelistPublisher
	// opened is set when Open has finished (migrations run, keys loaded);
	// draining when a SIGTERM has begun the shutdown. /readyz reads both.
	opened, draining atomic.Bool

	// closers run on Close, last added first.
	closers []func()
}

// Open opens the database, runs migrations and sets up every domain.
// background work (publishing, push) runs until ctx ends.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Hub, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = "detour-data"
	}
	if cfg.K <= 0 {
		cfg.K = 5
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("hub: data folder: %w", err)
	}
	if cfg.DSN == "" {
		cfg.DSN = "sqlite:" + filepath.Join(cfg.DataDir, "detour.db")
	}
	var mk *masterkey.Key
	if cfg.MasterKeyFile != "" {
		k, err := masterkey.Load(cfg.MasterKeyFile)
		if err != nil {
			return nil, fmt.Errorf("hub: --master-key-file: %w", err)
		}
		if masterkey.Exposed(cfg.MasterKeyFile) && log != nil {
			log.Warn("the master key file is readable by every user of this machine: chmod 600 it", "file", cfg.MasterKeyFile)
		}
		mk = k
	} else if cfg.MoveKeysToDB {
		return nil, errors.New("hub: moving keys to the database needs --master-key-file")
	}
	db, err := store.Open(ctx, cfg.DSN)
	if err != nil {
		return nil, err
	}
	h := &Hub{Cfg: cfg, DB: db, Log: log, Mux: http.NewServeMux(), MasterKey: mk, Metrics: metrics.New()}
	h.closers = append(h.closers, func() { db.Close() })
	if err := db.Migrate(ctx, "aggregates", aggregates.Migrations); err != nil {
		h.Close()
		return nil, err
	}
	for _, setup := range []func(context.Context) error{h.setupWhitelist, h.setupReports, h.setupDashboard, h.setupOps, h.setupControl} {
		if err := setup(ctx); err != nil {
			h.Close()
			return nil, err
		}
	}
	h.opened.Store(true)
	return h, nil
}

// IssuerKey is one organisation's published token issuer key (RFC 9578:
// the key id is SHA-256 of the DER SubjectPublicKeyInfo).
type IssuerKey struct {
	KeyID     string `json:"key_id"`     // base64url SHA-256 of PublicKey's bytes
	PublicKey string `json:"public_key"` // base64url DER (RSASSA-PSS SPKI)
	NotAfter  string `json:"not_after,omitempty"`
}

// OnClose registers f to run when the hub closes.
func (h *Hub) OnClose(f func()) { h.closers = append(h.closers, f) }

// Close releases everything Open acquired.
func (h *Hub) Close() {
	for i := len(h.closers) - 1; i >= 0; i-- {
		h.closers[i]()
	}
	h.closers = nil
}
