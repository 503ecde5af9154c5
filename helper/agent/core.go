package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/detour-project/detour/helper/config"
	"github.com/detour-project/detour/shared/huburl"
	"github.com/detour-project/detour/shared/protocol"
	"github.com/detour-project/detour/shared/version"
)

// Well-known status sections. A subsystem registers them with Registry.Status
// and the core folds them into hello and status; any other section appears
// in status under its own name.
const (
	// SectionHub: {"reachable": bool} (the URL comes from the config).
	SectionHub = "hub"
	// SectionWhitelist: a protocol.WhitelistStatus (or the same JSON shape).
	SectionWhitelist = "whitelist"
	// SectionReports: a protocol.ReportsStatus (or the same JSON shape).
	SectionReports = "reports"
	// SectionEnrolled: a bool; without it a device counts as enrolled when
	// the config names an organisation.
	SectionEnrolled = "enrolled"
)

// Settings names, as config.Managed lists them.
const (
	SettingReportAutomatically = "report_automatically"
	SettingPausedUntil         = "paused_until"
)

// registerCore adds the handlers every agent has: hello, status, settings.
func registerCore(env *Env) {
	env.Reg.Handle("hello", func(ctx context.Context, req protocol.Request) (any, error) { return hello(env, req) })
	env.Reg.Handle("status", func(ctx context.Context, req protocol.Request) (any, error) { return statusWithExtras(env) })
	env.Reg.Handle("settings", func(ctx context.Context, req protocol.Request) (any, error) { return settings(env, req) })
}

func hello(env *Env, req protocol.Request) (any, error) {
	var p protocol.HelloParams
	if err := req.Decode(&p); err != nil {
		return nil, err
	}
	if p.Version != protocol.Version {
		return nil, protocol.Errorf(protocol.CodeBadVersion, "this agent speaks protocol version %d, the client version %d", protocol.Version, p.Version)
	}
	if !slices.Contains(protocol.Browsers, p.Browser) {
		return nil, protocol.Errorf(protocol.CodeInvalidParams, "hello: unknown browser %q", p.Browser)
	}
	st := status(env)
	return protocol.HelloResult{
		Version:          version.Version,
		Protocol:         protocol.Version,
		Capabilities:     env.Reg.Types(),
		Enrolled:         st.Enrolled,
		Org:              st.Org,
		Hub:              st.Hub.URL,
		WhitelistVersion: st.Whitelist.Version,
		WhitelistStale:   st.Whitelist.Stale,
	}, nil
}

// status gathers the state from the config and the subsystems' sections.
func status(env *Env) protocol.StatusResult {
	cfg := env.Config.Get()
	snap := env.Reg.Snapshot()
	st := protocol.StatusResult{
		Version:  version.Version,
		Hub:      protocol.HubStatus{URL: strOrNil(cfg.Hub)},
		Org:      strOrNil(cfg.Org),
		Enrolled: cfg.Org != "",
		Settings: settingsOf(cfg),
	}
	if v, ok := snap[SectionEnrolled]; ok {
		convert(env, SectionEnrolled, v, &st.Enrolled)
	}
	if v, ok := snap[SectionHub]; ok {
		var h protocol.HubStatus
		if convert(env, SectionHub, v, &h) {
			st.Hub.Reachable = h.Reachable
		}
	}
	if v, ok := snap[SectionWhitelist]; ok {
		convert(env, SectionWhitelist, v, &st.Whitelist)
	} else if env.Whitelist != nil {
		if d := env.Whitelist.Current(); d != nil {
			st.Whitelist = protocol.WhitelistStatus{Version: &d.Version, IssuedAt: &d.IssuedAt, ExpiresAt: &d.ExpiresAt, Stale: time.Now().After(d.ExpiresAt)}
		}
	} else {
		// No whitelist at all: stale when a hub should have provided one.
		st.Whitelist.Stale = cfg.Hub != ""
	}
	if v, ok := snap[SectionReports]; ok {
		convert(env, SectionReports, v, &st.Reports)
	}
	return st
}

// statusWithExtras is the status reply: the fixed sections plus any other
// section a subsystem registered, under its own name.
func statusWithExtras(env *Env) (any, error) {
	st := status(env)
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	for name, v := range env.Reg.Snapshot() {
		if _, taken := out[name]; !taken && name != SectionEnrolled {
			out[name] = v
		}
	}
	return out, nil
}

// convert copies a section of any type into the protocol's shape through
// JSON, so subsystems need not import each other's types.
func convert(env *Env, name string, v any, out any) bool {
	b, err := json.Marshal(v)
	if err == nil {
		err = json.Unmarshal(b, out)
	}
	if err != nil {
		env.Log.Error("status section has the wrong shape", "section", name, "err", err)
		return false
	}
	return true
}

func settingsOf(cfg config.Config) protocol.Settings {
	s := protocol.Settings{ReportAutomatically: cfg.ReportAutomatically, PausedUntil: cfg.PausedUntil, Prompts: cfg.Prompts, Managed: cfg.Managed}
	if s.Managed == nil {
		s.Managed = []string{}
	}
	return s
}

// settings reads the settings and, with `set`, changes them. A setting that
// the organisation's policy fixes is refused whole: nothing is changed.
func settings(env *Env, req protocol.Request) (any, error) {
	var p protocol.SettingsParams
	if err := req.Decode(&p); err != nil {
		return nil, err
	}
	if p.Set == nil {
		return settingsOf(env.Config.Get()), nil
	}
	var out config.Config
	err := env.Config.Update(func(c *config.Config) error {
		if p.Set.ReportAutomatically != nil {
			if slices.Contains(c.Managed, SettingReportAutomatically) {
				return protocol.Errorf(protocol.CodeInvalidParams, "report_automatically is set by your organisation's policy and cannot be changed here")
			}
			c.ReportAutomatically = *p.Set.ReportAutomatically
		}
		if p.Set.PausedUntil.Present {
			if slices.Contains(c.Managed, SettingPausedUntil) {
				return protocol.Errorf(protocol.CodeInvalidParams, "paused_until is set by your organisation's policy and cannot be changed here")
			}
			c.PausedUntil = p.Set.PausedUntil.Value
		}
		out = *c
		return nil
	})
	if err != nil {
		return nil, err
	}
	s := settingsOf(out)
	env.Reg.Publish(protocol.EventSettingsChanged, s)
	return s, nil
}

func strOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// checkHubURL applies the one hub-URL rule (shared/huburl) to --hub.
func checkHubURL(raw string) error {
	if _, err := huburl.Parse(raw); err != nil {
		return fmt.Errorf("agent: --hub: %w", err)
	}
	return nil
}
