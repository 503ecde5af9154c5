package agent

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/detour-project/detour/helper/fingerprint"
	"github.com/detour-project/detour/helper/probe"
	"github.com/detour-project/detour/helper/whitelist"
	"github.com/detour-project/detour/shared/method"
	"github.com/detour-project/detour/shared/protocol"
)

// Diagnosis in the agent: verdicts are cached per origin for a short while,
// because a failing page fires several browser signals in a row and each
// would otherwise probe the network again.
const (
	diagnoseCacheTTL  = 60 * time.Second
	diagnoseCacheSize = 256
	// diagnoseTimeout stays under the extension's 8 s wait for an answer.
	diagnoseTimeout = 7 * time.Second
)

// setupProbe wires the probe subsystem into the agent: env.Diagnose and the
// `diagnose` handler. Probe options come from the DETOUR_PROBE_* variables
// (test and development knobs, see helper/probe/env.go); a real network
// needs none of them.
func setupProbe(ctx context.Context, env *Env) error {
	_ = ctx
	opts, err := probe.FromEnv(os.Getenv)
	if err != nil {
		env.Log.Warn("probe: ignoring DETOUR_PROBE_* settings", "err", err)
		opts = probe.Options{}
	}
	if opts.Timeout <= 0 {
		opts.Timeout = diagnoseTimeout
	}
	opts = probe.WithDefaults(opts)
	// The hub's control measurement, when the enrolled hub offers it: asked
	// only for an ambiguous verdict, naming the catalog host only.
	opts.Control = &probe.Control{
		Hub:     func() string { return env.Config.Get().Hub },
		HostFor: func(host string) string { return catalogHost(env, host) },
	}
	d := newDiagnoser(opts, func(host string) *string { return catalogID(env, host) })
	env.Diagnose = func(ctx context.Context, rawURL string) (probe.Verdict, error) {
		origin, err := originOf(rawURL)
		if err != nil {
			return probe.Verdict{}, err
		}
		return d.diagnose(ctx, origin)
	}
	env.Reg.Handle("diagnose", func(ctx context.Context, req protocol.Request) (any, error) {
		var p protocol.DiagnoseParams
		if err := req.Decode(&p); err != nil {
			return nil, err
		}
		origin, err := originOf(p.URL)
		if err != nil {
			return nil, protocol.Errorf(protocol.CodeInvalidParams, "diagnose: %v", err)
		}
		u, _ := url.Parse(origin)
		if catalogID(env, u.Hostname()) == nil {
			return nil, protocol.Errorf(protocol.CodeNotInCatalog, "%s is not a catalog host", u.Hostname())
		}
		v, err := d.diagnose(ctx, origin)
		if err != nil {
			return nil, err
		}
		return withSignal(v, p.Signal), nil
	})
	return nil
}

// catalogID names a host's catalog service from the synced whitelist, or
// from the seed catalog before the first sync.
func catalogID(env *Env, host string) *string {
	ix := whitelist.SeedIndex()
	if env.Whitelist != nil {
		if doc := env.Whitelist.Current(); doc != nil {
			if s := doc.ServiceForHost(host); s != nil {
				id := s.ID
				return &id
			}
			return nil
		}
	}
	if s := ix.ServiceForHost(host); s != nil {
		id := s.ID
		return &id
	}
	return nil
}

// catalogHost is the catalog's own host name for host (zoom.us for
// tenant.zoom.us), "" when host is not a catalog host: what may be named to
// the hub.
func catalogHost(env *Env, host string) string {
	doc := whitelist.SeedIndex().Document()
	if env.Whitelist != nil {
		if cur := env.Whitelist.Current(); cur != nil {
			doc = cur
		}
	}
	if doc == nil {
		return ""
	}
	_, matched := doc.MatchHost(host)
	return matched
}

// originOf keeps only scheme, host and port: the path and query of the
// person's browsing are never probed, stored or logged.
func originOf(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", fmt.Errorf("url is not a URL")
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "http" && scheme != "https") || u.Hostname() == "" {
		return "", fmt.Errorf("url must be an http or https URL with a host")
	}
	return scheme + "://" + strings.ToLower(u.Host) + "/", nil
}

// diagnoser probes with a small time-bounded cache and runs one probe per
// origin at a time (concurrent askers share it).
type diagnoser struct {
	opts    probe.Options
	catalog func(string) *string
	probe   func(ctx context.Context, rawURL string, o probe.Options) (probe.Verdict, error)
	now     func() time.Time

	mu       sync.Mutex
	cache    map[string]cached
	inflight map[string]*diagCall
}

type cached struct {
	v  probe.Verdict
	at time.Time
}

type diagCall struct {
	done chan struct{}
	v    probe.Verdict
	err  error
}

func newDiagnoser(opts probe.Options, catalog func(string) *string) *diagnoser {
	return &diagnoser{opts: opts, catalog: catalog, probe: probe.Probe, now: time.Now,
		cache: map[string]cached{}, inflight: map[string]*diagCall{}}
}

func (d *diagnoser) diagnose(ctx context.Context, origin string) (probe.Verdict, error) {
	d.mu.Lock()
	if c, ok := d.cache[origin]; ok && d.now().Sub(c.at) < diagnoseCacheTTL {
		d.mu.Unlock()
		return copyVerdict(c.v), nil
	}
	if c, ok := d.inflight[origin]; ok {
		d.mu.Unlock()
		select {
		case <-c.done:
			return copyVerdict(c.v), c.err
		case <-ctx.Done():
			return probe.Verdict{}, protocol.Errorf(protocol.CodeTimeout, "diagnose: %v", ctx.Err())
		}
	}
	c := &diagCall{done: make(chan struct{})}
	d.inflight[origin] = c
	d.mu.Unlock()

	o := d.opts
	o.Catalog = d.catalog
	// The probe runs to its own deadline even if this asker goes away, so
	// that others waiting on it, and the cache, get the answer.
	c.v, c.err = d.probe(context.WithoutCancel(ctx), origin, o)

	d.mu.Lock()
	delete(d.inflight, origin)
	if c.err == nil {
		if len(d.cache) >= diagnoseCacheSize {
			d.evictLocked()
		}
		d.cache[origin] = cached{v: c.v, at: d.now()}
	}
	d.mu.Unlock()
	close(c.done)
	if c.err != nil {
		return probe.Verdict{}, fmt.Errorf("diagnose %s: %w", origin, c.err)
	}
	return copyVerdict(c.v), nil
}

// evictLocked drops expired entries, or the oldest when none has expired.
func (d *diagnoser) evictLocked() {
	now := d.now()
	var oldest string
	var oldestAt time.Time
	for k, c := range d.cache {
		if now.Sub(c.at) >= diagnoseCacheTTL {
			delete(d.cache, k)
			continue
		}
		if oldest == "" || c.at.Before(oldestAt) {
			oldest, oldestAt = k, c.at
		}
	}
	if len(d.cache) >= diagnoseCacheSize && oldest != "" {
		delete(d.cache, oldest)
	}
}

func copyVerdict(v probe.Verdict) probe.Verdict {
	v.Evidence = append([]string(nil), v.Evidence...)
	v.Facts = append([]protocol.Fact(nil), v.Facts...)
	return v
}

// signalMethods maps the browser's error strings (Chrome's net::ERR_* and
// Firefox's NS_ERROR_*) to the method they suggest. Unknown strings suggest
// nothing; ERR_BLOCKED_BY_CLIENT (an extension such as an ad blocker) is
// never the organisation's block.
var signalMethods = map[string]string{
	"ERR_BLOCKED_BY_ADMINISTRATOR":      method.BrowserPolicy,
	"ERR_TUNNEL_CONNECTION_FAILED":      method.ProxyRefused,
	"NS_ERROR_PROXY_FORBIDDEN":          method.ProxyRefused,
	"ERR_NAME_NOT_RESOLVED":             method.DNSNXDomain,
	"NS_ERROR_UNKNOWN_HOST":             method.DNSNXDomain,
	"ERR_CONNECTION_RESET":              method.TCPReset,
	"NS_ERROR_NET_RESET":                method.TCPReset,
	"ERR_CONNECTION_TIMED_OUT":          method.TCPTimeout,
	"NS_ERROR_NET_TIMEOUT":              method.TCPTimeout,
	"ERR_CERT_AUTHORITY_INVALID":        method.TLSIntercepted,
	"SEC_ERROR_UNKNOWN_ISSUER":          method.TLSIntercepted,
	"ERR_SSL_PROTOCOL_ERROR":            method.TLSReset,
	"ERR_CONNECTION_CLOSED":             method.TLSReset,
	"ERR_CONNECTION_REFUSED":            method.SiteDown,
	"NS_ERROR_CONNECTION_REFUSED":       method.SiteDown,
	"ERR_INTERNET_DISCONNECTED":         method.Offline,
	"NS_ERROR_OFFLINE":                  method.Offline,
	"ERR_NETWORK_ACCESS_DENIED":         method.Unknown,
	"ERR_BLOCKED_BY_CLIENT":             method.Unknown,
	"ERR_HTTP_RESPONSE_CODE_FAILURE":    method.Unknown,
	"ERR_CERT_COMMON_NAME_INVALID":      method.Unknown,
	"SSL_ERROR_BAD_CERT_DOMAIN":         method.Unknown,
	"ERR_BLOCKED_BY_RESPONSE":           method.Unknown,
	"ERR_PROXY_CONNECTION_FAILED":       method.Offline,
	"NS_ERROR_PROXY_CONNECTION_REFUSED": method.Offline,
}

func signalMethod(s *protocol.Signal) string {
	if s == nil {
		return ""
	}
	e := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s.Error)), "NET::")
	if m, ok := signalMethods[e]; ok && m != method.Unknown {
		return m
	}
	switch s.Status {
	case 403, 451, 407:
		return method.HTTPStatus
	case 511:
		return method.CaptivePortal
	}
	return ""
}

// withSignal combines the probe's verdict with what the browser saw. The
// browser's own policy block is invisible to the probe, so that signal
// wins; otherwise a signal that agrees raises confidence, and one fills the
// gap only when the probe could not tell (unknown). A signal never turns a
// site that is down, a captive portal or an offline device into a block.
func withSignal(v probe.Verdict, s *protocol.Signal) probe.Verdict {
	v = withRedirectSignal(v, s)
	m := signalMethod(s)
	if m == "" {
		return v
	}
	// What the browser saw, as a fact: its error string or its status.
	what, val := "error", strings.TrimSpace(s.Error)
	if s.Error == "" {
		what, val = "status", fmt.Sprint(s.Status)
	}
	switch {
	case m == method.BrowserPolicy:
		v.Blocked, v.Possible, v.Method, v.Vendor, v.Confidence = true, false, method.BrowserPolicy, nil, 0.95
		addFact(&v, "browser."+what+"-policy", what, val)
	case m == v.Method:
		v.Confidence = min(0.99, v.Confidence+0.1)
		addFact(&v, "browser."+what+"-agrees", what, val)
	case v.Method == method.Unknown && method.IsBlock(m):
		v.Blocked, v.Possible, v.Method, v.Confidence = true, false, m, 0.5
		addFact(&v, "browser."+what+"-decides", what, val)
	case v.Method == method.Unknown:
		v.Method, v.Confidence = m, 0.4
		addFact(&v, "browser."+what, what, val)
	}
	return v
}

// addFact appends a fact and its English sentence, keeping evidence and
// facts one for one.
func addFact(v *probe.Verdict, code string, kv ...string) {
	f := protocol.Fact{Code: code, Values: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Values[kv[i]] = kv[i+1]
	}
	if len(v.Facts) >= 50 || len(v.Evidence) >= 50 { // the protocol's limit: the last one makes room
		v.Facts, v.Evidence = v.Facts[:min(len(v.Facts), 49)], v.Evidence[:min(len(v.Evidence), 49)]
	}
	v.Facts = append(v.Facts, f)
	v.Evidence = append(v.Evidence, probe.Render(f))
}

// withRedirectSignal uses the host the browser was redirected to: a known
// filter's block host names the vendor, and decides when the probe saw the
// site reachable or could not tell (the browser's path may differ from the
// agent's, for example through a per-browser proxy).
func withRedirectSignal(v probe.Verdict, s *protocol.Signal) probe.Verdict {
	if s == nil || s.RedirectHost == "" {
		return v
	}
	host := strings.ToLower(strings.TrimSuffix(s.RedirectHost, "."))
	m, ok := fingerprint.Default().MatchRedirect(&url.URL{Scheme: "https", Host: host, Path: "/"})
	if !ok || m.Kind != fingerprint.KindBlock {
		return v
	}
	switch {
	case v.Blocked && v.Vendor == nil:
		vendor := m.Vendor
		v.Vendor = &vendor
		addFact(&v, "browser.redirect-blockpage", "host", host, "vendor", m.Vendor)
	case v.Blocked && *v.Vendor == m.Vendor:
		v.Confidence = min(0.99, v.Confidence+0.1)
		addFact(&v, "browser.redirect-agrees", "host", host, "vendor", m.Vendor)
	case !v.Blocked && (v.Possible || v.Method == method.Reachable || v.Method == method.Unknown):
		// The browser itself was sent to a product's block host: that is
		// specific, and settles a possible block.
		vendor := m.Vendor
		v.Blocked, v.Possible, v.Method, v.Vendor, v.Confidence = true, false, method.HTTPBlockpage, &vendor, 0.8
		addFact(&v, "browser.redirect-blockpage", "host", host, "vendor", m.Vendor)
	}
	return v
}
