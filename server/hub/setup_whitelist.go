package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/detour-project/detour/server/catalog"
	"github.com/detour-project/detour/server/push"
	"github.com/detour-project/detour/server/signing"
	seed "github.com/detour-project/detour/shared/catalog"
	"github.com/detour-project/detour/shared/whitelist"
)

// pollInterval is how often a hub looks for versions written by another
// process (an admin command, another hub on the same PostgreSQL) and for a
// rotated or retired signing key: one indexed MAX(version) query and a
// read of a small folder, so a short interval costs little and keeps the
// "change to helper within 2 seconds" promise.
const pollInterval = 300 * time.Millisecond

// listenPoll is how often a hub that hears PostgreSQL notifications still
// polls, in case one is lost (a notification sent while its listening
// connection was down is caught up on reconnection; this covers the rest).
// A variable so tests can make it long enough that only a notification can
// explain a prompt change.
var listenPoll = 5 * time.Second

// watchChanges publishes versions and key changes made by other processes
// (an admin command, another hub): at once when PostgreSQL announces them
// (LISTEN/NOTIFY), and by polling, often while no listener is up (SQLite,
// or a lost connection) and rarely while one is.
func (h *Hub) watchChanges(ctx context.Context, cat *catalog.Catalog, pub *whitelistPublisher, wake <-chan struct{}) {
	t := time.NewTimer(pollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
		cat.Poll(ctx)
		// A changed key set re-signs the current version (publish does
		// nothing when neither the version nor the keys changed).
		if err := pub.publish(cat.Document()); err != nil && ctx.Err() == nil {
			pub.log.Error("whitelist: re-sign after a key change", "err", err)
		}
		every := pollInterval
		if h.Listening() {
			every = listenPoll
		}
		t.Reset(every)
	}
}

// setupWhitelist opens the catalog (seeding an empty one from
// shared/catalog), the signing keys in DATA/keys, and the publisher that
// signs each new version and pushes it to connected helpers; it registers
// GET /api/v1/whitelist, /api/v1/whitelist/ws and /api/v1/keys.
//
// DETOUR_WHITELIST_TTL overrides how long a version is valid (a Go
// duration, default 168h); a fresh version is issued when the latest is
// within 2 days (or half the TTL, if shorter) of expiring.
func (h *Hub) setupWhitelist(ctx context.Context) error {
	log := h.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := catalog.Options{Log: log}
	if v := os.Getenv("DETOUR_WHITELIST_TTL"); v != "" {
		ttl, err := time.ParseDuration(v)
		if err != nil || ttl <= 0 {
			return fmt.Errorf("hub: DETOUR_WHITELIST_TTL=%q: want a positive duration such as 168h", v)
		}
		opts.TTL = ttl
	}
	seed, err := SeedCatalog()
	if err != nil {
		return err
	}
	opts.Seed = seed
	if h.Cfg.Examples {
		if opts.Examples, err = ExampleCatalog(); err != nil {
			return err
		}
	}
	keys, err := h.openSigningKeys(ctx)
	if err != nil {
		return err
	}
	h.signingKeys = keys
	cat, err := catalog.Open(ctx, h.DB, opts)
	if err != nil {
		return err
	}
	h.Catalog = cat

	pub := &whitelistPublisher{
		cat:  cat,
		keys: keys,
		push: push.New(push.Options{
			MaxClients:  h.Cfg.MaxWSClients,
			OnRefused:   func() { h.Metrics.Refused("websocket-clients") },
			OnDelivered: func(d time.Duration) { h.Metrics.Delivered(d.Seconds()) },
		}),
		log:        log,
		propagated: func(d time.Duration) { h.Metrics.Propagated(d.Seconds()) },
	}
	h.pub = pub
	if err := pub.publish(cat.Document()); err != nil {
		return err
	}
	cat.OnPublish(func(d *whitelist.Document) {
		if err := pub.publish(d); err != nil {
			log.Error("whitelist: publish", "version", d.Version, "err", err)
		}
	})

	bg, cancel := context.WithCancel(ctx)
	wake := make(chan struct{}, 1)
	h.listening = h.DB.Listen(bg, []string{catalog.NotifyChannel, signing.NotifyChannel}, func(channel, payload string) {
		if channel == catalog.NotifyChannel {
			pub.heard(payload)
		}
		select {
		case wake <- struct{}{}:
		default: // a wake-up is already pending; one look covers both
		}
	})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		h.watchChanges(bg, cat, pub, wake)
	}()
	h.OnClose(func() {
		cancel()
		wg.Wait()
		pub.push.Close()
	})
	h.whitelistRoutes(pub)
	return nil
}

// WhitelistKeys is the hub's signing keys: in the database with a master
// key, else in DATA/keys.
func (h *Hub) WhitelistKeys() (signing.Source, error) {
	if h.signingKeys == nil {
		return nil, errors.New("hub: the signing keys are not set up")
	}
	return h.signingKeys, nil
}

// Listening says whether this hub hears PostgreSQL's change notifications
// now (false on SQLite, where it polls).
func (h *Hub) Listening() bool { return h.listening != nil && h.listening() }

// KeyFolder is where a hub without a master key keeps its signing keys.
func (h *Hub) KeyFolder() string { return filepath.Join(h.Cfg.DataDir, "keys") }

// openSigningKeys opens the keys where this hub's configuration says, and
// refuses the two mistakes that would make hubs sign with different keys:
// a hub without the master key on a database that holds the cluster's
// keys, and a hub given the master key whose folder still holds the keys
// its helpers pinned while the database has none (move them first).
func (h *Hub) openSigningKeys(ctx context.Context) (signing.Source, error) {
	folder := h.KeyFolder()
	inDB, err := signing.CountInDB(ctx, h.DB)
	if err != nil {
		return nil, err
	}
	if h.MasterKey == nil {
		if inDB > 0 {
			return nil, fmt.Errorf("hub: the database holds %d sealed whitelist signing key(s) shared by a cluster: start this hub with --master-key-file (the same file as the other hubs)", inDB)
		}
		return signing.Open(folder)
	}
	inFolder, err := signing.HasKeys(folder)
	if err != nil {
		return nil, err
	}
	if h.Cfg.MoveKeysToDB {
		if !inFolder {
			return nil, fmt.Errorf("hub: %s holds no signing keys to move", folder)
		}
		kr, err := signing.Open(folder)
		if err != nil {
			return nil, err
		}
		keys, err := kr.Active()
		if err != nil {
			return nil, err
		}
		if _, err := signing.ImportToDB(ctx, h.DB, h.MasterKey, keys); err != nil {
			return nil, err
		}
	} else if inFolder && inDB == 0 {
		return nil, fmt.Errorf("hub: %s holds this hub's whitelist signing keys but the database has none: "+
			"run `detour-server admin --data %s --db ... --master-key-file ... key move-to-db` first, so helpers that pinned them keep trusting this hub", folder, h.Cfg.DataDir)
	}
	return signing.OpenDB(ctx, h.DB, h.MasterKey)
}

// CatalogStore is the hub's catalog with its full surface (import, export,
// organisations), for admin commands.
func (h *Hub) CatalogStore() (*catalog.Catalog, error) {
	c, ok := h.Catalog.(*catalog.Catalog)
	if !ok {
		return nil, errors.New("hub: the catalog is not set up")
	}
	return c, nil
}

// SeedCatalog is the real services catalog from shared/catalog, imported
// into an empty catalog on first start.
func SeedCatalog() (*catalog.Bundle, error) {
	cats, svcs, err := seed.Services()
	if err != nil {
		return nil, fmt.Errorf("hub: seed catalog: %w", err)
	}
	return &catalog.Bundle{Categories: cats, Services: svcs}, nil
}

// ExampleCatalog is the fictional example organisations and their
// policies, for demos and `admin catalog import --examples`.
func ExampleCatalog() (*catalog.Bundle, error) {
	orgs, pols, err := seed.Examples()
	if err != nil {
		return nil, fmt.Errorf("hub: example organisations: %w", err)
	}
	return &catalog.Bundle{Organisations: orgs, Policies: pols}, nil
}
