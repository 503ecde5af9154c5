package probe

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/x509roots/fallback/bundle"
	"golang.org/x/net/http/httpproxy"

	"github.com/detour-project/detour/helper/fingerprint"
	"github.com/detour-project/detour/shared/fingerprints"
	"github.com/detour-project/detour/shared/method"
)

type prober struct {
	o            Options
	res          resolver
	second       []resolver
	connectTo    []connectRule
	publicRoots  *x509.CertPool
	machineRoots *x509.CertPool
	fps          *fingerprint.Set
	proxyFunc    func(*url.URL) (*url.URL, error)
	catalog      bool
	otherHost    bool // the chain redirected to another host
	evidence     []string
}

// dialCheck, when set (tests), sees every address the probe connects to.
var dialCheck func(addr string)

var (
	bundleOnce sync.Once
	bundlePool *x509.CertPool
)

// publicBundle is the bundled Mozilla root list: the public web PKI,
// independent of what this machine has been told to trust.
func publicBundle() *x509.CertPool {
	bundleOnce.Do(func() {
		bundlePool = x509.NewCertPool()
		for r := range bundle.Roots() {
			c, err := x509.ParseCertificate(r.Certificate)
			if err != nil {
				continue
			}
			if r.Constraint == nil {
				bundlePool.AddCert(c)
			} else {
				bundlePool.AddCertWithConstraint(c, r.Constraint)
			}
		}
	})
	return bundlePool
}

func readPool(base *x509.CertPool, file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("probe: reading CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if base != nil {
		pool = base.Clone()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("probe: %s holds no PEM certificate", file)
	}
	return pool, nil
}

func newProber(o Options) (*prober, error) {
	p := &prober{o: o, res: newResolver(o.DNS), fps: o.Fingerprints}
	if p.fps == nil {
		p.fps = fingerprint.Default()
	}
	for _, s := range o.SecondDNS {
		p.second = append(p.second, newResolver(s))
	}
	var err error
	if p.connectTo, err = parseConnectTo(o.ConnectTo); err != nil {
		return nil, err
	}
	p.publicRoots = publicBundle()
	if o.PublicCAFile != "" {
		if p.publicRoots, err = readPool(p.publicRoots, o.PublicCAFile); err != nil {
			return nil, err
		}
	}
	switch {
	case o.CAFile != "":
		if p.machineRoots, err = readPool(nil, o.CAFile); err != nil {
			return nil, err
		}
	case o.Roots != nil:
		p.machineRoots = o.Roots
	default:
		if p.machineRoots, err = x509.SystemCertPool(); err != nil || p.machineRoots == nil {
			p.machineRoots = x509.NewCertPool()
		}
	}
	if o.Proxy != "" {
		pu, err := parseProxy(o.Proxy)
		if err != nil {
			return nil, err
		}
		p.proxyFunc = func(*url.URL) (*url.URL, error) { return pu, nil }
	} else {
		p.proxyFunc = httpproxy.FromEnvironment().ProxyFunc()
	}
	return p, nil
}

func parseProxy(s string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Hostname() == "" {
		return nil, fmt.Errorf("probe: bad proxy URL %q", s)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("probe: only http:// proxies are supported, not %q", u.Scheme)
	}
	return u, nil
}

func (p *prober) note(s string) {
	if s != "" {
		p.evidence = append(p.evidence, s)
	}
}

// step is a context for one step: at most d, and never past the overall
// deadline.
func step(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}

// hop is one HTTP exchange of the redirect chain.
type hop struct {
	status   int
	header   http.Header
	body     []byte
	location string
	tls      *tlsInfo
}

type tlsInfo struct {
	public  bool // verifies against the public roots
	trusted bool // verifies against the machine's roots
	nameOK  bool
	expired bool // public, but outside its validity dates
	issuer  string
	match   *fingerprint.Match // inspection CA recognised by name
}

func (t *tlsInfo) anomalous() bool { return !t.public || !t.nameOK || t.expired }

// run walks the redirect chain from u and classifies what it meets.
func (p *prober) run(ctx context.Context, u *url.URL) outcome {
	var redirects []*url.URL
	var firstTLS *tlsInfo
	cur := u
	for n := 0; n < maxHops; n++ {
		h, fail := p.fetch(ctx, cur)
		if fail != nil {
			if n > 0 && offsite(cur, u) && blockish(cur) {
				p.note(fmt.Sprintf("the site sent the browser to %s, which looks like a filter's block page", cur.Redacted()))
				return outcome{method: method.HTTPStatus, confidence: 0.55}
			}
			if n > 0 && offsite(cur, u) && (fail.method == method.SiteDown || fail.method == method.Unknown) && !fail.network {
				// The first host answered; only the off-site address it sent
				// the browser to is unusable: how a redirect to a filter's
				// internal block server looks from outside, not a site that is down.
				p.note(fmt.Sprintf("%s answered, but sent the browser to %s, which cannot be used", u.Hostname(), cur.Redacted()))
				return outcome{method: method.HTTPStatus, confidence: 0.5}
			}
			if firstTLS != nil && firstTLS.anomalous() {
				return p.fromTLS(firstTLS, false)
			}
			return *fail
		}
		if h.tls != nil && h.tls.anomalous() && firstTLS == nil {
			firstTLS = h.tls
		}
		resp := &fingerprint.Response{Status: h.status, Header: h.header, Redirects: redirects, Body: h.body}
		if m, ok := p.fps.Best(resp); ok {
			return p.fromMatch(m, firstTLS)
		}
		if h.status >= 300 && h.status < 400 && h.location != "" {
			next, err := cur.Parse(h.location)
			if err != nil {
				p.note(fmt.Sprintf("%s redirected to an unreadable address %q", cur.Host, h.location))
				return outcome{method: method.Unknown, confidence: 0.3}
			}
			next.Fragment = ""
			redirects = append(redirects, next)
			p.otherHost = p.otherHost || !strings.EqualFold(next.Hostname(), u.Hostname())
			p.note(fmt.Sprintf("%s answered %d, redirecting to %s", cur.Host, h.status, next.Redacted()))
			if m, ok := p.fps.MatchRedirect(next); ok {
				return p.fromMatch(m, firstTLS)
			}
			if next.Scheme != "http" && next.Scheme != "https" {
				return outcome{method: method.Reachable, confidence: 0.6}
			}
			if offsite(next, u) && blockish(next) {
				p.note("that address is on another site and its name or path says it is a block page, though no known filter's")
				return outcome{method: method.HTTPStatus, vendor: vendorOf(firstTLS), confidence: 0.6}
			}
			cur = next
			continue
		}
		return p.fromStatus(h, firstTLS)
	}
	p.note(fmt.Sprintf("the site redirected more than %d times", maxHops-1))
	return outcome{method: method.Reachable, confidence: 0.4}
}

func vendorOf(t *tlsInfo) string {
	if t != nil && t.match != nil {
		return t.match.Vendor
	}
	return ""
}

func (p *prober) fromMatch(m fingerprint.Match, t *tlsInfo) outcome {
	what := strings.Join(m.Evidence, "; ")
	if m.Kind == fingerprint.KindBlock {
		p.note(fmt.Sprintf("the answer is %s's block page (%s)", m.Vendor, what))
		return outcome{method: method.HTTPBlockpage, vendor: m.Vendor, confidence: m.Confidence}
	}
	switch m.Reason {
	case fingerprints.ReasonCDNChallenge:
		p.note(fmt.Sprintf("the answer is a %s browser check (%s): the site's own bot protection, not a block by your organisation; a browser passes it", m.Vendor, what))
		return outcome{method: method.Reachable, confidence: 0.8 * m.Confidence}
	case fingerprints.ReasonSiteProtection:
		p.note(fmt.Sprintf("the site's own protection service (%s) refused this request (%s); that is the site's decision, not your organisation's filter", m.Vendor, what))
		return outcome{method: method.Reachable, confidence: 0.7 * m.Confidence}
	case fingerprints.ReasonUpstreamFailure:
		p.note(fmt.Sprintf("a proxy reports that it could not reach the site (%s): the site is down or unreachable, not blocked", what))
		return outcome{method: method.SiteDown, confidence: 0.85 * m.Confidence}
	case fingerprints.ReasonCaptivePortal:
		p.note(fmt.Sprintf("the answer is a captive portal (%s): sign in to the network first", what))
		return outcome{method: method.CaptivePortal, confidence: m.Confidence}
	}
	p.note(fmt.Sprintf("the answer matched %s (%s)", m.Vendor, what))
	return outcome{method: method.Unknown, confidence: 0.3}
}

// fromTLS classifies a chain that is not public or not for the host.
// loaded says the page itself came through: a CA that this machine trusts
// and that names no inspection product is then most likely a private CA
// of the site or of a test network, and the page is reachable.
func (p *prober) fromTLS(t *tlsInfo, loaded bool) outcome {
	if t.expired && (t.public || (t.trusted && t.match == nil)) {
		p.note("an out-of-date certificate is the site's own fault, not a block")
		return outcome{method: method.SiteDown, confidence: 0.6}
	}
	if !t.public && t.match == nil && t.trusted && t.nameOK && loaded {
		p.note("the certificate comes from a CA this machine trusts that is not public and names no inspection product; the page loads")
		return outcome{method: method.Reachable, confidence: 0.7}
	}
	if !t.public {
		o := outcome{method: method.TLSIntercepted, vendor: vendorOf(t), confidence: 0.6}
		if t.match != nil {
			o.confidence = 0.85
		}
		if !t.trusted {
			p.note("browsers on this machine will refuse that certificate")
			o.confidence += 0.05
		}
		p.note("TLS inspection is a sign of a filter rather than a block by itself")
		return o
	}
	p.note("the certificate is valid but for another name; something answered in the site's place")
	return outcome{method: method.Unknown, confidence: 0.4}
}

func (p *prober) fromStatus(h *hop, t *tlsInfo) outcome {
	st := h.status
	switch st {
	case 403, 451, 407:
		o := outcome{method: method.HTTPStatus, vendor: vendorOf(t), confidence: 0.6}
		switch st {
		case 451:
			o.confidence = 0.85
			p.note("the answer is 451 Unavailable For Legal Reasons")
		case 407:
			o.confidence = 0.7
			p.note("the answer is 407: a proxy asks for credentials before it lets the request through")
		default:
			p.note("the answer is 403 Forbidden with no known filter's page: a filter's bare refusal, or the site's own")
		}
		return o
	case 511:
		p.note("the answer is 511 Network Authentication Required: a captive portal")
		return outcome{method: method.CaptivePortal, confidence: 0.85}
	}
	switch {
	case st >= 200 && st < 400, st == 401:
		if t != nil && t.anomalous() {
			return p.fromTLS(t, true)
		}
		p.note(fmt.Sprintf("the site answered %d: it is reachable", st))
		return outcome{method: method.Reachable, confidence: 0.9}
	case st == 404 || st == 410:
		p.note(fmt.Sprintf("the site itself answered %d Not Found: its own error, not a block", st))
		return outcome{method: method.SiteDown, confidence: 0.6}
	case st >= 500:
		p.note(fmt.Sprintf("the site answered %d: a server error on its side, not a block", st))
		return outcome{method: method.SiteDown, confidence: 0.7}
	}
	if t != nil && t.anomalous() {
		return p.fromTLS(t, false)
	}
	p.note(fmt.Sprintf("the site answered %d", st))
	return outcome{method: method.Unknown, confidence: 0.4}
}

// fetch performs one GET: connect (directly or through a proxy), TLS for
// https, then HTTP. A failure is returned as its classification.
func (p *prober) fetch(ctx context.Context, u *url.URL) (*hop, *outcome) {
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	port := defaultPort(u)
	proxyURL, err := p.proxyFunc(u)
	if err != nil {
		proxyURL = nil
	}
	var conn net.Conn
	var rtt time.Duration
	var fail *outcome
	viaProxy := proxyURL != nil
	if viaProxy {
		conn, fail = p.dialProxy(ctx, proxyURL)
		if fail == nil && u.Scheme == "https" {
			conn, fail = p.tunnel(ctx, conn, proxyURL, host, port)
		}
	} else {
		conn, rtt, fail = p.dialTarget(ctx, host, port)
	}
	if fail != nil {
		return nil, fail
	}
	defer conn.Close()
	h := &hop{}
	if u.Scheme == "https" {
		var tconn net.Conn
		tconn, h.tls, fail = p.handshake(ctx, conn, host, !viaProxy, rtt)
		if fail != nil {
			return nil, fail
		}
		conn = tconn
	}
	if fail = p.exchange(ctx, conn, u, viaProxy && u.Scheme == "http", h); fail != nil {
		return nil, fail
	}
	return h, nil
}

// dialTarget resolves (unless --connect-to maps the host) and connects.
func (p *prober) dialTarget(ctx context.Context, host, port string) (net.Conn, time.Duration, *outcome) {
	var addrs []netip.Addr
	if h2, p2, ok := p.mapped(host, port); ok {
		p.note(fmt.Sprintf("--connect-to sends %s:%s to %s:%s, so the name is not looked up and the address is not judged", host, port, h2, p2))
		port = p2
		dctx, cancel := step(ctx, dnsStep)
		r := p.res.lookup(dctx, h2)
		cancel()
		if len(r.addrs) == 0 {
			p.note(fmt.Sprintf("the --connect-to target %s could not be resolved", h2))
			return nil, 0, &outcome{method: method.Unknown, confidence: 0.2}
		}
		addrs = r.addrs
	} else {
		dctx, cancel := step(ctx, dnsStep)
		r := p.res.lookup(dctx, host)
		cancel()
		var fail *outcome
		if addrs, fail = p.judgeDNS(ctx, host, r); fail != nil {
			return nil, 0, fail
		}
	}
	var safe []netip.Addr
	for _, a := range addrs {
		if a.Unmap().IsUnspecified() {
			continue // on Linux 0.0.0.0 reaches this machine: never trust what answers there
		}
		safe = append(safe, a)
	}
	if len(safe) == 0 {
		p.note("the only address is 0.0.0.0 or ::, which is never connected to")
		return nil, 0, &outcome{method: method.Unknown, confidence: 0.3}
	}
	conn, rtt, err := p.dialAny(ctx, safe, port)
	if err == nil {
		p.note(fmt.Sprintf("connected to %s", net.JoinHostPort(conn.RemoteAddr().(*net.TCPAddr).IP.String(), port)))
		return conn, rtt, nil
	}
	where := fmt.Sprintf("%s (%s port %s)", host, addrsString(safe), port)
	switch {
	case isRefused(err):
		p.note(fmt.Sprintf("%s refused the connection: nothing is listening there. That is how a site that is down looks, so it is not reported as a block", where))
		return nil, 0, &outcome{method: method.SiteDown, confidence: 0.6}
	case isReset(err):
		p.note(fmt.Sprintf("%s accepted the connection and reset it at once", where))
		return nil, 0, &outcome{method: method.TCPReset, confidence: 0.75}
	case isTimeout(err):
		p.note(fmt.Sprintf("connecting to %s timed out: the connection attempts were dropped", where))
		return nil, 0, &outcome{method: method.TCPTimeout, confidence: 0.65, network: true}
	case isUnreachable(err):
		p.note(fmt.Sprintf("there is no route to %s", where))
		return nil, 0, &outcome{method: method.TCPTimeout, confidence: 0.45, network: true}
	}
	p.note(fmt.Sprintf("connecting to %s failed: %v", where, err))
	return nil, 0, &outcome{method: method.Unknown, confidence: 0.3, network: true}
}

// judgeDNS classifies a resolver's answer for the target host, returning
// the addresses to connect to or a verdict that stops the probe.
func (p *prober) judgeDNS(ctx context.Context, host string, r dnsResult) ([]netip.Addr, *outcome) {
	switch {
	case r.dead:
		actx, cancel := step(ctx, 2*time.Second)
		alive := p.res.alive(actx)
		cancel()
		if alive {
			p.note(fmt.Sprintf("%s answers other questions but gave no answer about %s", p.res, host))
			return nil, &outcome{method: method.Unknown, confidence: 0.4}
		}
		p.note(fmt.Sprintf("%s did not answer at all (%v)", p.res, r.err))
		return nil, &outcome{method: method.Offline, confidence: 0.6, network: true}
	case r.nx:
		what := "does not exist"
		if r.rcode != "" && r.rcode != "NXDOMAIN" {
			what = "has no address (" + r.rcode + ")"
		}
		p.note(fmt.Sprintf("%s says %s %s", p.res, host, what))
		// Second opinions are asked at once, within one short step, so a
		// network that drops outside DNS costs seconds only once.
		agree := 0
		sctx, cancel := step(ctx, 2500*time.Millisecond)
		answers := make(chan struct {
			r   resolver
			res dnsResult
		}, len(p.second))
		for _, s := range p.second {
			go func() {
				answers <- struct {
					r   resolver
					res dnsResult
				}{s, s.lookup(sctx, host)}
			}()
		}
		for range p.second {
			a := <-answers
			switch {
			case len(a.res.addrs) > 0:
				cancel()
				p.note(fmt.Sprintf("but %s knows %s (%s): the name exists and your resolver hides it", a.r, host, addrsString(a.res.addrs)))
				return nil, &outcome{method: method.DNSNXDomain, confidence: 0.9}
			case a.res.nx:
				agree++
				p.note(fmt.Sprintf("%s agrees that %s does not exist", a.r, host))
			}
		}
		cancel()
		if agree > 0 {
			p.note("the name does not exist anywhere: a typo or a retired address, not a block")
			return nil, &outcome{method: method.SiteDown, confidence: 0.75}
		}
		if p.catalog {
			p.note(fmt.Sprintf("%s is a catalog service, which exists, so the resolver is hiding it", host))
			return nil, &outcome{method: method.DNSNXDomain, confidence: 0.75}
		}
		p.note(fmt.Sprintf("%s is not a catalog service and no second resolver could confirm it exists: most likely a typo", host))
		return nil, &outcome{method: method.SiteDown, confidence: 0.5}
	}
	p.note(fmt.Sprintf("%s answered %s for %s", p.res, addrsString(r.addrs), host))
	for _, a := range r.addrs {
		if a.Unmap().IsUnspecified() {
			continue // judged below: many filters answer 0.0.0.0, so it names no vendor on its own
		}
		if m, ok := p.fps.MatchDNS(a); ok && m.Kind == fingerprint.KindBlock {
			p.note(strings.Join(m.Evidence, "; "))
			p.note("that address is never connected to")
			return nil, &outcome{method: method.DNSSinkhole, vendor: m.Vendor, confidence: m.Confidence}
		}
	}
	var usable []netip.Addr
	worst := addrPublic
	for _, a := range r.addrs {
		c := classifyAddr(a)
		bad := false
		switch c {
		case addrUnspecified, addrBogon:
			bad = true
		case addrLoopback:
			bad = p.catalog && !p.res.loopback()
		case addrPrivate:
			// On a test network (a resolver given on loopback) every real
			// server is on loopback too, so a private answer is a sinkhole.
			bad = p.catalog || p.res.loopback()
		}
		if bad {
			if c > worst || worst == addrPublic {
				worst = c
			}
			continue
		}
		usable = append(usable, a)
	}
	if len(usable) > 0 {
		if len(usable) < len(r.addrs) {
			p.note("some of those addresses cannot be a public service's and are skipped")
		}
		return usable, nil
	}
	conf := map[addrClass]float64{addrUnspecified: 0.85, addrBogon: 0.85, addrLoopback: 0.75, addrPrivate: 0.7}[worst]
	p.note(fmt.Sprintf("%s cannot be at that address: the resolver points it at a sinkhole (no connection is made there)", host))
	o := &outcome{method: method.DNSSinkhole, confidence: conf}
	if worst == addrUnspecified {
		for _, a := range r.addrs {
			if m, ok := p.fps.MatchDNS(a); ok && m.Kind == fingerprint.KindBlock {
				o.vendor = m.Vendor
				p.note(strings.Join(m.Evidence, "; ") + "; other DNS filters answer the same, so the vendor is a likely guess")
				break
			}
		}
	}
	return nil, o
}

// dialAny connects to the first address that accepts, IPv4 first.
func (p *prober) dialAny(ctx context.Context, addrs []netip.Addr, port string) (net.Conn, time.Duration, error) {
	ordered := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if a.Unmap().Is4() {
			ordered = append(ordered, a.Unmap())
		}
	}
	for _, a := range addrs {
		if !a.Unmap().Is4() {
			ordered = append(ordered, a)
		}
	}
	if len(ordered) > 2 {
		ordered = ordered[:2]
	}
	var last error
	for _, a := range ordered {
		addr := net.JoinHostPort(a.String(), port)
		if dialCheck != nil {
			dialCheck(addr)
		}
		dctx, cancel := step(ctx, tcpStep)
		start := time.Now()
		c, err := newDialer().DialContext(dctx, "tcp", addr)
		cancel()
		if err == nil {
			return c, time.Since(start), nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, 0, last
}

// dialProxy connects to the proxy itself.
func (p *prober) dialProxy(ctx context.Context, pu *url.URL) (net.Conn, *outcome) {
	port := pu.Port()
	if port == "" {
		port = "80"
	}
	dctx, cancel := step(ctx, dnsStep)
	r := p.res.lookup(dctx, pu.Hostname())
	cancel()
	var addrs []netip.Addr
	for _, a := range r.addrs {
		if !a.Unmap().IsUnspecified() {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		p.note(fmt.Sprintf("the proxy %s could not be resolved", pu.Host))
		return nil, &outcome{method: method.Offline, confidence: 0.5, network: true}
	}
	c, _, err := p.dialAny(ctx, addrs, port)
	if err != nil {
		p.note(fmt.Sprintf("the proxy %s did not accept a connection (%v): nothing can be reached through it", pu.Host, err))
		return nil, &outcome{method: method.Offline, confidence: 0.55, network: true}
	}
	p.note("using the proxy " + pu.Redacted())
	return c, nil
}

// tunnel asks the proxy for a CONNECT tunnel.
func (p *prober) tunnel(ctx context.Context, conn net.Conn, pu *url.URL, host, port string) (net.Conn, *outcome) {
	target := net.JoinHostPort(host, port)
	setDeadline(ctx, conn, httpStep)
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: target}, Host: target, Header: http.Header{"User-Agent": {userAgent}}}
	if err := req.Write(conn); err != nil {
		conn.Close()
		p.note(fmt.Sprintf("the proxy %s dropped the connection: %v", pu.Host, err))
		return nil, &outcome{method: method.Unknown, confidence: 0.3}
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		p.note(fmt.Sprintf("the proxy %s gave no answer to the tunnel request for %s: %v", pu.Host, target, err))
		if isReset(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, &outcome{method: method.ProxyRefused, confidence: 0.6}
		}
		return nil, &outcome{method: method.Unknown, confidence: 0.3}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_ = conn.SetDeadline(time.Time{})
		p.note(fmt.Sprintf("the proxy opened a tunnel to %s", target))
		if br.Buffered() > 0 {
			return &bufferedConn{Conn: conn, r: br}, nil
		}
		return conn, nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, fingerprint.MaxBody))
	resp.Body.Close()
	conn.Close()
	p.note(fmt.Sprintf("the proxy refused to open a tunnel to %s: %s (a browser shows ERR_TUNNEL_CONNECTION_FAILED)", target, resp.Status))
	m, ok := p.fps.Best(&fingerprint.Response{Status: resp.StatusCode, Header: resp.Header, Body: body})
	switch {
	case ok && m.Kind == fingerprint.KindBlock:
		p.note(fmt.Sprintf("its refusal is %s's (%s)", m.Vendor, strings.Join(m.Evidence, "; ")))
		return nil, &outcome{method: method.ProxyRefused, vendor: m.Vendor, confidence: max(m.Confidence, 0.9)}
	case ok && m.Reason == fingerprints.ReasonUpstreamFailure:
		p.note(fmt.Sprintf("the proxy says it could not reach the site (%s): the site is down, not blocked", strings.Join(m.Evidence, "; ")))
		return nil, &outcome{method: method.SiteDown, confidence: 0.8}
	case resp.StatusCode == http.StatusProxyAuthRequired:
		p.note("the proxy asks for credentials")
		return nil, &outcome{method: method.HTTPStatus, confidence: 0.6}
	case resp.StatusCode == 502 || resp.StatusCode == 503 || resp.StatusCode == 504:
		p.note("a 502/503/504 from a proxy usually means it could not reach the site")
		return nil, &outcome{method: method.SiteDown, confidence: 0.55}
	}
	return nil, &outcome{method: method.ProxyRefused, confidence: 0.8}
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

func setDeadline(ctx context.Context, c net.Conn, d time.Duration) {
	_ = c.SetDeadline(deadlineOr(ctx, time.Now().Add(d)))
}

// handshake runs TLS with SNI. Before it, on a direct connection, it waits a
// few round trips to see whether the server cuts the connection on its own
// (a reset before any TLS is tcp-reset; after the ClientHello, tls-reset).
func (p *prober) handshake(ctx context.Context, conn net.Conn, host string, preWait bool, rtt time.Duration) (net.Conn, *tlsInfo, *outcome) {
	if preWait {
		// Three round trips, at least 100 ms: a server or middlebox that
		// resets every connection does so within a round trip of accepting.
		wait := min(max(3*rtt, 100*time.Millisecond), 300*time.Millisecond)
		_ = conn.SetReadDeadline(time.Now().Add(wait))
		var b [1]byte
		n, err := conn.Read(b[:])
		switch {
		case err == nil && n > 0:
			p.note("the server spoke before the TLS handshake: it is not a TLS server")
			return nil, nil, &outcome{method: method.Unknown, confidence: 0.3}
		case err != nil && !isTimeout(err):
			p.note(fmt.Sprintf("%s accepted the connection, then cut it before TLS began (%v)", host, err))
			return nil, nil, &outcome{method: method.TCPReset, confidence: 0.8}
		}
		_ = conn.SetReadDeadline(time.Time{})
	}
	cfg := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12}
	if _, err := netip.ParseAddr(host); err != nil {
		cfg.ServerName = host
	}
	tc := tls.Client(conn, cfg)
	hctx, cancel := step(ctx, tlsStep)
	err := tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		switch {
		case isReset(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			p.note(fmt.Sprintf("the connection was cut right after the TLS ClientHello naming %s: this is how SNI filtering looks", host))
			conf := 0.8
			if preWait {
				// Ask the same address again without the name: an answer
				// then shows that it is the name that is filtered.
				switch p.withoutSNI(ctx, conn.RemoteAddr().String()) {
				case true:
					p.note("the same server answers a ClientHello that does not name the site, so it is the name that is filtered")
					conf = 0.9
				case false:
					p.note("the same server also cuts a ClientHello without the name")
					conf = 0.7
				}
			}
			return nil, nil, &outcome{method: method.TLSReset, confidence: conf}
		case isTimeout(err):
			p.note(fmt.Sprintf("the TLS ClientHello naming %s got no answer", host))
			return nil, nil, &outcome{method: method.TLSReset, confidence: 0.55, network: true}
		}
		p.note(fmt.Sprintf("the TLS handshake with %s failed: %v", host, err))
		return nil, nil, &outcome{method: method.Unknown, confidence: 0.3}
	}
	return tc, p.judgeChain(tc.ConnectionState().PeerCertificates, host), nil
}

// withoutSNI reports whether addr answers a TLS ClientHello that names no
// host (any TLS answer, even an alert, counts); false when it cuts that one
// too. It never verifies anything: only whether TLS is spoken.
func (p *prober) withoutSNI(ctx context.Context, addr string) bool {
	if dialCheck != nil {
		dialCheck(addr)
	}
	sctx, cancel := step(ctx, 2*time.Second)
	defer cancel()
	c, err := newDialer().DialContext(sctx, "tcp", addr)
	if err != nil {
		return false
	}
	defer c.Close()
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
	err = tc.HandshakeContext(sctx)
	if err == nil {
		return true
	}
	var alert tls.AlertError
	var rec tls.RecordHeaderError
	return errors.As(err, &alert) || errors.As(err, &rec)
}

// judgeChain checks the chain against the public roots and the machine's,
// and names an inspection CA when the chain is not public.
func (p *prober) judgeChain(chain []*x509.Certificate, host string) *tlsInfo {
	info := &tlsInfo{}
	if len(chain) == 0 {
		p.note("the server presented no certificate")
		return info
	}
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	info.issuer = leaf.Issuer.CommonName
	if info.issuer == "" && len(leaf.Issuer.Organization) > 0 {
		info.issuer = leaf.Issuer.Organization[0]
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: p.publicRoots, Intermediates: inter})
	info.public = err == nil
	if !info.public {
		// A public chain that is merely out of date is the site's own
		// problem, not interception: check it at a time inside the leaf's validity.
		now := time.Now()
		if now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
			at := leaf.NotAfter.Add(-time.Minute)
			if now.Before(leaf.NotBefore) {
				at = leaf.NotBefore.Add(time.Minute)
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: p.publicRoots, Intermediates: inter, CurrentTime: at}); err == nil {
				info.public, info.expired = true, true
			}
		}
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: p.machineRoots, Intermediates: inter})
	info.trusted = err == nil
	if !info.trusted && !info.public {
		now := time.Now()
		if now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
			at := leaf.NotAfter.Add(-time.Minute)
			if now.Before(leaf.NotBefore) {
				at = leaf.NotBefore.Add(time.Minute)
			}
			if c, err := leaf.Verify(x509.VerifyOptions{Roots: p.machineRoots, Intermediates: inter, CurrentTime: at}); err == nil {
				chains, info.trusted, info.expired = c, true, true
			}
		}
	}
	info.nameOK = leaf.VerifyHostname(host) == nil
	if info.public {
		if info.expired {
			p.note(fmt.Sprintf("the TLS certificate for %s is from a public CA (%q) but is outside its validity dates", host, info.issuer))
			return info
		}
		if info.nameOK {
			p.note(fmt.Sprintf("the TLS certificate for %s is issued by %q, a public CA", host, info.issuer))
		} else {
			p.note(fmt.Sprintf("the TLS certificate (issued by %q, a public CA) is not valid for %s", info.issuer, host))
		}
		return info
	}
	var names []string
	add := func(n x509.Certificate) {
		names = append(names, n.Issuer.CommonName, n.Subject.CommonName)
		names = append(names, n.Issuer.Organization...)
		names = append(names, n.Issuer.OrganizationalUnit...)
		names = append(names, n.Subject.Organization...)
	}
	for _, c := range chain {
		add(*c)
	}
	for _, ch := range chains {
		for _, c := range ch {
			add(*c)
		}
	}
	trust := "and this machine does not trust it either"
	switch {
	case info.trusted && info.expired:
		trust = "though this machine trusts it; the certificate is outside its validity dates"
	case info.trusted:
		trust = "but this machine trusts it (an inspection CA installed by IT, or a private one)"
	}
	p.note(fmt.Sprintf("the TLS certificate for %s is issued by %q, which is not a public CA, %s", host, info.issuer, trust))
	if m, ok := p.fps.MatchIssuer(names); ok {
		info.match = &m
		p.note(strings.Join(m.Evidence, "; "))
	}
	return info
}

// exchange sends one GET and reads the answer (body at most MaxBody).
func (p *prober) exchange(ctx context.Context, conn net.Conn, u *url.URL, absolute bool, h *hop) *outcome {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		p.note(fmt.Sprintf("cannot request %s: %v", u.Redacted(), err))
		return &outcome{method: method.Unknown, confidence: 0.2}
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")
	req.Header.Set("Accept-Language", "en-GB,en;q=0.8,cy;q=0.5")
	req.Close = true
	setDeadline(ctx, conn, httpStep)
	if absolute {
		err = req.WriteProxy(conn)
	} else {
		err = req.Write(conn)
	}
	var resp *http.Response
	if err == nil {
		resp, err = http.ReadResponse(bufio.NewReader(conn), req)
	}
	if err != nil {
		switch {
		case isReset(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			p.note(fmt.Sprintf("the connection was cut after the request for %s was sent: a filter reading the request", u.Host))
			return &outcome{method: method.TCPReset, confidence: 0.6}
		case isTimeout(err):
			p.note(fmt.Sprintf("%s accepted the request but did not answer in time", u.Host))
			return &outcome{method: method.SiteDown, confidence: 0.45}
		}
		p.note(fmt.Sprintf("reading the answer from %s failed: %v", u.Host, err))
		return &outcome{method: method.Unknown, confidence: 0.3}
	}
	defer resp.Body.Close()
	h.status = resp.StatusCode
	h.header = resp.Header
	h.location = resp.Header.Get("Location")
	var body io.Reader = resp.Body
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		// Not asked for, but some filters and servers compress anyway.
		if zr, err := gzip.NewReader(resp.Body); err == nil {
			body = zr
		}
	}
	h.body, _ = io.ReadAll(io.LimitReader(body, fingerprint.MaxBody))
	return nil
}

// refResult is the connectivity check's finding.
type refState int

const (
	refUnknown refState = iota
	refOnline
	refCaptive
	refUnreachable
)

type refResult struct {
	state    refState
	evidence string
}

// checkReference fetches the captive-portal check URL without following
// redirects: 204 (or 200 "success") means online with no portal.
func (p *prober) checkReference(ctx context.Context) refResult {
	cu, err := url.Parse(p.o.CaptiveURL)
	if err != nil {
		return refResult{state: refUnknown, evidence: "the connectivity check URL is not valid"}
	}
	client := &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			DisableKeepAlives: true,
			Proxy:             func(r *http.Request) (*url.URL, error) { return p.proxyFunc(r.URL) },
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				h, port, err := net.SplitHostPort(addr)
				if err != nil {
					return nil, err
				}
				r := p.res.lookup(ctx, h)
				var safe []netip.Addr
				for _, a := range r.addrs {
					if !a.Unmap().IsUnspecified() {
						safe = append(safe, a)
					}
				}
				if len(safe) == 0 {
					return nil, fmt.Errorf("cannot resolve %s", h)
				}
				c, _, err := p.dialAny(ctx, safe, port)
				return c, err
			},
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cu.String(), nil)
	if err != nil {
		return refResult{state: refUnknown}
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := client.Do(req)
	if err != nil {
		return refResult{state: refUnreachable, evidence: fmt.Sprintf("the connectivity check %s failed too (%v)", cu.Host, err)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode == http.StatusNoContent,
		resp.StatusCode == http.StatusOK && strings.Contains(strings.ToLower(string(body)), "success"):
		return refResult{state: refOnline, evidence: fmt.Sprintf("the connectivity check %s answered normally", cu.Host)}
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return refResult{state: refCaptive, evidence: fmt.Sprintf("the connectivity check %s was redirected to %s", cu.Host, resp.Header.Get("Location"))}
	}
	return refResult{state: refCaptive, evidence: fmt.Sprintf("the connectivity check %s was answered with %s instead of an empty 204", cu.Host, resp.Status)}
}

// offsite reports whether next is on a different site from orig (compared
// by the last two labels, or three under a two-letter country code's
// second level such as .gov.uk).
func offsite(next, orig *url.URL) bool {
	return site(next.Hostname()) != site(orig.Hostname())
}

func site(host string) string {
	labels := strings.Split(strings.TrimSuffix(strings.ToLower(host), "."), ".")
	n := 2
	if len(labels) >= 3 && len(labels[len(labels)-1]) == 2 && len(labels[len(labels)-2]) <= 3 {
		n = 3
	}
	if len(labels) <= n {
		return strings.Join(labels, ".")
	}
	return strings.Join(labels[len(labels)-n:], ".")
}

var blockWords = map[string]bool{"block": true, "blocked": true, "blockpage": true, "deny": true, "denied": true,
	"accessdenied": true, "restricted": true, "forbidden": true, "filter": true, "filtered": true, "violation": true,
	"blocking": true, "webfilter": true, "urlblock": true}

// blockish reports whether a URL's host or path names a block page.
func blockish(u *url.URL) bool {
	text := strings.ToLower(u.Hostname() + "/" + u.Path)
	for _, tok := range strings.FieldsFunc(text, func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < '0' || r > '9')
	}) {
		if blockWords[tok] {
			return true
		}
	}
	return false
}
