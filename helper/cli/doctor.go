package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/detour-project/detour/helper/config"
	"github.com/detour-project/detour/helper/keyring"
	"github.com/detour-project/detour/helper/localapi"
	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/installer"
	"github.com/detour-project/detour/shared/ids"
	"github.com/detour-project/detour/shared/protocol"
	"github.com/detour-project/detour/shared/version"
)

func init() {
	Add(Command{
		Name:    "doctor",
		Usage:   "[--json]",
		Summary: "check the installation, one line per check with a fix",
		Run:     runDoctor,
	})
}

// Check results.
const (
	CheckOK   = "ok"
	CheckWarn = "warn" // works, but not as it should (e.g. secrets in a file)
	CheckFail = "fail" // broken: the fix says what to do
)

// DoctorCheck is one line of `detour doctor`.
type DoctorCheck struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// DoctorEnv is what a check may look at. Agent and Status are nil when no
// agent answered; Status is the agent's `status` result.
type DoctorEnv struct {
	Dirs   paths.Dirs
	Agent  *localapi.Client
	Status *protocol.StatusResult
	// StatusErr is why a running agent's status could not be read.
	StatusErr error
}

// DoctorFunc is a group of checks. Subsystems add theirs with AddDoctorCheck
// from an init function (e.g. a deeper hub check); they run in order after
// the built-in ones.
type DoctorFunc func(ctx context.Context, env *DoctorEnv) []DoctorCheck

var (
	doctorMu     sync.Mutex
	doctorChecks []DoctorFunc
)

// AddDoctorCheck registers more checks for `detour doctor`.
func AddDoctorCheck(f DoctorFunc) {
	doctorMu.Lock()
	defer doctorMu.Unlock()
	doctorChecks = append(doctorChecks, f)
}

// doctorTimeout bounds the whole run: doctor must answer even when the agent
// or the keyring hangs.
const doctorTimeout = 10 * time.Second

func runDoctor(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the checks as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	dirs, err := paths.Default()
	if err != nil {
		return Fail(stderr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), doctorTimeout)
	defer cancel()
	checks := Doctor(ctx, dirs, installer.Options{})
	if *asJSON {
		if err := PrintJSON(stdout, map[string]any{"checks": checks}); err != nil {
			return Fail(stderr, err)
		}
	} else {
		for _, c := range checks {
			line := fmt.Sprintf("%-4s  %-24s %s", strings.ToUpper(c.Status), c.Name, c.Detail)
			if c.Fix != "" && c.Status != CheckOK {
				line += " — fix: " + c.Fix
			}
			fmt.Fprintln(stdout, line)
		}
	}
	for _, c := range checks {
		if c.Status == CheckFail {
			return 1
		}
	}
	return 0
}

// Doctor runs every check. o is the installer options for the manifest
// checks (the zero value: this machine, this binary).
func Doctor(ctx context.Context, dirs paths.Dirs, o installer.Options) []DoctorCheck {
	env := &DoctorEnv{Dirs: dirs}
	var out []DoctorCheck
	out = append(out, checkBinary(o.Exe))
	out = append(out, checkPackage(ctx, o))
	out = append(out, checkTray(o.Exe))
	out = append(out, checkManifests(o)...)
	out = append(out, checkBrowserPolicy(o)...)
	out = append(out, checkAutostart(o)...)
	out = append(out, checkManaged(o.Root))
	out = append(out, checkKeyring(dirs))
	agent := checkAgent(ctx, env)
	out = append(out, agent)
	if env.Agent != nil {
		defer env.Agent.Close()
	}
	out = append(out, checkHubAndWhitelist(env)...)
	out = append(out, checkEnrolment(env)...)
	doctorMu.Lock()
	extra := append([]DoctorFunc(nil), doctorChecks...)
	doctorMu.Unlock()
	for _, f := range extra {
		out = append(out, f(ctx, env)...)
	}
	return out
}

func checkBinary(exe string) DoctorCheck {
	c := DoctorCheck{Name: "binary"}
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return DoctorCheck{Name: "binary", Status: CheckFail, Detail: err.Error(), Fix: "reinstall Detour"}
		}
	}
	if err := installer.CheckExecutable(exe); err != nil {
		c.Status, c.Detail, c.Fix = CheckFail, err.Error(), "reinstall Detour, or chmod +x "+exe
		if runtime.GOOS == "windows" {
			c.Fix = "reinstall Detour (the MSI, or detour.exe from the release)"
		}
		return c
	}
	c.Status, c.Detail = CheckOK, fmt.Sprintf("%s (version %s)", exe, version.Version)
	return c
}

// checkTray looks for detour-tray beside detour, where the agent looks.
func checkTray(exe string) DoctorCheck {
	if exe == "" {
		exe, _ = os.Executable()
	}
	name := "detour-tray"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	p := filepath.Join(filepath.Dir(exe), name)
	if err := installer.CheckExecutable(p); err != nil {
		return DoctorCheck{Name: "tray", Status: CheckWarn, Detail: "no tray icon: " + err.Error(),
			Fix: "install detour-tray beside detour (make build puts both in bin/)"}
	}
	return DoctorCheck{Name: "tray", Status: CheckOK, Detail: p + " (the agent starts it on a desktop)"}
}

func checkManifests(o installer.Options) []DoctorCheck {
	ms, err := installer.Check(o)
	if err != nil {
		return []DoctorCheck{{Name: "browsers", Status: CheckFail, Detail: err.Error()}}
	}
	if len(ms) == 0 {
		return []DoctorCheck{{Name: "browsers", Status: CheckWarn,
			Detail: "no supported browser found for this user (" + strings.Join(installer.Browsers, ", ") + ")",
			Fix:    "install a browser and start it once, then run `detour install`"}}
	}
	var out []DoctorCheck
	for _, m := range ms {
		c := DoctorCheck{Name: "manifest " + m.Browser + " (" + m.Scope + ")", Status: CheckOK, Detail: where(installer.Entry{Path: m.Path, Key: m.Key})}
		switch {
		case m.Problem != "":
			c.Status, c.Detail = CheckFail, c.Detail+": "+m.Problem
			c.Fix = "run `detour install`"
			switch {
			case m.Scope == "system" && runtime.GOOS == "windows":
				c.Fix = "reinstall the Detour MSI, or run `detour install --system` as an administrator"
			case m.Scope == "system":
				c.Fix = "run `sudo detour install --system`"
			}
		case m.Other != "":
			c.Status, c.Detail = CheckWarn, m.Path+" starts "+m.Other+", not this binary"
			c.Fix = "run `detour install` to register this one, if it is the one you mean to use"
		}
		out = append(out, c)
	}
	return out
}

// checkBrowserPolicy says whether the browsers' own policy lets the native
// host (and the extension) run, where doctor can read that policy.
func checkBrowserPolicy(o installer.Options) []DoctorCheck {
	ms, _ := installer.Check(o)
	pcs, err := installer.CheckBrowserPolicy(o, ms)
	if err != nil {
		return []DoctorCheck{{Name: "browser policy", Status: CheckWarn, Detail: err.Error()}}
	}
	var out []DoctorCheck
	for _, p := range pcs {
		c := DoctorCheck{Name: "browser policy " + p.Browser, Status: CheckOK,
			Detail: "allows the native host " + ids.NativeHost + " (" + strings.Join(p.Sources, ", ") + ")"}
		if p.Problem != "" {
			c.Status, c.Detail, c.Fix = CheckFail, p.Problem+" ("+strings.Join(p.Sources, ", ")+")", p.Fix
		}
		if len(p.Notes) > 0 {
			c.Detail += "; " + strings.Join(p.Notes, "; ")
		}
		out = append(out, c)
	}
	return out
}

func checkManaged(root string) DoctorCheck {
	c := DoctorCheck{Name: "managed policy", Status: CheckOK}
	m, err := config.ReadManaged(root)
	switch {
	case err != nil:
		c.Status, c.Detail = CheckFail, err.Error()
		c.Fix = "ask your IT team to correct " + config.ManagedPath
	case m == nil:
		c.Detail = "none (" + config.ManagedPath + " absent): settings are the person's own"
	default:
		var parts []string
		if m.Hub != "" {
			parts = append(parts, "hub "+m.Hub)
		}
		if m.Org != "" {
			parts = append(parts, "organisation "+m.Org)
		}
		if len(m.WhitelistKeys) > 0 {
			parts = append(parts, fmt.Sprintf("%d pinned key(s)", len(m.WhitelistKeys)))
		}
		if m.ReportAutomatically != nil {
			parts = append(parts, fmt.Sprintf("report automatically %t", *m.ReportAutomatically))
		}
		if m.Prompts != nil {
			parts = append(parts, fmt.Sprintf("prompts %t", *m.Prompts))
		}
		c.Detail = config.ManagedPath + ": " + strings.Join(parts, ", ")
	}
	return c
}

func checkKeyring(dirs paths.Dirs) DoctorCheck {
	d := keyring.Diagnose(dirs)
	c := DoctorCheck{Name: "keyring", Status: CheckOK, Detail: "secrets are kept in the " + d.Backend}
	switch {
	case d.Problem != "":
		c.Status = CheckWarn
		c.Detail = "no OS keyring answered (" + d.Problem + "); secrets fall back to a file readable by you alone: " + dirs.State + "/" + keyring.FileName
		c.Fix = "install and unlock a Secret Service (e.g. gnome-keyring) in your session, then restart the agent"
	case d.FallbackFile != "":
		c.Status = CheckWarn
		c.Detail += ", but the fallback file " + d.FallbackFile + " still exists"
		c.Fix = "restart the agent: it moves those secrets into the keyring and removes the file"
	}
	return c
}

func checkAgent(ctx context.Context, env *DoctorEnv) DoctorCheck {
	c := DoctorCheck{Name: "agent"}
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	cl, err := localapi.Connect(dctx, localapi.Options{Dirs: env.Dirs, Caller: protocol.CallerCLI})
	switch {
	case errors.Is(err, localapi.ErrNoAgent):
		c.Status, c.Detail = CheckFail, "not running ("+env.Dirs.Socket()+" does not answer)"
		c.Fix = "open your browser (it starts the agent) or run `detour agent`"
		return c
	case err != nil:
		c.Status, c.Detail = CheckFail, "the agent does not answer hello: "+err.Error()
		c.Fix = "see " + env.Dirs.Log() + "; stop the agent and let your browser start it again"
		return c
	}
	env.Agent = cl
	if st, err := cl.Status(dctx); err == nil {
		env.Status = &st
	} else {
		env.StatusErr = err
	}
	c.Status, c.Detail = CheckOK, "running, version "+cl.Hello().Version
	return c
}

func checkHubAndWhitelist(env *DoctorEnv) []DoctorCheck {
	hub := DoctorCheck{Name: "hub"}
	wl := DoctorCheck{Name: "whitelist"}
	if env.StatusErr != nil {
		hub.Status, hub.Detail = CheckFail, "the agent's status reply is not understood: "+env.StatusErr.Error()
		hub.Fix = "make sure detour and the agent are the same version: stop the agent and let it restart"
		return []DoctorCheck{hub}
	}
	if env.Status == nil {
		hub.Status, hub.Detail = CheckWarn, "unknown: the agent is not running"
		wl.Status, wl.Detail = CheckWarn, "unknown: the agent is not running"
		hub.Fix, wl.Fix = "start the agent (see the agent line)", "start the agent (see the agent line)"
		return []DoctorCheck{hub, wl}
	}
	s := env.Status
	hubURL := ""
	if s.Hub.URL != nil {
		hubURL = *s.Hub.URL
	}
	switch {
	case hubURL == "":
		hub.Status, hub.Detail = CheckWarn, "no hub configured"
		hub.Fix = "run `detour enrol --hub URL --code CODE` with the code from your IT team"
	case s.Hub.Reachable == nil:
		hub.Status, hub.Detail = CheckWarn, hubURL+" not contacted yet"
		hub.Fix = "wait a moment and run doctor again; if it stays so, see the agent log " + env.Dirs.Log()
	case !*s.Hub.Reachable:
		hub.Status, hub.Detail = CheckFail, hubURL+" is not reachable"
		hub.Fix = "check the network and that the hub is up; the agent keeps retrying"
	default:
		hub.Status, hub.Detail = CheckOK, hubURL+" reachable"
	}
	switch {
	case s.Whitelist.Version == nil:
		wl.Status, wl.Detail = CheckWarn, "no whitelist yet: suggestions come from the built-in catalog only"
		wl.Fix = "configure a hub (see above); the agent fetches the whitelist at start"
		if hubURL != "" {
			wl.Fix = "the agent fetches it from the hub once the hub answers (see above)"
		}
	case s.Whitelist.Stale:
		wl.Status = CheckWarn
		wl.Detail = fmt.Sprintf("version %d is stale", *s.Whitelist.Version)
		if s.Whitelist.FetchedAt != nil {
			wl.Detail += ", fetched " + s.Whitelist.FetchedAt.Format(time.RFC3339)
		}
		wl.Fix = "make the hub reachable; use the tray's Sync now to fetch at once"
	default:
		wl.Status, wl.Detail = CheckOK, fmt.Sprintf("version %d, fresh", *s.Whitelist.Version)
	}
	return []DoctorCheck{hub, wl}
}
