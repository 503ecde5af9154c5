package agent

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/detour-project/detour/helper/config"
	"github.com/detour-project/detour/helper/reports"
	"github.com/detour-project/detour/shared/fingerprints"
	"github.com/detour-project/detour/shared/method"
	"github.com/detour-project/detour/shared/protocol"
	"github.com/detour-project/detour/shared/version"
)

// ReportDelayEnv sets the random delay before a report is sent: "MIN-MAX"
// as Go durations ("30s-10m", the default) or "0" to send at once (tests,
// demos). The stash refill waits up to three times MAX.
const ReportDelayEnv = "DETOUR_REPORT_DELAY"

// setupReports wires the reports subsystem into the agent: the `report` and
// `enrol` handlers, the "reports" and "enrolled" status sections, the
// service-approved watch on the whitelist, and the sender, which stops when
// ctx ends.
func setupReports(ctx context.Context, env *Env) error {
	opts := reports.Options{
		Dirs: env.Dirs, Config: env.Config, Secrets: env.Secrets,
		Log: env.Log.With("subsystem", "reports"), Publish: env.Reg.Publish,
	}
	if v := os.Getenv(ReportDelayEnv); v != "" {
		lo, hi, err := parseDelay(v)
		if err != nil {
			return err
		}
		opts.MinDelay, opts.MaxDelay = lo, hi
		opts.RefillDelay = max(3*hi, 10*time.Millisecond)
		if hi == 0 {
			opts.MinDelay, opts.MaxDelay = time.Nanosecond, time.Nanosecond
			opts.Backoff = 200 * time.Millisecond
		}
	}
	rep, err := reports.New(opts)
	if err != nil {
		return err
	}
	env.Reg.Status(SectionReports, func() any { return rep.Status() })
	env.Reg.Status(SectionEnrolled, func() any { return rep.Enrolled() })
	if env.Whitelist != nil {
		env.Whitelist.OnUpdate(rep.OnWhitelist)
	}
	env.Reg.Handle("report", func(ctx context.Context, req protocol.Request) (any, error) {
		return handleReport(ctx, env, rep, req)
	})
	env.Reg.Handle("enrol", func(ctx context.Context, req protocol.Request) (any, error) {
		var p protocol.EnrolParams
		if err := req.Decode(&p); err != nil {
			return nil, err
		}
		if p.Hub == "" || p.Code == "" {
			return nil, protocol.Errorf(protocol.CodeInvalidParams, "enrol: hub and code are required")
		}
		e, err := rep.Enrol(ctx, p.Hub, p.Code)
		if err != nil {
			return nil, protocol.Errorf(protocol.CodeHubUnreachable, "%v", err)
		}
		afterEnrol(ctx, env, e.Hub, e.Org)
		return protocol.EnrolResult{Hub: e.Hub, Org: e.Org, WhitelistKeys: e.WhitelistKeys}, nil
	})
	env.Go("report sender", func() { rep.Run(ctx) })
	env.Go("managed enrolment", func() { enrolManaged(ctx, env, rep) })
	return nil
}

// afterEnrol fetches the whitelist with the newly pinned keys (so a report
// made right after enrolment finds its service), then tells connected
// clients: a browser that said hello before enrolment (the usual order when
// the organisation's policy enrols the device as the agent starts) would
// otherwise not know the person's organisation until it reconnects.
func afterEnrol(ctx context.Context, env *Env, hub, org string) {
	if env.Whitelist != nil {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := env.Whitelist.Sync(sctx); err != nil {
			env.Log.Warn("enrol: whitelist sync failed; it will be retried", "err", err)
		}
		cancel()
	}
	env.Reg.Publish(protocol.EventEnrolmentChanged, protocol.EnrolmentChanged{Enrolled: true, Org: strOrNil(org), Hub: strOrNil(hub)})
}

// ManagedRootEnv puts the managed policy file under another root (tests).
const ManagedRootEnv = "DETOUR_MANAGED_ROOT"

// enrolManaged enrols the device with the hub and enrolment code of the
// organisation's managed policy, when both are set and the device is not
// enrolled yet, retrying with backoff while the hub is away.
func enrolManaged(ctx context.Context, env *Env, rep *reports.Reporter) {
	m, err := config.ReadManaged(os.Getenv(ManagedRootEnv))
	if err != nil {
		env.Log.Error("reports: managed policy unreadable; no managed enrolment", "err", err)
		return
	}
	if m == nil || m.Hub == "" || m.EnrolmentCode == "" || rep.Enrolled() {
		return
	}
	wait := time.Second
	for {
		e, err := rep.Enrol(ctx, m.Hub, m.EnrolmentCode)
		if err == nil {
			env.Log.Info("enrolled by managed policy", "org", e.Org)
			afterEnrol(ctx, env, e.Hub, e.Org)
			return
		}
		env.Log.Warn("reports: managed enrolment failed; will retry", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Minute)
	}
}

func parseDelay(v string) (time.Duration, time.Duration, error) {
	if v == "0" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(v, "-")
	lo, err1 := time.ParseDuration(a)
	hi, err2 := time.ParseDuration(b)
	if !ok || err1 != nil || err2 != nil || lo < 0 || hi < lo {
		return 0, 0, fmt.Errorf("agent: %s=%q: want MIN-MAX durations (e.g. 30s-10m) or 0", ReportDelayEnv, v)
	}
	return lo, hi, nil
}

var hostRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$`)

// handleReport builds a report of exactly the eight fields from a catalog
// host, diagnosing first when no method is given, and queues it durably
// before answering.
func handleReport(ctx context.Context, env *Env, rep *reports.Reporter, req protocol.Request) (any, error) {
	var p protocol.ReportParams
	if err := req.Decode(&p); err != nil {
		return nil, err
	}
	host := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(p.Host)), ".")
	if !hostRe.MatchString(host) {
		return nil, protocol.Errorf(protocol.CodeInvalidParams, "report: host must be a host name such as docs.google.com, not a URL")
	}
	if !method.ValidNeed(p.Need) {
		return nil, protocol.Errorf(protocol.CodeInvalidParams, "report: need must be one of %s", strings.Join(method.Needs, ", "))
	}
	if !rep.Enrolled() {
		return nil, protocol.Errorf(protocol.CodeNotEnrolled, "reporting needs enrolment first: detour enrol --hub URL --code CODE")
	}
	if rep.Revoked() {
		return nil, reports.ErrDeviceRevoked
	}
	if env.Whitelist != nil && env.Whitelist.Current() == nil {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		env.Whitelist.Sync(sctx) // a first copy, if the hub answers
		cancel()
	}
	if env.Whitelist == nil || env.Whitelist.Current() == nil {
		return nil, protocol.Errorf(protocol.CodeNotInCatalog, "no whitelist yet, so %s cannot be matched to a catalog service", host)
	}
	doc := env.Whitelist.Current()
	// Report the catalog host, never the subdomain the person was on (it
	// may name a tenant).
	svc, catalogHost := doc.MatchHost(host)
	if svc == nil {
		return nil, protocol.Errorf(protocol.CodeNotInCatalog, "%s is not a catalog service", host)
	}
	m, vendor := p.Method, p.Vendor
	if m == "" {
		m = method.Unknown
		if env.Diagnose != nil {
			v, err := env.Diagnose(ctx, "https://"+host+"/")
			if err == nil && method.IsBlock(v.Method) {
				m = v.Method
				if v.Vendor != nil {
					vendor = *v.Vendor
				}
			} else if err == nil {
				// The person says it is blocked; the probe could not confirm
				// (offline, site down, reachable from here): say unknown
				// rather than count a non-block as a way of blocking.
				env.Log.Info("report: diagnosis found no block; reporting method unknown", "verdict", v.Method)
			} else {
				env.Log.Warn("report: diagnosis failed; reporting method unknown", "err", err)
			}
		}
	}
	if !method.Valid(m) {
		return nil, protocol.Errorf(protocol.CodeInvalidParams, "report: method %q is not a method name", m)
	}
	r := reports.Report{
		Service: svc.ID, Host: catalogHost, Org: env.Config.Get().Org, Method: m, Vendor: vendorID(vendor),
		Need: p.Need, Hour: time.Now().UTC().Truncate(time.Hour).Format(time.RFC3339), ClientVersion: version.Version,
	}
	id, queued, err := rep.Enqueue(r, p.Now)
	if err != nil {
		return nil, err
	}
	state := "queued"
	if p.Now {
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if rep.SendNow(sctx, id) {
			state, queued = "sent", rep.Status().Queued
		}
	}
	return protocol.ReportResult{State: state, Queued: queued}, nil
}

var vendorRe = regexp.MustCompile(`^[a-z][a-z0-9-]{0,47}$`)

// vendorID turns what the browser or the probe named into a fingerprint id
// ("zscaler"), or "" when it is not one: the hub takes ids only.
func vendorID(v string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return ""
	}
	f, err := fingerprints.Load()
	if err != nil {
		return ""
	}
	for _, fp := range f.Fingerprints {
		if strings.EqualFold(fp.ID, v) || strings.EqualFold(fp.Vendor, v) || strings.EqualFold(fp.Name, v) {
			return fp.ID
		}
	}
	if l := strings.ToLower(v); vendorRe.MatchString(l) {
		return l
	}
	return ""
}
