package agent

import (
	"context"
	"errors"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/detour-project/detour/helper/config"
	"github.com/detour-project/detour/helper/whitelist"
	"github.com/detour-project/detour/shared/protocol"
	wl "github.com/detour-project/detour/shared/whitelist"
)

// configWatchEvery is how often the agent looks at the config file for a hub
// or pinned keys written by another process (detour enrol, an installer
// applying managed policy) while it runs.
const configWatchEvery = 5 * time.Second

// setupWhitelist wires the whitelist subsystem into the agent: the verified
// copy (env.Whitelist), the `suggest`, `common` and `sync` handlers, the "whitelist"
// and "hub" status sections, the whitelist-updated event, and the sync loop,
// which waits for a hub to be configured if none is yet.
func setupWhitelist(ctx context.Context, env *Env) error {
	cfg := &configReader{path: env.Dirs.ConfigFile(), fallback: env.Config}
	c := whitelist.New(whitelist.Options{
		CachePath: whitelist.CachePath(env.Dirs),
		Settings:  cfg.get,
		Log:       env.Log.With("subsystem", "whitelist"),
	})
	env.Whitelist = c
	c.OnUpdate(func(d *wl.Document) {
		env.Reg.Publish(protocol.EventWhitelistUpdated, protocol.WhitelistUpdated{Version: d.Version, IssuedAt: d.IssuedAt})
	})

	env.Reg.Handle("suggest", func(ctx context.Context, req protocol.Request) (any, error) {
		var p protocol.SuggestParams
		if err := req.Decode(&p); err != nil {
			return nil, err
		}
		if p.Host == "" {
			return nil, protocol.Errorf(protocol.CodeInvalidParams, "suggest: host is required")
		}
		return c.Suggest(p.Host, p.Org), nil
	})
	env.Reg.Handle("common", func(ctx context.Context, req protocol.Request) (any, error) {
		var p protocol.CommonParams
		if err := req.Decode(&p); err != nil {
			return nil, err
		}
		res, err := c.Common(p.Orgs, p.Category)
		if err != nil {
			return nil, protocol.Errorf(protocol.CodeInvalidParams, "%v", err)
		}
		return res, nil
	})
	env.Reg.Handle("sync", func(ctx context.Context, req protocol.Request) (any, error) {
		// Someone may have enrolled since the last look: re-read the config,
		// and wake the loops if the hub or the keys changed.
		cfg.invalidate()
		if cfg.changed() {
			c.Kick()
		}
		changed, err := c.SyncNow(ctx)
		if err != nil {
			return nil, syncError(err)
		}
		res := protocol.SyncResult{Changed: changed}
		if d := c.Current(); d != nil {
			v := d.Version
			res.Version = &v
		}
		return res, nil
	})
	env.Reg.Status(SectionWhitelist, func() any { return c.Status() })
	env.Reg.Status(SectionHub, func() any { return protocol.HubStatus{Reachable: c.Status().Reachable} })

	cfg.changed() // the starting point for watchConfig and sync
	env.Go("whitelist client", func() { c.Run(ctx) })
	env.Go("config watcher", func() { watchConfig(ctx, cfg, c.Kick) })
	return nil
}

// syncError maps the client's errors onto protocol codes.
func syncError(err error) error {
	switch {
	case errors.Is(err, whitelist.ErrNoHub), errors.Is(err, whitelist.ErrNoPinnedKey), errors.Is(err, whitelist.ErrHubRefused):
		return protocol.Errorf(protocol.CodeNotEnrolled, "%v", err)
	case errors.Is(err, whitelist.ErrHubUnreachable):
		return protocol.Errorf(protocol.CodeHubUnreachable, "%v", err)
	case errors.Is(err, context.DeadlineExceeded):
		return protocol.Errorf(protocol.CodeTimeout, "sync: %v", err)
	}
	return protocol.Errorf(protocol.CodeInternal, "sync: %v", err)
}

// configReader gives the whitelist client the config as it is on disk, so
// that a hub or keys written by another process take effect without a
// restart; it re-reads only when the file changed. The agent's own Store
// writes the same file, so the disk is never behind it; when the file
// cannot be read the Store's copy is used.
type configReader struct {
	path     string
	fallback *config.Store

	mu      sync.Mutex
	modTime time.Time
	size    int64
	cached  *config.Config

	seenMu sync.Mutex
	seen   *config.Config // as of the last changed()
}

func (r *configReader) get() config.Config {
	fi, err := os.Stat(r.path)
	if err != nil {
		return r.fallback.Get()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cached != nil && fi.ModTime().Equal(r.modTime) && fi.Size() == r.size {
		return *r.cached
	}
	s, err := config.Open(r.path)
	if err != nil {
		return r.fallback.Get()
	}
	c := s.Get()
	r.cached, r.modTime, r.size = &c, fi.ModTime(), fi.Size()
	return c
}

// changed says whether the hub or the pinned keys differ from the last call.
func (r *configReader) changed() bool {
	now := r.get()
	r.seenMu.Lock()
	defer r.seenMu.Unlock()
	diff := r.seen != nil && (now.Hub != r.seen.Hub || !slices.Equal(now.WhitelistKeys, r.seen.WhitelistKeys))
	r.seen = &now
	return diff
}

func (r *configReader) invalidate() {
	r.mu.Lock()
	r.cached = nil
	r.mu.Unlock()
}

// watchConfig kicks the sync loops when the hub or the pinned keys change.
func watchConfig(ctx context.Context, r *configReader, kick func()) {
	t := time.NewTicker(configWatchEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if r.changed() {
			kick()
		}
	}
}
