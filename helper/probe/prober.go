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

	"github.com/detour-project/detour/helper/fingerprint"
	"github.com/detour-project/detour/helper/sysproxy"
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
		p.proxyFunc = sysproxy.ForURL // the environment, then the system proxy and PAC
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

// step is a context for one step: at most d, and never past the overall
// deadline.
func step(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}

// measure walks the redirect chain from u and records what it meets. It
// stops where the chain stops, at a failure, or at an answer that already
// says enough (a recognised page or a redirect to a block host): following
// further would only send more packets, never change the judgement.
func (p *prober) measure(ctx context.Context, u *url.URL, obs *observation) {
	var redirects []*url.URL
	cur := u
	for n := 0; n < maxHops; n++ {
		h := p.fetch(ctx, cur)
		obs.hops = append(obs.hops, h)
		if h.failed() {
			return
		}
		if h.status < 300 || h.status >= 400 || h.location == "" {
			return
		}
		resp := &fingerprint.Response{Status: h.status, Header: h.header, Redirects: redirects, Body: h.body}
		if _, ok := p.fps.Best(resp); ok {
			return
		}
		next, err := cur.Parse(h.location)
		if err != nil {
			return
		}
		next.Fragment = ""
		redirects = append(redirects, next)
		if _, ok := p.fps.MatchRedirect(next); ok {
			return
		}
		if next.Scheme != "http" && next.Scheme != "https" {
			return
		}
		if offsite(next, u) && blockish(next) {
			return
		}
		cur = next
	}
	obs.tooManyRedirects = true
}

// fetch performs one GET: connect (directly or through a proxy), TLS for
// https, then HTTP.
func (p *prober) fetch(ctx context.Context, u *url.URL) hopObs {
	h := hopObs{url: u}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	port := defaultPort(u)
	h.port = port
	proxyURL, err := p.proxyFunc(u)
	if err != nil {
		proxyURL = nil
	}
	var conn net.Conn
	var rtt time.Duration
	viaProxy := proxyURL != nil
	if viaProxy {
		h.proxy = &proxyObs{host: proxyURL.Host}
		conn = p.dialProxy(ctx, proxyURL, h.proxy)
		if conn != nil && u.Scheme == "https" {
			conn = p.tunnel(ctx, conn, host, port, h.proxy)
		}
	} else {
		conn, rtt = p.dialTarget(ctx, host, port, &h)
	}
	if conn == nil {
		return h
	}
	defer conn.Close()
	if u.Scheme == "https" {
		tconn := p.handshake(ctx, conn, host, !viaProxy, rtt, &h)
		if tconn == nil {
			return h
		}
		conn = tconn
	}
	h.viaProxy = viaProxy && u.Scheme == "http"
	p.exchange(ctx, conn, u, h.viaProxy, &h)
	return h
}

// dialTarget resolves (unless --connect-to maps the host) and connects. It
// never connects to an address that cannot be the site's (see usableAddrs).
func (p *prober) dialTarget(ctx context.Context, host, port string, h *hopObs) (net.Conn, time.Duration) {
	var addrs []netip.Addr
	if h2, p2, ok := p.mapped(host, port); ok {
		h.mapped = net.JoinHostPort(h2, p2)
		port = p2
		dctx, cancel := step(ctx, dnsStep)
		r := p.res.lookup(dctx, h2)
		cancel()
		if len(r.addrs) == 0 {
			h.mappedUnresolved = true
			return nil, 0
		}
		addrs = r.addrs
	} else {
		d := p.lookupTarget(ctx, host)
		if _, err := netip.ParseAddr(host); err != nil {
			h.dns = d
		}
		addrs = usableAddrs(d, p.catalog, p.fps)
		if len(addrs) == 0 {
			h.sinkholed = len(d.res.addrs) > 0
			return nil, 0
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
		h.onlyUnspecified = true
		return nil, 0
	}
	h.port = port
	h.tried = safe
	conn, rtt, err := p.dialAny(ctx, safe, port)
	if err == nil {
		h.connected = net.JoinHostPort(conn.RemoteAddr().(*net.TCPAddr).IP.String(), port)
		return conn, rtt
	}
	h.dialErr, h.dialErrText = failKind(err), err.Error()
	return nil, 0
}

// failKind sorts an operating-system error into a fail* kind.
func failKind(err error) string {
	switch {
	case isRefused(err):
		return failRefused
	case isReset(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return failReset
	case isTimeout(err):
		return failTimeout
	case isUnreachable(err):
		return failUnreachable
	}
	return failOther
}

// lookupTarget asks the resolver for host, and on a denial asks the second
// opinions at once, within one short step, so that a network that drops
// everything outside DNS costs seconds only once.
func (p *prober) lookupTarget(ctx context.Context, host string) *dnsObs {
	d := &dnsObs{resolver: p.res.String(), loopback: p.res.loopback()}
	dctx, cancel := step(ctx, dnsStep)
	d.res = p.res.lookup(dctx, host)
	cancel()
	switch {
	case d.res.dead:
		actx, cancel := step(ctx, 2*time.Second)
		d.alive = p.res.alive(actx)
		cancel()
	case d.res.nx && len(p.second) > 0:
		sctx, cancel := step(ctx, 2500*time.Millisecond)
		answers := make(chan secondOpinion, len(p.second))
		for _, s := range p.second {
			go func() { answers <- secondOpinion{s.String(), s.lookup(sctx, host)} }()
		}
		for range p.second {
			a := <-answers
			d.second = append(d.second, a)
			if len(a.res.addrs) > 0 {
				break // one resolver that knows the name is enough
			}
		}
		cancel()
	}
	return d
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
func (p *prober) dialProxy(ctx context.Context, pu *url.URL, po *proxyObs) net.Conn {
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
		po.unresolved = true
		return nil
	}
	c, _, err := p.dialAny(ctx, addrs, port)
	if err != nil {
		po.dialErr = err.Error()
		return nil
	}
	return c
}

// tunnel asks the proxy for a CONNECT tunnel.
func (p *prober) tunnel(ctx context.Context, conn net.Conn, host, port string, po *proxyObs) net.Conn {
	target := net.JoinHostPort(host, port)
	setDeadline(ctx, conn, httpStep)
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: target}, Host: target, Header: http.Header{"User-Agent": {userAgent}}}
	if err := req.Write(conn); err != nil {
		conn.Close()
		po.tunnelErr = err.Error()
		return nil
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		if isReset(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			po.tunnelCut = true
		}
		po.tunnelErr = err.Error()
		return nil
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_ = conn.SetDeadline(time.Time{})
		if br.Buffered() > 0 {
			return &bufferedConn{Conn: conn, r: br}
		}
		return conn
	}
	po.tunnelStatus, po.tunnelHeader = resp.StatusCode, resp.Header
	po.tunnelBody, _ = io.ReadAll(io.LimitReader(resp.Body, fingerprint.MaxBody))
	resp.Body.Close()
	conn.Close()
	return nil
}

func setDeadline(ctx context.Context, c net.Conn, d time.Duration) {
	_ = c.SetDeadline(deadlineOr(ctx, time.Now().Add(d)))
}

// handshake runs TLS with SNI. Before it, on a direct connection, it waits a
// few round trips to see whether the server cuts the connection on its own
// (a reset before any TLS is tcp-reset; after the ClientHello, tls-reset).
func (p *prober) handshake(ctx context.Context, conn net.Conn, host string, preWait bool, rtt time.Duration, h *hopObs) net.Conn {
	if preWait {
		// Three round trips, at least 100 ms: a server or middlebox that
		// resets every connection does so within a round trip of accepting.
		wait := min(max(3*rtt, 100*time.Millisecond), 300*time.Millisecond)
		_ = conn.SetReadDeadline(time.Now().Add(wait))
		var b [1]byte
		n, err := conn.Read(b[:])
		switch {
		case err == nil && n > 0:
			h.spokeFirst = true
			return nil
		case err != nil && !isTimeout(err):
			h.preTLSCut = err.Error()
			return nil
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
		h.tlsErrText = err.Error()
		switch {
		case isReset(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			h.tlsErr = failReset
			if preWait {
				// Ask the same address again without the name: an answer
				// then shows that it is the name that is filtered.
				ok := p.withoutSNI(ctx, conn.RemoteAddr().String())
				h.noSNI = &ok
			}
		case isTimeout(err):
			h.tlsErr = failTimeout
		default:
			h.tlsErr = failOther
		}
		return nil
	}
	h.tls = p.chainInfo(tc.ConnectionState().PeerCertificates, host)
	return tc
}

// chainInfo checks the chain against the public roots and the machine's,
// and names an inspection CA when the chain is not public.
func (p *prober) chainInfo(chain []*x509.Certificate, host string) *tlsInfo {
	info := &tlsInfo{}
	if len(chain) == 0 {
		info.noCert = true
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
	// A chain that verifies only at a time inside the leaf's validity is
	// out of date: the site's own problem, not interception.
	inside := func() time.Time {
		now := time.Now()
		if now.Before(leaf.NotBefore) {
			return leaf.NotBefore.Add(time.Minute)
		}
		return leaf.NotAfter.Add(-time.Minute)
	}
	outOfDate := time.Now().After(leaf.NotAfter) || time.Now().Before(leaf.NotBefore)
	_, err := leaf.Verify(x509.VerifyOptions{Roots: p.publicRoots, Intermediates: inter})
	info.public = err == nil
	if !info.public && outOfDate {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: p.publicRoots, Intermediates: inter, CurrentTime: inside()}); err == nil {
			info.public, info.expired = true, true
		}
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: p.machineRoots, Intermediates: inter})
	info.trusted = err == nil
	if !info.trusted && !info.public && outOfDate {
		if c, err := leaf.Verify(x509.VerifyOptions{Roots: p.machineRoots, Intermediates: inter, CurrentTime: inside()}); err == nil {
			chains, info.trusted, info.expired = c, true, true
		}
	}
	info.nameOK = leaf.VerifyHostname(host) == nil
	if info.public {
		return info
	}
	var names []string
	add := func(n *x509.Certificate) {
		names = append(names, n.Issuer.CommonName, n.Subject.CommonName)
		names = append(names, n.Issuer.Organization...)
		names = append(names, n.Issuer.OrganizationalUnit...)
		names = append(names, n.Subject.Organization...)
	}
	for _, c := range chain {
		add(c)
	}
	for _, ch := range chains {
		for _, c := range ch {
			add(c)
		}
	}
	if m, ok := p.fps.MatchIssuer(names); ok {
		info.match = &m
	}
	return info
}

// exchange sends one GET and reads the answer (body at most MaxBody).
func (p *prober) exchange(ctx context.Context, conn net.Conn, u *url.URL, absolute bool, h *hopObs) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		h.badRequest = err.Error()
		return
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
		h.httpErr, h.httpErrText = failKind(err), err.Error()
		if h.httpErr != failReset && h.httpErr != failTimeout {
			h.httpErr = failOther
		}
		return
	}
	defer resp.Body.Close()
	h.answered = true
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
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

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
	host     string // the check's host
	location string // where it was redirected
	status   string // an unexpected answer's status line
	err      string // why it could not be fetched
}

// checkReference fetches the captive-portal check URL without following
// redirects: 204 (or 200 "success") means online with no portal.
func (p *prober) checkReference(ctx context.Context) refResult {
	cu, err := url.Parse(p.o.CaptiveURL)
	if err != nil {
		return refResult{state: refUnknown, err: "not a valid URL"}
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
		return refResult{state: refUnreachable, host: cu.Host, err: err.Error()}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode == http.StatusNoContent,
		resp.StatusCode == http.StatusOK && strings.Contains(strings.ToLower(string(body)), "success"):
		return refResult{state: refOnline, host: cu.Host}
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return refResult{state: refCaptive, host: cu.Host, location: resp.Header.Get("Location")}
	}
	return refResult{state: refCaptive, host: cu.Host, status: resp.Status}
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
