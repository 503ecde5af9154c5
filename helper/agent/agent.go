// Package agent is `detour agent`: the one process per user that owns the
// helper's state and answers the protocol on a local socket for every relay
// (one per browser), the tray and the command line. Subsystems (probe,
// whitelist, reports) plug in through the Registry in their setup_*.go file.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/detour-project/detour/helper/config"
	"github.com/detour-project/detour/helper/keyring"
	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/shared/protocol"
)

// ErrAlreadyRunning is returned by Run when another agent holds the lock and
// answers on the socket: the caller should exit quietly with status 0, and
// whoever wanted an agent connects to that one.
var ErrAlreadyRunning = errors.New("agent: another agent is already running for this user")

// Options configure Run.
type Options struct {
	Dirs paths.Dirs
	// Hub, when set, is stored as the hub URL in the config before start.
	Hub string
	// NoTray keeps the agent from starting detour-tray on a desktop.
	NoTray bool
	// TrayPath is the tray binary; by default detour-tray beside this executable.
	TrayPath string
	// RequestTimeout bounds each request (default 30 s); a request past it
	// is answered with CodeTimeout.
	RequestTimeout time.Duration
	// Log receives the agent's log; by default the agent log file (and
	// stderr when it is a terminal).
	Log *slog.Logger
	// Ready, if set, is called once every subsystem is set up, so that no
	// request waits any more. The agent answers hello, status and settings
	// (and diagnose, suggest, sync) before that; see Run.
	Ready func()

	// openKeyring opens the keyring: keyring.Open, unless a test slows it.
	openKeyring func(paths.Dirs) (keyring.Store, error)
	// stopped, if set, receives the names of owned goroutines still running
	// when Run returns (tests: none).
	stopped func(left []string)
}

// shutdownWait bounds how long Run waits for its goroutines at shutdown;
// one still running then is a bug, named in the log.
const shutdownWait = 10 * time.Second

// lockWait is how long a second agent waits for the lock when the holder
// does not answer on the socket (it may be shutting down) before giving up.
const lockWait = 3 * time.Second

// Run runs the agent until ctx ends. It returns ErrAlreadyRunning when another
// agent serves this user, and nil after a clean shutdown.
func Run(ctx context.Context, opts Options) error {
	dirs := opts.Dirs
	if err := dirs.Ensure(); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	// The lock comes first: an agent that loses the race touches nothing,
	// not even the log (which the winner may be rotating).
	lock, err := acquireLock(ctx, dirs)
	if err != nil {
		return err
	}
	defer lock.release()

	log, logFile, err := openLog(opts.Log, dirs)
	if err != nil {
		return err
	}
	if logFile != nil {
		defer logFile.Close()
	}

	cfg, err := config.Open(dirs.ConfigFile())
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if opts.Hub != "" {
		if err := checkHubURL(opts.Hub); err != nil {
			return err
		}
		if err := cfg.Update(func(c *config.Config) error { c.Hub = opts.Hub; return nil }); err != nil {
			return fmt.Errorf("agent: store hub: %w", err)
		}
	}

	// The organisation's managed policy wins over the person's settings and
	// over --hub. Applying it at every start also releases what a removed
	// policy had fixed. A broken policy file is logged loudly, and the
	// settings it would have fixed stay as they were.
	if m, err := config.ReadManaged(os.Getenv(ManagedRootEnv)); err != nil {
		log.Error("managed policy ignored: it cannot be read", "err", err)
	} else if err := cfg.Update(func(c *config.Config) error { c.Managed = nil; m.Apply(c); return nil }); err != nil {
		return fmt.Errorf("agent: apply managed policy: %w", err)
	}

	// Only the lock holder may remove a socket file: a stale one left by a
	// crashed agent, never the live socket of another.
	if err := removeStaleSocket(dirs.Socket()); err != nil {
		return err
	}
	ln, err := listenSocket(dirs.Socket())
	if err != nil {
		return err
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(true)
	}

	timeout := opts.RequestTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	srv := newServer(log, timeout)
	env := &Env{Dirs: dirs, Config: cfg, Log: log, Reg: NewRegistry(srv.broadcast), owned: &owned{running: map[string]int{}}}
	srv.reg = env.Reg
	if set, err := protocol.Load(); err != nil {
		log.Error("protocol schemas did not compile; requests are not validated", "err", err)
	} else {
		srv.validate = func(typ string, body []byte) error {
			if err := set.ValidateRequest(typ, body); err != nil {
				return errors.New(protocol.Brief(err))
			}
			return nil
		}
	}
	registerCore(env)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan struct{})
	go func() { srv.serve(runCtx, ln); close(served) }()
	log.Info("agent listening", "socket", dirs.Socket(), "pid", os.Getpid())

	// Requests wait for setup; the socket already accepts so that relays
	// started at the same time connect at once.
	//
	// The keyring is not waited for. keyring.Open can take its whole timeout
	// (5 s) when the Secret Service is locked or slow, and a browser gives
	// up on a first hello that takes more than about 2 s, so a slow keyring
	// must not hold up the requests that need no secret. It opens in the
	// background; probe and whitelist set up meanwhile (they are quick), and
	// the agent then answers. Reports, the only subsystem that needs the
	// keyring, sets up once it is open: until then its request types are
	// listed in hello and wait for it (setupInBackground), so only a report
	// or an enrolment made in the first seconds waits for the keyring.
	opener := opts.openKeyring
	if opener == nil {
		opener = keyring.Open
	}
	secrets := make(chan keyring.Store, 1)
	env.Go("keyring opener", func() { secrets <- openSecrets(runCtx, dirs, log, opener) })
	for _, s := range []struct {
		name  string
		setup func(context.Context, *Env) error
	}{{"probe", setupProbe}, {"whitelist", setupWhitelist}} {
		if err := s.setup(runCtx, env); err != nil {
			// A subsystem that cannot start leaves the others working; its
			// requests answer "unknown type" and the log says why.
			log.Error("subsystem setup failed", "subsystem", s.name, "err", err)
		}
	}
	reportsDone := setupInBackground(runCtx, env, "reports", reportsTypes, func(ctx context.Context, env *Env) error {
		select {
		case env.Secrets = <-secrets:
		case <-ctx.Done():
			return ctx.Err()
		}
		return setupReports(ctx, env)
	})
	srv.setReady()
	log.Info("agent answering", "capabilities", env.Reg.Types())
	allReady := make(chan struct{})
	go func() {
		defer close(allReady)
		<-reportsDone
		if runCtx.Err() != nil {
			return
		}
		log.Info("agent ready", "capabilities", env.Reg.Types())
		if opts.Ready != nil {
			opts.Ready()
		}
	}()

	if !opts.NoTray && hasDesktop() {
		path := opts.TrayPath
		if path == "" {
			path = defaultTrayPath()
		}
		var trayLog io.Writer = io.Discard
		if logFile != nil {
			trayLog = logFile
		}
		env.Go("tray supervisor", func() { superviseTray(runCtx, log, path, trayLog) })
	}

	<-ctx.Done()
	log.Info("agent stopping")
	cancel()
	ln.Close() // removes the socket file (SetUnlinkOnClose)
	<-served
	<-allReady // no setup, and no call to Ready, outlives Run
	left := env.owned.wait(shutdownWait)
	if len(left) > 0 {
		log.Error("agent stopping with goroutines that did not end", "running", left, "waited", shutdownWait)
	}
	if opts.stopped != nil {
		opts.stopped(left)
	}
	log.Info("agent stopped")
	return nil
}

// reportsTypes are the request types setupReports registers, known before it
// runs so that hello lists them while the keyring is still opening.
var reportsTypes = []string{"report", "enrol"}

// setupInBackground runs a subsystem's setup without holding up the agent's
// other requests, for a subsystem that waits on something slow (reports on
// the keyring). The setup registers into a registry of its own. The request
// types it will provide are registered in the agent's at once, so that hello
// lists them among the capabilities; a request for one of them waits for the
// setup, within its own deadline, and is then answered by the handler the
// setup registered. When the setup is done its handlers and status sections
// join the agent's registry. Until then its status sections are absent and
// status falls back as for a subsystem that is not there (enrolled: the
// config names an organisation). The returned channel closes when the setup
// is done or has failed.
func setupInBackground(ctx context.Context, env *Env, name string, types []string, setup func(context.Context, *Env) error) <-chan struct{} {
	own := NewRegistry(env.Reg.events)
	senv := *env
	senv.Reg = own
	done := make(chan struct{})
	for _, typ := range types {
		env.Reg.Handle(typ, func(ctx context.Context, req protocol.Request) (any, error) {
			select {
			case <-done:
			case <-ctx.Done():
				return nil, protocol.Errorf(protocol.CodeTimeout, "%s: the agent's %s part is still starting", req.Type, name)
			}
			return own.Dispatch(ctx, req)
		})
	}
	go func() {
		defer close(done)
		if err := setup(ctx, &senv); err != nil && ctx.Err() == nil {
			// As for any subsystem: the others keep working, its requests
			// answer "unknown type", and the log says why.
			env.Log.Error("subsystem setup failed", "subsystem", name, "err", err)
		}
		adopt(env.Reg, own, types)
	}()
	return done
}

// adopt moves what a background setup registered into the agent's registry,
// in place of the waiting handlers it stood in for.
func adopt(into, from *Registry, waiting []string) {
	from.mu.RLock()
	defer from.mu.RUnlock()
	into.mu.Lock()
	defer into.mu.Unlock()
	for _, typ := range waiting {
		delete(into.handlers, typ)
	}
	for typ, h := range from.handlers {
		into.handlers[typ] = h
	}
	for section, f := range from.status {
		into.status[section] = f
	}
}

// openSecrets opens the keyring, bounded: keyring.Open has its own timeout,
// but a Secret Service that hangs must not hold the reports subsystem past
// it, nor the agent's shutdown. (The call into the keyring itself is the one
// goroutine the agent cannot own: a hung D-Bus call cannot be cancelled.)
func openSecrets(ctx context.Context, dirs paths.Dirs, log *slog.Logger, open func(paths.Dirs) (keyring.Store, error)) keyring.Store {
	type result struct {
		s   keyring.Store
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := open(dirs)
		ch <- result{s, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			log.Error("keyring unavailable", "err", r.err)
			return nil
		}
		if err := keyring.Unavailable(r.s); err != nil {
			log.Warn("secrets kept in a file, not the OS keyring", "reason", err)
		}
		return r.s
	case <-time.After(keyring.DefaultTimeout + 2*time.Second):
		log.Error("keyring did not open in time; running without secrets")
		return nil
	case <-ctx.Done():
		return nil
	}
}

// hasDesktop says whether a tray can show. Windows always has the notification
// area in an interactive session, so there is nothing to check.
func hasDesktop() bool {
	if runtime.GOOS == "windows" {
		return true
	}
	return os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != ""
}

func defaultTrayPath() string {
	exe, err := os.Executable()
	if err != nil {
		return "detour-tray"
	}
	name := "detour-tray"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	return filepath.Join(filepath.Dir(exe), name)
}
