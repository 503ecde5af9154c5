package hub

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/detour-project/detour/server/reports"
	"github.com/detour-project/detour/shared/atomicfile"
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
	h.Reports = svc
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
	seal, err := h.reportsSealKey()
	if err != nil {
		return nil, err
	}
	return reports.Open(ctx, h.DB, reports.Config{
		IssuerName:   h.issuerName(),
		TokensPerDay: perDay,
		SealKey:      seal,
		MasterKey:    h.MasterKey,
		OnReport:     h.Metrics.Report,
		OnTokens:     h.Metrics.TokensIssued,
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

// reportsSealKey is the key that seals token issuer private keys in the
// database: 32 random bytes in DATA/reports-seal.key (0600), made on first
// use. Several hubs on one PostgreSQL database need the same file.
//
// A hub with a master key seals new issuer keys with that instead, and reads
// this file only if it is there (keys sealed before `admin key move-to-db`).
func (h *Hub) reportsSealKey() ([]byte, error) {
	path := filepath.Join(h.Cfg.DataDir, "reports-seal.key")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && h.MasterKey != nil {
		return nil, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("hub: reports seal key: %w", err)
		}
		// Created whole or not at all: a crash never leaves a torn key
		// file that every later start would refuse.
		err := atomicfile.WriteNew(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600)
		if errors.Is(err, fs.ErrExist) {
			return h.reportsSealKey() // another process made it first
		}
		if err != nil {
			return nil, fmt.Errorf("hub: reports seal key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hub: reports seal key: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("hub: %s is not a base64 32-byte key", path)
	}
	return key, nil
}
