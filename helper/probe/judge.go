package probe

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/detour-project/detour/helper/fingerprint"
	"github.com/detour-project/detour/shared/fingerprints"
	"github.com/detour-project/detour/shared/method"
	"github.com/detour-project/detour/shared/protocol"
)

// The judge reads an observation and nothing else, and reasons from who
// could have written each answer:
//
//   - over TLS whose chain ends in a public root and is valid for the name,
//     only the site or its CDN can have written the HTTP answer: a 403, a
//     challenge or an error page there is the site's own, never the
//     organisation's block (a filter on the path can only cut such a
//     session, which is seen below HTTP);
//   - over plain HTTP, through a proxy, or over an intercepted chain, the
//     network could have written the answer: a product's own block page
//     (a fingerprint) is a block; an unrecognised 403/451, or a page that
//     reads like a block page, is only "possibly blocked";
//   - a vendor is named only on evidence specific to it (its page, its
//     block address, its CA), never on a behaviour many products share.

// outcome is a classification in progress.
type outcome struct {
	method     string
	vendor     string
	confidence float64
	// possible: the evidence points at a block but does not prove one;
	// method is then the block method it would be, and Blocked stays false.
	possible bool
	// network is true when the failure is below HTTP and could equally be
	// "no network at all" (then the reference check decides).
	network bool
	// privateSink: a DNS sinkhole to a private or loopback address, which
	// is also how a captive portal's resolver answers.
	privateSink bool
	// sitesOwn: the deciding answer came over the site's own TLS.
	sitesOwn bool
}

type judge struct {
	fps   *fingerprint.Set
	facts []protocol.Fact
}

// judgeObservation classifies obs; the facts say why, in order.
func judgeObservation(obs *observation, fps *fingerprint.Set) (outcome, []protocol.Fact) {
	j := &judge{fps: fps}
	out := j.chain(obs)
	out = j.reference(obs, out)
	out = j.withControl(obs, out)
	if obs.timedOut && out.method == "" {
		j.say("probe.timeout")
		out = outcome{method: method.Unknown, confidence: 0.2}
	}
	if out.method == "" {
		out = outcome{method: method.Unknown, confidence: 0.2}
	}
	return out, j.facts
}

// say records a fact: a code and its values as name, value pairs.
func (j *judge) say(code string, kv ...string) {
	f := protocol.Fact{Code: code}
	if len(kv) > 0 {
		f.Values = make(map[string]string, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			f.Values[kv[i]] = kv[i+1]
		}
	}
	j.facts = append(j.facts, f)
}

// needsReference says whether the connectivity check can change out.
func needsReference(o outcome) bool {
	switch o.method {
	case method.HTTPBlockpage:
		return o.possible
	case method.ProxyRefused, method.Reachable, method.CaptivePortal:
		return false
	case method.DNSSinkhole:
		return o.vendor == ""
	}
	return true
}

// redirectedOffHost reports whether the chain went to another host.
func redirectedOffHost(obs *observation) bool {
	for _, h := range obs.hops[min(1, len(obs.hops)):] {
		if !strings.EqualFold(h.url.Hostname(), obs.url.Hostname()) {
			return true
		}
	}
	if n := len(obs.hops); n > 0 {
		last := obs.hops[n-1]
		if last.answered && last.status >= 300 && last.status < 400 && last.location != "" {
			if next, err := last.url.Parse(last.location); err == nil && !strings.EqualFold(next.Hostname(), obs.url.Hostname()) {
				return true
			}
		}
	}
	return false
}

// reference weighs a failure that is not already attributed to a filter
// against the connectivity check: a captive portal explains everything,
// and nothing reachable at all means offline, not blocked.
func (j *judge) reference(obs *observation, out outcome) outcome {
	r := obs.ref
	if r == nil || !(needsReference(out) || (out.method == method.Reachable && redirectedOffHost(obs))) {
		return out
	}
	switch r.state {
	case refOnline:
		j.say("ref.online", "host", r.host)
	case refCaptive:
		if r.location != "" {
			j.say("ref.redirected", "host", r.host, "location", r.location)
		} else {
			j.say("ref.unexpected", "host", r.host, "status", r.status)
		}
	case refUnreachable:
		j.say("ref.failed", "host", r.host, "error", r.err)
	}
	isDNS := out.method == method.DNSSinkhole || out.method == method.DNSNXDomain
	switch {
	case r.state == refCaptive && (!isDNS || out.privateSink):
		// A portal's resolver answers its own private address for every
		// name, and the check was redirected too: a portal, not a sinkhole.
		j.say("verdict.captive")
		return outcome{method: method.CaptivePortal, confidence: 0.85}
	case r.state == refUnreachable && (out.network || out.method == method.SiteDown || out.method == method.Unknown):
		j.say("verdict.offline")
		return outcome{method: method.Offline, confidence: 0.8}
	case r.state == refOnline && out.network:
		j.say("ref.specific", "host", obs.host)
	}
	return out
}

// chain judges the hops in order.
func (j *judge) chain(obs *observation) outcome {
	u := obs.url
	var redirects []*url.URL
	var firstTLS *tlsInfo
	for i := range obs.hops {
		h := &obs.hops[i]
		j.describe(obs, h)
		if h.failed() {
			fail := j.failure(obs, h)
			if i > 0 && offsite(h.url, u) {
				prev := &obs.hops[i-1]
				if prev.tls.sitesOwn() {
					j.say("redirect.sites-own", "host", prev.url.Host)
					return outcome{method: method.Unknown, confidence: 0.3, sitesOwn: true}
				}
				if blockish(h.url) {
					j.say("redirect.blockish-failed", "url", h.url.Redacted())
					return outcome{method: method.HTTPStatus, vendor: vendorOf(firstTLS), confidence: 0.55}
				}
				if (fail.method == method.SiteDown || fail.method == method.Unknown) && !fail.network {
					// The first host answered; only the off-site address it
					// sent the browser to is unusable: how a redirect to a
					// filter's internal block server looks from outside.
					j.say("redirect.unusable", "host", u.Hostname(), "url", h.url.Redacted())
					return outcome{method: method.HTTPStatus, vendor: vendorOf(firstTLS), confidence: 0.5}
				}
			}
			if firstTLS != nil && firstTLS.anomalous() {
				return j.fromTLS(firstTLS, false)
			}
			return fail
		}
		if h.tls != nil && h.tls.anomalous() && firstTLS == nil {
			firstTLS = h.tls
		}
		own := h.tls.sitesOwn()
		resp := &fingerprint.Response{Status: h.status, Header: h.header, Redirects: redirects, Body: h.body}
		if m, ok := j.fps.Best(resp); ok {
			return j.fromMatch(m, firstTLS, own, h.status, h.body)
		}
		if h.status >= 300 && h.status < 400 && h.location != "" {
			next, err := h.url.Parse(h.location)
			if err != nil {
				j.say("redirect.unreadable", "host", h.url.Host, "location", h.location)
				return outcome{method: method.Unknown, confidence: 0.3}
			}
			next.Fragment = ""
			redirects = append(redirects, next)
			j.say("http.redirect", "host", h.url.Host, "status", strconv.Itoa(h.status), "url", next.Redacted())
			if m, ok := j.fps.MatchRedirect(next); ok {
				return j.fromMatch(m, firstTLS, own, h.status, h.body)
			}
			if next.Scheme != "http" && next.Scheme != "https" {
				return outcome{method: method.Reachable, confidence: 0.6}
			}
			if offsite(next, u) && blockish(next) {
				if own {
					j.say("redirect.sites-own", "host", h.url.Host)
					return outcome{method: method.Reachable, confidence: 0.6, sitesOwn: true}
				}
				j.say("redirect.blockish")
				return outcome{method: method.HTTPStatus, vendor: vendorOf(firstTLS), confidence: 0.6}
			}
			if i == len(obs.hops)-1 {
				break // measuring stopped here (too many redirects)
			}
			continue
		}
		return j.fromStatus(h, firstTLS)
	}
	if obs.tooManyRedirects {
		j.say("redirect.too-many", "n", strconv.Itoa(maxHops-1))
		return outcome{method: method.Reachable, confidence: 0.4}
	}
	return outcome{}
}

// describe records what a hop saw on the way to its answer.
func (j *judge) describe(obs *observation, h *hopObs) {
	if h.dns != nil && !dnsStopped(h) {
		j.dns(obs, h.dns, obs.hostOf(h)) // the answer, and any addresses skipped
	}
	if h.mapped != "" {
		j.say("connect-to", "from", net2(h.url.Hostname(), defaultPort(h.url)), "to", h.mapped)
	}
	if h.proxy != nil && h.proxy.dialErr == "" && !h.proxy.unresolved {
		j.say("proxy.using", "proxy", h.proxy.host)
		if h.url.Scheme == "https" && h.proxy.tunnelErr == "" && h.proxy.tunnelStatus == 0 {
			j.say("proxy.tunnel", "target", net2(obs.hostOf(h), defaultPort(h.url)))
		}
	}
	if h.connected != "" {
		j.say("tcp.connected", "addr", h.connected)
	}
	if t := h.tls; t != nil {
		host := obs.hostOf(h)
		switch {
		case t.noCert:
			j.say("tls.no-cert")
		case t.public && t.expired:
			j.say("tls.public-expired", "host", host, "issuer", t.issuer)
		case t.public && t.nameOK:
			j.say("tls.public", "host", host, "issuer", t.issuer)
		case t.public:
			j.say("tls.public-other-name", "host", host, "issuer", t.issuer)
		default:
			code := "tls.private-untrusted"
			switch {
			case t.trusted && t.expired:
				code = "tls.private-trusted-expired"
			case t.trusted:
				code = "tls.private-trusted"
			}
			j.say(code, "host", host, "issuer", t.issuer)
			if t.match != nil {
				j.say("tls.inspection-ca", "vendor", t.match.Vendor, "name", quotedName(t.match.Evidence))
			}
		}
	}
}

// dnsStopped: the lookup itself ended the hop.
func dnsStopped(h *hopObs) bool {
	return h.dns != nil && (h.dns.res.dead || h.dns.res.nx || h.sinkholed)
}

func net2(h, p string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]:" + p
	}
	return h + ":" + p
}

func (obs *observation) hostOf(h *hopObs) string {
	return strings.ToLower(strings.TrimSuffix(h.url.Hostname(), "."))
}

// failure classifies a hop that ended before an HTTP answer.
func (j *judge) failure(obs *observation, h *hopObs) outcome {
	host := obs.hostOf(h)
	port := h.port
	switch {
	case h.mappedUnresolved:
		j.say("connect-to.unresolved", "host", h.mapped)
		return outcome{method: method.Unknown, confidence: 0.2}
	case dnsStopped(h):
		return j.dns(obs, h.dns, host)
	}
	if po := h.proxy; po != nil {
		switch {
		case po.unresolved:
			j.say("proxy.unresolved", "proxy", po.host)
			return outcome{method: method.Offline, confidence: 0.5, network: true}
		case po.dialErr != "":
			j.say("proxy.unreachable", "proxy", po.host, "error", po.dialErr)
			return outcome{method: method.Offline, confidence: 0.55, network: true}
		case po.tunnelCut:
			j.say("proxy.tunnel-cut", "proxy", po.host, "target", net2(host, port), "error", po.tunnelErr)
			return outcome{method: method.ProxyRefused, confidence: 0.6}
		case po.tunnelErr != "":
			j.say("proxy.dropped", "proxy", po.host, "error", po.tunnelErr)
			return outcome{method: method.Unknown, confidence: 0.3}
		case po.tunnelStatus != 0:
			return j.tunnelRefused(po, net2(host, port))
		}
	}
	if h.onlyUnspecified {
		j.say("dns.only-unspecified")
		return outcome{method: method.Unknown, confidence: 0.3}
	}
	if h.dialErr != "" {
		where := map[string]string{"host": host, "addrs": addrsString(h.tried), "port": port}
		kv := func() []string {
			return []string{"host", where["host"], "addrs", where["addrs"], "port", where["port"]}
		}
		switch h.dialErr {
		case failRefused:
			j.say("tcp.refused", kv()...)
			return outcome{method: method.SiteDown, confidence: 0.6}
		case failReset:
			j.say("tcp.reset", kv()...)
			return outcome{method: method.TCPReset, confidence: 0.75}
		case failTimeout:
			j.say("tcp.timeout", kv()...)
			return outcome{method: method.TCPTimeout, confidence: 0.65, network: true}
		case failUnreachable:
			j.say("tcp.unreachable", kv()...)
			return outcome{method: method.TCPTimeout, confidence: 0.45, network: true}
		}
		j.say("tcp.failed", append(kv(), "error", h.dialErrText)...)
		return outcome{method: method.Unknown, confidence: 0.3, network: true}
	}
	switch {
	case h.spokeFirst:
		j.say("tls.server-spoke-first")
		return outcome{method: method.Unknown, confidence: 0.3}
	case h.preTLSCut != "":
		j.say("tcp.cut-before-tls", "host", host, "error", h.preTLSCut)
		return outcome{method: method.TCPReset, confidence: 0.8}
	}
	switch h.tlsErr {
	case failReset:
		j.say("tls.cut-after-hello", "host", host)
		conf := 0.8
		if h.noSNI != nil {
			if *h.noSNI {
				j.say("tls.answers-without-name")
				conf = 0.9
			} else {
				j.say("tls.cuts-without-name")
				conf = 0.7
			}
		}
		return outcome{method: method.TLSReset, confidence: conf}
	case failTimeout:
		j.say("tls.no-answer", "host", host)
		return outcome{method: method.TLSReset, confidence: 0.55, network: true}
	case failOther:
		j.say("tls.failed", "host", host, "error", h.tlsErrText)
		return outcome{method: method.Unknown, confidence: 0.3}
	}
	if h.badRequest != "" {
		j.say("http.bad-request", "url", h.url.Redacted(), "error", h.badRequest)
		return outcome{method: method.Unknown, confidence: 0.2}
	}
	switch h.httpErr {
	case failReset:
		j.say("http.cut-after-request", "host", h.url.Host)
		return outcome{method: method.TCPReset, confidence: 0.6}
	case failTimeout:
		j.say("http.no-answer", "host", h.url.Host)
		return outcome{method: method.SiteDown, confidence: 0.45}
	case failOther:
		j.say("http.failed", "host", h.url.Host, "error", h.httpErrText)
		return outcome{method: method.Unknown, confidence: 0.3}
	}
	j.say("probe.timeout")
	return outcome{method: method.Unknown, confidence: 0.2}
}

// tunnelRefused judges a proxy's non-2xx answer to CONNECT. The proxy is
// on the organisation's side by definition, so its page is the
// organisation's answer.
func (j *judge) tunnelRefused(po *proxyObs, target string) outcome {
	j.say("proxy.refused", "proxy", po.host, "target", target, "status", strconv.Itoa(po.tunnelStatus))
	m, ok := j.fps.Best(&fingerprint.Response{Status: po.tunnelStatus, Header: po.tunnelHeader, Body: po.tunnelBody})
	switch {
	case ok && m.Kind == fingerprint.KindBlock:
		j.say("proxy.refusal-vendor", "vendor", m.Vendor, "evidence", markers(m.Evidence))
		return outcome{method: method.ProxyRefused, vendor: m.Vendor, confidence: max(m.Confidence, 0.9)}
	case ok && m.Reason == fingerprints.ReasonUpstreamFailure:
		j.say("proxy.upstream-failure", "evidence", markers(m.Evidence))
		return outcome{method: method.SiteDown, confidence: 0.8}
	case po.tunnelStatus == 407:
		j.say("proxy.auth")
		return outcome{method: method.HTTPStatus, confidence: 0.5, possible: true}
	case po.tunnelStatus == 502 || po.tunnelStatus == 503 || po.tunnelStatus == 504:
		j.say("proxy.gateway-error")
		return outcome{method: method.SiteDown, confidence: 0.55}
	}
	return outcome{method: method.ProxyRefused, confidence: 0.8}
}

// usableAddrs are the answers a connection may be made to: never a
// filter's block address, a bogon, or (for a catalog host, or on a test
// network whose real servers are all on loopback) a private one.
func usableAddrs(d *dnsObs, catalog bool, fps *fingerprint.Set) []netip.Addr {
	if d == nil {
		return nil
	}
	var usable []netip.Addr
	for _, a := range d.res.addrs {
		if m, ok := fps.MatchDNS(a); ok && m.Kind == fingerprint.KindBlock && !a.Unmap().IsUnspecified() {
			return nil
		}
	}
	for _, a := range d.res.addrs {
		if addrBad(classifyAddr(a), catalog, d.loopback) {
			continue
		}
		usable = append(usable, a)
	}
	return usable
}

func addrBad(c addrClass, catalog, loopbackResolver bool) bool {
	switch c {
	case addrUnspecified, addrBogon:
		return true
	case addrLoopback:
		return catalog && !loopbackResolver
	case addrPrivate:
		// On a test network (a resolver given on loopback) every real
		// server is on loopback too, so a private answer is a sinkhole.
		return catalog || loopbackResolver
	}
	return false
}

// dns judges a lookup: a verdict that stops the probe, or method "" when
// the answer can be connected to.
func (j *judge) dns(obs *observation, d *dnsObs, host string) outcome {
	r := d.res
	switch {
	case r.dead:
		if d.alive {
			j.say("dns.silent-for-name", "resolver", d.resolver, "host", host)
			return outcome{method: method.Unknown, confidence: 0.4}
		}
		j.say("dns.dead", "resolver", d.resolver, "error", errString(r.err))
		return outcome{method: method.Offline, confidence: 0.6, network: true}
	case r.nx:
		if r.rcode != "" && r.rcode != "NXDOMAIN" {
			j.say("dns.no-address", "resolver", d.resolver, "host", host, "rcode", r.rcode)
		} else {
			j.say("dns.nxdomain", "resolver", d.resolver, "host", host)
		}
		agree := 0
		for _, s := range d.second {
			switch {
			case len(s.res.addrs) > 0:
				j.say("dns.second-knows", "resolver", s.resolver, "host", host, "addrs", addrsString(s.res.addrs))
				return outcome{method: method.DNSNXDomain, confidence: 0.9}
			case s.res.nx:
				agree++
				j.say("dns.second-agrees", "resolver", s.resolver, "host", host)
			}
		}
		if agree > 0 {
			j.say("dns.nowhere")
			return outcome{method: method.SiteDown, confidence: 0.75}
		}
		if obs.catalog {
			j.say("dns.catalog-hidden", "host", host)
			return outcome{method: method.DNSNXDomain, confidence: 0.75}
		}
		j.say("dns.probably-typo", "host", host)
		return outcome{method: method.SiteDown, confidence: 0.5}
	}
	j.say("dns.answer", "resolver", d.resolver, "addrs", addrsString(r.addrs), "host", host)
	for _, a := range r.addrs {
		if a.Unmap().IsUnspecified() {
			continue // many filters answer 0.0.0.0, so it names no vendor
		}
		if m, ok := j.fps.MatchDNS(a); ok && m.Kind == fingerprint.KindBlock {
			j.say("dns.block-address", "vendor", m.Vendor, "addr", a.String())
			j.say("dns.not-connected")
			return outcome{method: method.DNSSinkhole, vendor: m.Vendor, confidence: m.Confidence}
		}
	}
	worst := addrPublic
	bad := 0
	for _, a := range r.addrs {
		c := classifyAddr(a)
		if !addrBad(c, obs.catalog, d.loopback) {
			continue
		}
		bad++
		if c > worst || worst == addrPublic {
			worst = c
		}
	}
	if bad < len(r.addrs) {
		if bad > 0 {
			j.say("dns.some-skipped")
		}
		return outcome{}
	}
	conf := map[addrClass]float64{addrUnspecified: 0.85, addrBogon: 0.85, addrLoopback: 0.75, addrPrivate: 0.7}[worst]
	j.say("dns.sinkhole", "host", host)
	if worst == addrUnspecified {
		j.say("dns.unspecified-shared")
	}
	return outcome{method: method.DNSSinkhole, confidence: conf,
		privateSink: worst == addrPrivate || worst == addrLoopback}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func vendorOf(t *tlsInfo) string {
	if t != nil && t.match != nil {
		return t.match.Vendor
	}
	return ""
}

// quotedPageText is more visible text than any product's block page has.
const quotedPageText = 4000

func (j *judge) fromMatch(m fingerprint.Match, t *tlsInfo, own bool, status int, body []byte) outcome {
	what := markers(m.Evidence)
	if m.Kind == fingerprint.KindBlock {
		j.say("page.blockpage", "vendor", m.Vendor, "evidence", what)
		conf := m.Confidence
		if own {
			// A product's page over the site's own TLS: nothing on the path
			// could have sent it. A whole page that is that product's page
			// (block-page sized) is still reported, with less certainty;
			// the same words inside a longer page are the site's own
			// content quoting it (an article, a help page).
			if len(visibleText(body, quotedPageText)) > quotedPageText {
				j.say("page.quotes-blockpage", "vendor", m.Vendor)
				return outcome{method: method.Reachable, confidence: 0.7, sitesOwn: true}
			}
			j.say("page.blockpage-sites-tls")
			conf *= 0.8
		}
		return outcome{method: method.HTTPBlockpage, vendor: m.Vendor, confidence: conf}
	}
	switch m.Reason {
	case fingerprints.ReasonCDNChallenge:
		j.say("page.cdn-challenge", "vendor", m.Vendor, "evidence", what)
		return outcome{method: method.Reachable, confidence: 0.8 * m.Confidence, sitesOwn: own}
	case fingerprints.ReasonSiteProtection:
		j.say("page.site-protection", "vendor", m.Vendor, "evidence", what)
		return outcome{method: method.Reachable, confidence: 0.7 * m.Confidence, sitesOwn: own}
	case fingerprints.ReasonServerDefault:
		j.say("page.server-default", "vendor", m.Vendor, "evidence", what)
		if status >= 500 || status == 404 || status == 410 {
			return outcome{method: method.SiteDown, confidence: 0.6 * m.Confidence, sitesOwn: own}
		}
		return outcome{method: method.Reachable, confidence: 0.6 * m.Confidence, sitesOwn: own}
	case fingerprints.ReasonUpstreamFailure:
		j.say("page.upstream-failure", "evidence", what)
		return outcome{method: method.SiteDown, confidence: 0.85 * m.Confidence}
	case fingerprints.ReasonCaptivePortal:
		j.say("page.captive-portal", "evidence", what)
		return outcome{method: method.CaptivePortal, confidence: m.Confidence}
	}
	j.say("page.matched", "vendor", m.Vendor, "evidence", what)
	return outcome{method: method.Unknown, confidence: 0.3}
}

// fromTLS classifies a chain that is not public or not for the host.
// loaded says the page itself came through: a CA that this machine trusts
// and that names no inspection product is then most likely a private CA
// of the site or of a test network, and the page is reachable.
func (j *judge) fromTLS(t *tlsInfo, loaded bool) outcome {
	if t.expired && (t.public || (t.trusted && t.match == nil)) {
		j.say("tls.expired-sites-fault")
		return outcome{method: method.SiteDown, confidence: 0.6}
	}
	if !t.public && t.match == nil && t.trusted && t.nameOK && loaded {
		j.say("tls.private-ca-loads")
		return outcome{method: method.Reachable, confidence: 0.7}
	}
	if !t.public {
		o := outcome{method: method.TLSIntercepted, vendor: vendorOf(t), confidence: 0.6}
		if t.match != nil {
			o.confidence = 0.85
		}
		if !t.trusted {
			j.say("tls.browser-refuses")
			o.confidence += 0.05
		}
		j.say("tls.inspection-signal")
		return o
	}
	j.say("tls.other-name")
	return outcome{method: method.Unknown, confidence: 0.4}
}

// fromStatus judges an answer no fingerprint recognised.
func (j *judge) fromStatus(h *hopObs, t *tlsInfo) outcome {
	st := h.status
	own := h.tls.sitesOwn()
	status := strconv.Itoa(st)
	if st == 511 {
		j.say("http.511")
		return outcome{method: method.CaptivePortal, confidence: 0.85}
	}
	if own {
		// Only the site or its CDN can have written this answer.
		switch {
		case st == 403 || st == 451 || st == 401 || st == 429:
			j.say("http.site-refuses", "status", status)
			return outcome{method: method.Reachable, confidence: 0.7, sitesOwn: true}
		case st == 404 || st == 410:
			j.say("http.not-found", "status", status)
			return outcome{method: method.SiteDown, confidence: 0.6, sitesOwn: true}
		case st >= 500:
			j.say("http.server-error", "status", status)
			return outcome{method: method.SiteDown, confidence: 0.7, sitesOwn: true}
		case st >= 200 && st < 400:
			j.say("http.reachable", "status", status)
			return outcome{method: method.Reachable, confidence: 0.9, sitesOwn: true}
		}
		j.say("http.other", "status", status)
		return outcome{method: method.Unknown, confidence: 0.4, sitesOwn: true}
	}
	// The network could have written this answer.
	title, phrase := blockText(h.body)
	if phrase != "" && st != 404 && st != 410 {
		if title != "" {
			j.say("page.reads-blocked-title", "title", title)
		} else {
			j.say("page.reads-blocked", "phrase", phrase)
		}
		conf := 0.45
		if st == 403 || st == 451 {
			conf = 0.55
		}
		return outcome{method: method.HTTPBlockpage, vendor: vendorOf(t), confidence: conf, possible: true}
	}
	switch st {
	case 451:
		j.say("http.451")
		return outcome{method: method.HTTPStatus, vendor: vendorOf(t), confidence: 0.5, possible: true}
	case 403:
		j.say("http.403-unknown")
		return outcome{method: method.HTTPStatus, vendor: vendorOf(t), confidence: 0.4, possible: true}
	case 407:
		j.say("http.407")
		return outcome{method: method.HTTPStatus, confidence: 0.4, possible: true}
	}
	switch {
	case st >= 200 && st < 400, st == 401:
		if t != nil && t.anomalous() {
			return j.fromTLS(t, true)
		}
		j.say("http.reachable", "status", status)
		return outcome{method: method.Reachable, confidence: 0.9}
	case st == 404 || st == 410:
		j.say("http.not-found", "status", status)
		return outcome{method: method.SiteDown, confidence: 0.6}
	case st >= 500:
		j.say("http.server-error", "status", status)
		return outcome{method: method.SiteDown, confidence: 0.7}
	}
	if t != nil && t.anomalous() {
		return j.fromTLS(t, false)
	}
	j.say("http.other", "status", status)
	return outcome{method: method.Unknown, confidence: 0.4}
}

// ambiguous says whether a control measurement could change the verdict:
// a possible block, or a catalog host's name denied with no second
// resolver to confirm it exists.
func ambiguous(o outcome) bool {
	return o.possible || (o.method == method.DNSNXDomain && o.confidence < 0.9) ||
		(o.method == method.HTTPStatus && !o.sitesOwn)
}

func (o outcome) String() string {
	return fmt.Sprintf("%s vendor=%q conf=%.2f possible=%v", o.method, o.vendor, o.confidence, o.possible)
}

// Fingerprint evidence in words of no language: the page's own text quoted,
// header names, statuses and addresses, so a fact's sentence in any
// language can carry it.
var (
	evStatus   = regexp.MustCompile(`^status (\d+)$`)
	evHeader   = regexp.MustCompile(`^(\S+) header contains (".*")$`)
	evHasHdr   = regexp.MustCompile(`^a (\S+) header$`)
	evQuoted   = regexp.MustCompile(`^page (?:title|text) contains (".*")$`)
	evRedirect = regexp.MustCompile(`^redirected to (\S+)$`)
	evName     = regexp.MustCompile(`names (".*?"),`)
)

func markers(ev []string) string {
	out := make([]string, 0, len(ev))
	for _, e := range ev {
		switch {
		case evStatus.MatchString(e):
			out = append(out, "HTTP "+evStatus.FindStringSubmatch(e)[1])
		case evHeader.MatchString(e):
			m := evHeader.FindStringSubmatch(e)
			out = append(out, m[1]+": "+m[2])
		case evHasHdr.MatchString(e):
			out = append(out, evHasHdr.FindStringSubmatch(e)[1]+":")
		case evQuoted.MatchString(e):
			out = append(out, evQuoted.FindStringSubmatch(e)[1])
		case evRedirect.MatchString(e):
			out = append(out, "→ "+evRedirect.FindStringSubmatch(e)[1])
		default:
			out = append(out, e)
		}
	}
	return strings.Join(out, ", ")
}

// quotedName is the CA name an inspection-CA match quotes.
func quotedName(ev []string) string {
	for _, e := range ev {
		if m := evName.FindStringSubmatch(e); m != nil {
			return strings.Trim(m[1], `"`)
		}
	}
	return strings.Join(ev, "; ")
}
