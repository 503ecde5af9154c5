// Package probe diagnoses why a page does not load: it walks DNS, TCP, TLS
// and HTTP for one URL the way a browser would, each step with its own
// timeout inside an overall deadline, and classifies what it saw with the
// method vocabulary (shared/method): a block and how, or why it is not one
// (reachable, site-down, offline, captive-portal, unknown). Filter vendors
// are named from shared/fingerprints via helper/fingerprint.
//
// The probe errs towards "not a block": a site that is down, a captive
// portal or a CDN's challenge is never reported as the organisation's block,
// because a wrong "blocked" costs more trust than a missed one.
package probe

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/detour-project/detour/helper/fingerprint"
	"github.com/detour-project/detour/shared/method"
	"github.com/detour-project/detour/shared/protocol"
)

// Options configure one probe. The zero value probes with the system
// resolver and trust store, no second opinion, no captive-portal check and
// the proxy from the environment.
type Options struct {
	// DNS is a resolver address (host or host:port) to use instead of the
	// system resolver. Loopback answers from a resolver given here on
	// loopback are believed (a test or development network).
	DNS string
	// SecondDNS are resolvers asked when the first says a name does not
	// exist, to tell a denied name from a typo. See WithDefaults.
	SecondDNS []string
	// ConnectTo are curl-style mappings HOST1:PORT1:HOST2:PORT2: a request
	// for HOST1:PORT1 connects to HOST2:PORT2 instead, without resolving
	// HOST1 (empty HOST1/PORT1 match any; empty HOST2/PORT2 keep the
	// original). The mapped address is never judged a sinkhole.
	ConnectTo []string
	// CAFile replaces the system trust store (the machine's roots).
	CAFile string
	// PublicCAFile adds roots to the bundled public root list: a test
	// network's stand-in for the public web PKI.
	PublicCAFile string
	// Proxy is an explicit proxy URL; empty means HTTPS_PROXY, HTTP_PROXY
	// and NO_PROXY from the environment.
	Proxy string
	// Timeout bounds the whole probe (default 15 s).
	Timeout time.Duration
	// CaptiveURL is a plain-http URL that answers 204 (or 200 with
	// "success") when there is no captive portal. Empty: no check. It also
	// serves as the reference that tells "only this site" from "nothing".
	CaptiveURL string
	// Catalog returns the catalog service id for a host, or nil.
	Catalog func(host string) *string
	// Roots overrides the machine's trust store (tests); CAFile wins.
	Roots *x509.CertPool
	// Fingerprints overrides the embedded fingerprint set.
	Fingerprints *fingerprint.Set
	// Control is the hub's control measurement, asked only when the
	// verdict is ambiguous for a catalog host; nil: never asked.
	Control *Control
}

// Defaults for probing a real network, applied by WithDefaults.
const (
	DefaultCaptiveURL = "http://connectivitycheck.gstatic.com/generate_204"
	DefaultTimeout    = 15 * time.Second
)

// DefaultSecondDNS are public resolvers asked for a second opinion.
var DefaultSecondDNS = []string{"1.1.1.1:53", "9.9.9.9:53"}

// WithDefaults fills the captive-portal check and the second-opinion
// resolvers for a probe of the real network. When DNS or ConnectTo is set
// (a test or development setup) it adds nothing, so such a probe never
// sends a packet anywhere it was not told to.
func WithDefaults(o Options) Options {
	if o.DNS != "" || len(o.ConnectTo) > 0 {
		return o
	}
	if o.CaptiveURL == "" {
		o.CaptiveURL = DefaultCaptiveURL
	}
	if o.SecondDNS == nil {
		o.SecondDNS = DefaultSecondDNS
	}
	return o
}

// Step timeouts: each step may use at most this much of what is left.
const (
	dnsStep   = 4 * time.Second
	tcpStep   = 5 * time.Second
	tlsStep   = 5 * time.Second
	httpStep  = 6 * time.Second
	maxHops   = 6
	userAgent = "Mozilla/5.0 (compatible; Detour-probe/1; +https://github.com/detour-project/detour)"
)

// Probe diagnoses rawURL. It returns an error only for a URL it cannot
// probe; every network outcome is a Verdict. It measures first (DNS, TCP,
// TLS, HTTP along the redirect chain), then judges what it measured; the
// connectivity check and the hub's control measurement are weighed only
// when the first judgement leaves room for them.
func Probe(ctx context.Context, rawURL string, o Options) (Verdict, error) {
	start := time.Now()
	u, err := normalise(rawURL)
	if err != nil {
		return Verdict{}, err
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	p, err := newProber(o)
	if err != nil {
		return Verdict{}, err
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	v := Verdict{URL: u.String(), Host: host, Evidence: []string{}, Facts: []protocol.Fact{}}
	if o.Catalog != nil {
		v.Service = o.Catalog(host)
	}
	p.catalog = v.Service != nil
	obs := &observation{url: u, host: host, catalog: p.catalog}

	var ref chan refResult
	if o.CaptiveURL != "" {
		ref = make(chan refResult, 1)
		go func() { ref <- p.checkReference(ctx) }()
	}
	p.measure(ctx, u, obs)
	obs.timedOut = ctx.Err() != nil

	out, _ := judgeObservation(obs, p.fps)
	if ref != nil && (needsReference(out) || (out.method == method.Reachable && redirectedOffHost(obs))) {
		var r refResult
		select {
		case r = <-ref: // already done: taken even when the deadline has passed
		default:
			select {
			case r = <-ref:
			case <-time.After(time.Until(deadlineOr(ctx, time.Now().Add(2*time.Second)))):
				r = refResult{state: refUnknown}
			}
		}
		obs.ref = &r
		out, _ = judgeObservation(obs, p.fps)
	}
	if o.Control != nil && p.catalog && ambiguous(out) {
		obs.control = o.Control.ask(ctx, host)
	}
	out, facts := judgeObservation(obs, p.fps)
	v.Method = out.method
	v.Blocked = method.IsBlock(out.method) && !out.possible
	v.Possible = method.IsBlock(out.method) && out.possible
	if out.vendor != "" {
		vend := out.vendor
		v.Vendor = &vend
	}
	v.Confidence = clamp(out.confidence)
	v.Facts = tidyFacts(facts)
	v.Evidence = englishEvidence(v.Facts)
	v.ElapsedMS = time.Since(start).Milliseconds()
	return v, nil
}

func deadlineOr(ctx context.Context, t time.Time) time.Time {
	if d, ok := ctx.Deadline(); ok && d.Before(t) {
		return d
	}
	return t
}

func clamp(f float64) float64 {
	switch {
	case f < 0:
		return 0
	case f > 1:
		return 1
	}
	return float64(int(f*100+0.5)) / 100
}

// normalise accepts "host", "host/path" or an http(s) URL.
func normalise(raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("probe: bad URL %q: %w", raw, err)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("probe: only http and https URLs can be probed, not %q", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("probe: URL %q has no host", raw)
	}
	u.Fragment = ""
	u.User = nil
	if u.Path == "" {
		u.Path = "/"
	}
	return u, nil
}

// connectRule is one --connect-to mapping.
type connectRule struct{ host1, port1, host2, port2 string }

func parseConnectTo(specs []string) ([]connectRule, error) {
	var out []connectRule
	for _, s := range specs {
		parts, err := splitConnectTo(s)
		if err != nil {
			return nil, err
		}
		out = append(out, connectRule{strings.ToLower(parts[0]), parts[1], parts[2], parts[3]})
	}
	return out, nil
}

// splitConnectTo splits HOST1:PORT1:HOST2:PORT2, where a host may be an
// IPv6 address in brackets.
func splitConnectTo(s string) ([4]string, error) {
	var parts [4]string
	rest := s
	for i := 0; i < 4; i++ {
		if i == 3 {
			parts[i] = rest
			break
		}
		if strings.HasPrefix(rest, "[") {
			end := strings.Index(rest, "]")
			if end < 0 {
				return parts, fmt.Errorf("probe: --connect-to %q: unclosed '['", s)
			}
			parts[i] = rest[1:end]
			rest = rest[end+1:]
			if !strings.HasPrefix(rest, ":") {
				return parts, fmt.Errorf("probe: --connect-to %q: want HOST1:PORT1:HOST2:PORT2", s)
			}
			rest = rest[1:]
			continue
		}
		k := strings.Index(rest, ":")
		if k < 0 {
			return parts, fmt.Errorf("probe: --connect-to %q: want HOST1:PORT1:HOST2:PORT2", s)
		}
		parts[i], rest = rest[:k], rest[k+1:]
	}
	for _, i := range []int{1, 3} {
		if parts[i] != "" {
			if n, err := strconv.Atoi(parts[i]); err != nil || n < 1 || n > 65535 {
				return parts, fmt.Errorf("probe: --connect-to %q: bad port %q", s, parts[i])
			}
		}
	}
	return parts, nil
}

// mapped applies the first matching --connect-to rule.
func (p *prober) mapped(host, port string) (string, string, bool) {
	for _, r := range p.connectTo {
		if (r.host1 == "" || r.host1 == host) && (r.port1 == "" || r.port1 == port) {
			h, pt := r.host2, r.port2
			if h == "" {
				h = host
			}
			if pt == "" {
				pt = port
			}
			return h, pt, true
		}
	}
	return "", "", false
}

func defaultPort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "http" {
		return "80"
	}
	return "443"
}

// errno helpers for dial and read errors.
func isRefused(err error) bool { return errors.Is(err, errConnRefused) }
func isReset(err error) bool {
	return errors.Is(err, errConnReset) || errors.Is(err, errConnAborted) || errors.Is(err, errBrokenPipe)
}
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
func isUnreachable(err error) bool {
	return errors.Is(err, errNetUnreach) || errors.Is(err, errHostUnreach)
}

// addrsString lists addresses for evidence.
func addrsString(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// Evidence limits: the protocol carries at most 50 sentences of at most
// 1000 characters without control characters; a long redirect URL or error
// message is shortened rather than breaking the reply.
const (
	maxEvidence    = 50
	maxEvidenceLen = 480
)

func tidyEvidence(in []string) []string {
	out := make([]string, 0, min(len(in), maxEvidence))
	for _, e := range in {
		if len(out) == maxEvidence {
			out[maxEvidence-1] = "… (further observations left out)"
			break
		}
		out = append(out, tidyText(e, maxEvidenceLen))
	}
	return out
}

// tidyText replaces control characters and shortens s to n characters.
func tidyText(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > n {
		s = string(r[:n-1]) + "…"
	}
	return s
}
