package agent

import (
	"context"
	"log/slog"

	"github.com/detour-project/detour/helper/config"
	"github.com/detour-project/detour/helper/keyring"
	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/helper/probe"
	"github.com/detour-project/detour/shared/whitelist"
)

// Env is what every subsystem receives at setup: where to keep files, the
// config, the keyring, the log, the registry to add handlers to, and the
// subsystems set up before it. Setup runs in a fixed order (see Run): probe,
// whitelist, reports; a later subsystem may use an earlier one's field.
type Env struct {
	Dirs   paths.Dirs
	Config *config.Store
	// Secrets is the keyring, or nil when none could be opened. Opening it
	// can take seconds (a locked Secret Service), so it opens while the probe
	// and whitelist subsystems set up and is set before reports' setup; the
	// first two must not read it during setup (later, from handlers, is fine).
	Secrets keyring.Store
	Log     *slog.Logger
	Reg     *Registry

	// Diagnose is set by the probe subsystem.
	Diagnose func(ctx context.Context, rawURL string) (probe.Verdict, error)
	// Whitelist is set by the whitelist subsystem.
	Whitelist WhitelistView

	// owned tracks the goroutines started with Go (shared by copies of
	// the Env, as a background setup makes).
	owned *owned
}

// WhitelistView is what other subsystems may ask of the synced whitelist.
type WhitelistView interface {
	// Current is the last good verified document, or nil if there is none.
	Current() *whitelist.Document
	// OnUpdate calls f with each newly accepted document.
	OnUpdate(f func(*whitelist.Document))
	// Sync fetches from the hub now.
	Sync(ctx context.Context) error
}
