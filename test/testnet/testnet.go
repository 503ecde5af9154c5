// Package testnet is a simulated filtered network on loopback, for tests and
// demos: a filtering DNS resolver and an honest "public" one, HTTPS servers
// under a test public CA and under a separate TLS-inspection CA named like a
// real product, HTTP servers that imitate each vendor's block page (from
// shared/fingerprints), a forward proxy that refuses tunnels or serves a
// block page, a captive portal, sites that are down or answer 404/503, CDN
// challenges, a TCP server that resets, one that drops connections and one
// that resets after the TLS ClientHello.
//
// Everything listens on 127.0.0.1 with random ports. Public block addresses
// such as 146.112.61.104 appear only as DNS data: nothing here connects to
// them, and a correct probe must not either. Scenario host names end in
// Domain; each Scenario says how to probe it and what the verdict must be.
// The command cmd/detour-testnet prints a Network as JSON (README.md).
package testnet

import (
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/detour-project/detour/shared/fingerprints"
	"github.com/detour-project/detour/shared/method"
)

// Domain is the parent of every scenario host name (.test is reserved for
// testing by RFC 2606, so no real name can collide).
const Domain = "detour.test"

// Options configure Start.
type Options struct {
	// Dir receives the CA certificates (public-ca.pem, inspection-ca.pem);
	// empty means a temporary directory removed by Close.
	Dir string
	// Aliases maps extra host names (for example a catalog host) to a
	// scenario name: DNS, the web servers and the proxy treat the alias as
	// that scenario's host.
	Aliases map[string]string
}

// Network is a running test network. Its JSON form is what the command
// prints; keep it stable (README.md documents it).
type Network struct {
	Domain string `json:"domain"`
	// DNS is the filtering resolver (UDP and TCP); PublicDNS the honest one
	// that a probe may ask for a second opinion.
	DNS       string `json:"dns"`
	PublicDNS string `json:"public_dns"`
	// HTTPS and HTTP serve the web scenarios by host name; InspectHTTPS
	// serves certificates from the inspection CA.
	HTTPS        string `json:"https"`
	HTTP         string `json:"http"`
	InspectHTTPS string `json:"inspect_https"`
	// Proxy is a forward proxy (http://127.0.0.1:PORT).
	Proxy string `json:"proxy"`
	// OnlineURL answers 204 like a connectivity check on a normal network;
	// CaptiveURL redirects to a portal like one behind a captive portal.
	OnlineURL  string `json:"online_url"`
	CaptiveURL string `json:"captive_url"`
	// The CA certificates, as PEM files. The public CA stands in for the
	// public web PKI (pass it as the probe's --public-ca-file); the
	// inspection CA's subject is "Zscaler Root CA".
	PublicCAFile     string `json:"public_ca_file"`
	InspectionCAFile string `json:"inspection_ca_file"`
	InspectionCAName string `json:"inspection_ca_name"`
	// Scenarios are the hosts to probe and the verdicts expected.
	Scenarios []Scenario `json:"scenarios"`

	PublicCAPEM     []byte `json:"-"`
	InspectionCAPEM []byte `json:"-"`

	hosts   map[string]*behaviour
	aliases map[string]string
	// ready is closed when Start has filled hosts: the servers start
	// listening before that, and a handler waits on ready before it reads
	// them (the close orders Start's writes before every read).
	ready   chan struct{}
	closers []func()
	tmpDir  string
	once    sync.Once
}

// Scenario is one host on the network and the verdict a probe must reach
// when run with the scenario's settings.
type Scenario struct {
	Name       string `json:"name"`
	Host       string `json:"host"`
	URL        string `json:"url"`
	DNS        string `json:"dns"`                  // --dns
	SecondDNS  string `json:"second_dns,omitempty"` // --second-dns
	Proxy      string `json:"proxy,omitempty"`      // --proxy
	CaptiveURL string `json:"captive_url"`          // --captive-url
	Expect     Expect `json:"expect"`
	Note       string `json:"note,omitempty"`
}

// Expect is the part of a verdict a scenario pins down.
type Expect struct {
	Blocked bool `json:"blocked"`
	// Possible: the verdict says "possibly blocked" (blocked stays false).
	Possible bool    `json:"possible"`
	Method   string  `json:"method"`
	Vendor   *string `json:"vendor"`
}

// behaviour is what the network does for one host.
type behaviour struct {
	filterDNS []netip.Addr // nil with nx=false means 127.0.0.1
	nx        bool         // the filtering resolver says NXDOMAIN
	publicNX  bool         // the honest resolver says NXDOMAIN too
	web       http.Handler // nil: the default welcome page
	proxy     string       // "", "block" or "upstream-fail"
}

func vendor(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Start brings the network up. Close it when done.
func Start(opts Options) (n *Network, err error) {
	n = &Network{Domain: Domain, hosts: map[string]*behaviour{}, aliases: map[string]string{}, ready: make(chan struct{})}
	started := n // the early returns below set n to nil before this runs
	defer func() {
		if err != nil {
			started.Close()
			n = nil
		}
	}()
	for k, v := range opts.Aliases {
		n.aliases[strings.ToLower(strings.TrimSuffix(k, "."))] = v
	}
	dir := opts.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "detour-testnet-"); err != nil {
			return nil, fmt.Errorf("testnet: %w", err)
		}
		n.tmpDir = dir
	}
	pub, err := newAuthority(pkix.Name{CommonName: "Detour Test Public Root CA", Organization: []string{"Detour Test PKI"}})
	if err != nil {
		return nil, err
	}
	insp, err := newAuthority(pkix.Name{CommonName: "Zscaler Root CA", Organization: []string{"Zscaler Inc."}, OrganizationalUnit: []string{"Zscaler Inc."}})
	if err != nil {
		return nil, err
	}
	n.PublicCAPEM, n.InspectionCAPEM = pub.pem, insp.pem
	n.InspectionCAName = insp.cert.Subject.CommonName
	n.PublicCAFile = filepath.Join(dir, "public-ca.pem")
	n.InspectionCAFile = filepath.Join(dir, "inspection-ca.pem")
	if err := os.WriteFile(n.PublicCAFile, pub.pem, 0o644); err != nil {
		return nil, fmt.Errorf("testnet: %w", err)
	}
	if err := os.WriteFile(n.InspectionCAFile, insp.pem, 0o644); err != nil {
		return nil, fmt.Errorf("testnet: %w", err)
	}
	names := []string{"*." + Domain, Domain, "localhost"}
	for a := range n.aliases {
		names = append(names, a)
	}
	pubLeaf, err := pub.leaf(names...)
	if err != nil {
		return nil, err
	}
	inspLeaf, err := insp.leaf(names...)
	if err != nil {
		return nil, err
	}
	expiredLeaf, err := pub.leafValid(time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour), names...)
	if err != nil {
		return nil, err
	}

	fps, err := fingerprints.Load()
	if err != nil {
		return nil, fmt.Errorf("testnet: %w", err)
	}

	// Listeners first, so scenarios can name their ports.
	web := http.HandlerFunc(n.serveWeb)
	if n.HTTPS, err = n.serveHTTP(web, &pubLeaf); err != nil {
		return nil, err
	}
	if n.HTTP, err = n.serveHTTP(web, nil); err != nil {
		return nil, err
	}
	if n.InspectHTTPS, err = n.serveHTTP(web, &inspLeaf); err != nil {
		return nil, err
	}
	expiredAddr, err := n.serveHTTP(web, &expiredLeaf)
	if err != nil {
		return nil, err
	}
	proxyAddr, err := n.serveHTTP(http.HandlerFunc(n.serveProxy), nil)
	if err != nil {
		return nil, err
	}
	n.Proxy = "http://" + proxyAddr
	if n.DNS, err = n.serveDNS(false); err != nil {
		return nil, err
	}
	if n.PublicDNS, err = n.serveDNS(true); err != nil {
		return nil, err
	}
	// By address, so a probe that resolves nothing (--connect-to) can use them.
	n.OnlineURL = "http://" + n.HTTP + "/generate_204"
	n.CaptiveURL = "http://" + n.HTTP + "/captive/generate_204"
	refusedPort, closeRefused, err := refusingPort()
	if err != nil {
		return nil, err
	}
	n.closers = append(n.closers, closeRefused)
	refused := "127.0.0.1:" + refusedPort
	resetAddr, err := n.serveTCPInline(resetConn)
	if err != nil {
		return nil, err
	}
	tlsResetAddr, err := n.serveTCP(func(c net.Conn) { sniFilter(c, &pubLeaf) })
	if err != nil {
		return nil, err
	}
	dropAddr, closeDrop, err := dropListener()
	if err != nil {
		return nil, err
	}
	n.closers = append(n.closers, closeDrop)
	deadUDP, err := closedUDPPort()
	if err != nil {
		return nil, err
	}

	https := func(name, addr string) string { return "https://" + name + "." + Domain + ":" + port(addr) + "/" }
	httpURL := func(name string) string { return "http://" + name + "." + Domain + ":" + port(n.HTTP) + "/" }
	add := func(s Scenario, b *behaviour) {
		s.Host = s.Name + "." + Domain
		if s.DNS == "" {
			s.DNS = n.DNS
		}
		if s.CaptiveURL == "" {
			s.CaptiveURL = n.OnlineURL
		}
		if s.URL == "" {
			s.URL = https(s.Name, n.HTTPS)
		}
		n.Scenarios = append(n.Scenarios, s)
		n.hosts[s.Host] = b
	}
	page := func(status int, hdr map[string]string, body string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for k, v := range hdr {
				w.Header().Set(k, v)
			}
			if w.Header().Get("Content-Type") == "" {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
			}
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		})
	}
	redirect := func(to func(r *http.Request) string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, to(r), http.StatusFound)
		})
	}
	no := Expect{Blocked: false}
	_ = no

	add(Scenario{Name: "reachable", Expect: Expect{Method: method.Reachable}}, &behaviour{})
	add(Scenario{Name: "reachable-http", URL: httpURL("reachable-http"), Expect: Expect{Method: method.Reachable}}, &behaviour{})
	add(Scenario{Name: "sso-redirect", Note: "a sign-in redirect that carries the original URL is not a block",
		Expect: Expect{Method: method.Reachable}},
		&behaviour{web: redirect(func(r *http.Request) string {
			return "https://login." + Domain + ":" + port(n.HTTPS) + "/signin?continue=https%3A%2F%2F" + r.Host + "%2F"
		})})
	n.hosts["login."+Domain] = &behaviour{}

	// DNS.
	add(Scenario{Name: "dns-nxdomain", SecondDNS: n.PublicDNS, Note: "the filtering resolver denies a name the public resolver knows",
		Expect: Expect{Blocked: true, Method: method.DNSNXDomain}}, &behaviour{nx: true})
	add(Scenario{Name: "dns-typo", SecondDNS: n.PublicDNS, Note: "no resolver knows the name: a typo, not a block",
		Expect: Expect{Method: method.SiteDown}}, &behaviour{nx: true, publicNX: true})
	sinks := []struct {
		name, addr, addr6, vendor string
	}{
		{"dns-umbrella", "146.112.61.106", "::ffff:146.112.61.106", "Cisco Umbrella"},
		{"dns-fortiguard", "208.91.112.55", "", "Fortinet FortiGate"},
		{"dns-paloalto", "72.5.65.111", "", "Palo Alto Networks"},
		{"dns-zero", "0.0.0.0", "::", ""}, // Pi-hole, AdGuard Home, Cloudflare Gateway…: no vendor
	}
	for _, s := range sinks {
		addrs := []netip.Addr{netip.MustParseAddr(s.addr)}
		if s.addr6 != "" {
			addrs = append(addrs, netip.MustParseAddr(s.addr6))
		}
		add(Scenario{Name: s.name, Note: "sinkhole answer " + s.addr + " (data only: nothing connects to it)",
			Expect: Expect{Blocked: true, Method: method.DNSSinkhole, Vendor: vendor(s.vendor)}}, &behaviour{filterDNS: addrs})
	}

	// TCP and TLS.
	add(Scenario{Name: "site-down", URL: https("site-down", refused), Note: "nothing listens: the site is down",
		Expect: Expect{Method: method.SiteDown}}, &behaviour{})
	add(Scenario{Name: "tcp-reset", URL: https("tcp-reset", resetAddr), Note: "accepts, then resets before any TLS",
		Expect: Expect{Blocked: true, Method: method.TCPReset}}, &behaviour{})
	add(Scenario{Name: "tcp-timeout", URL: https("tcp-timeout", dropAddr), Note: "connection attempts are dropped (full accept queue)",
		Expect: Expect{Blocked: true, Method: method.TCPTimeout}}, &behaviour{})
	add(Scenario{Name: "tls-reset", URL: https("tls-reset", tlsResetAddr), Note: "resets after reading the ClientHello (SNI filtering)",
		Expect: Expect{Blocked: true, Method: method.TLSReset}}, &behaviour{})
	// A server that cuts every ClientHello, named or not, is still tls-reset.
	tlsResetAllAddr, err := n.serveTCP(resetAfterAnyClientHello)
	if err != nil {
		return nil, err
	}
	add(Scenario{Name: "tls-reset-any", URL: https("tls-reset-any", tlsResetAllAddr), Note: "resets after reading any ClientHello",
		Expect: Expect{Blocked: true, Method: method.TLSReset}}, &behaviour{})
	add(Scenario{Name: "tls-inspected", URL: https("tls-inspected", n.InspectHTTPS), Note: "the page loads, through an inspection CA named Zscaler Root CA",
		Expect: Expect{Blocked: true, Method: method.TLSIntercepted, Vendor: vendor("Zscaler")}}, &behaviour{})
	add(Scenario{Name: "tls-expired", URL: https("tls-expired", expiredAddr), Note: "the site's own public certificate expired yesterday",
		Expect: Expect{Method: method.SiteDown}}, &behaviour{})
	var zscalerSample fingerprints.Sample
	for _, fp := range fps.Fingerprints {
		if fp.ID == "zscaler" {
			zscalerSample = fp.Sample
		}
	}
	add(Scenario{Name: "tls-inspected-blockpage", URL: https("tls-inspected-blockpage", n.InspectHTTPS),
		Expect: Expect{Blocked: true, Method: method.HTTPBlockpage, Vendor: vendor("Zscaler")}},
		&behaviour{web: page(zscalerSample.Status, zscalerSample.Headers, zscalerSample.Body)})

	// Block pages and look-alikes, one per fingerprint.
	for _, fp := range fps.Fingerprints {
		s := fp.Sample
		var h http.Handler
		if s.Location != "" {
			loc := s.Location
			h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range s.Headers {
					w.Header().Set(k, v)
				}
				w.Header().Set("Location", loc)
				w.WriteHeader(s.Status)
				_, _ = w.Write([]byte(s.Body))
			})
		} else {
			h = page(s.Status, s.Headers, s.Body)
		}
		if fp.Kind == fingerprints.KindBlock {
			add(Scenario{Name: "blockpage-" + fp.ID, Note: fp.Name,
				Expect: Expect{Blocked: true, Method: method.HTTPBlockpage, Vendor: vendor(fp.Vendor)}}, &behaviour{web: h})
			continue
		}
		m := method.Reachable
		switch fp.Reason {
		case fingerprints.ReasonUpstreamFailure:
			m = method.SiteDown
		case fingerprints.ReasonCaptivePortal:
			m = method.CaptivePortal
		}
		add(Scenario{Name: "lookalike-" + fp.ID, Note: fp.Name + " (not an organisation's block)",
			Expect: Expect{Method: m}}, &behaviour{web: h})
	}

	// A block page sent compressed although the client did not ask for it.
	var paloSample fingerprints.Sample
	for _, fp := range fps.Fingerprints {
		if fp.ID == "paloalto" {
			paloSample = fp.Sample
		}
	}
	add(Scenario{Name: "blockpage-gzip", Note: "Palo Alto Networks' page, gzip-compressed without being asked",
		Expect: Expect{Blocked: true, Method: method.HTTPBlockpage, Vendor: vendor("Palo Alto Networks")}},
		&behaviour{web: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Content-Encoding", "gzip")
			w.WriteHeader(paloSample.Status)
			zw := gzip.NewWriter(w)
			_, _ = zw.Write([]byte(paloSample.Body))
			_ = zw.Close()
		})})

	// HTTP status.
	add(Scenario{Name: "site-404", Expect: Expect{Method: method.SiteDown}},
		&behaviour{web: page(404, nil, "<html><head><title>Not found</title></head><body><h1>We can't find that page</h1></body></html>")})
	add(Scenario{Name: "site-503", Expect: Expect{Method: method.SiteDown}},
		&behaviour{web: page(503, map[string]string{"Retry-After": "120"}, "<html><head><title>Down for maintenance</title></head><body><h1>We'll be back soon</h1></body></html>")})
	// Over the site's own TLS (a public chain for the name) no filter can
	// have written the answer: a 403, a 451 or a redirect is the site's.
	add(Scenario{Name: "status-403", Note: "a bare 403 over the site's own certificate: the site refuses",
		Expect: Expect{Method: method.Reachable}},
		&behaviour{web: page(403, nil, "<html><head><title>Forbidden</title></head><body>Forbidden</body></html>")})
	add(Scenario{Name: "status-451", Note: "451 over the site's own certificate (a site's own geoblock)",
		Expect: Expect{Method: method.Reachable}},
		&behaviour{web: page(451, nil, "<html><head><title>Unavailable For Legal Reasons</title></head><body>Unavailable</body></html>")})
	// Over plain HTTP the network could have answered: possibly blocked.
	add(Scenario{Name: "status-403-http", URL: httpURL("status-403-http"), Note: "an unrecognised 403 over plain HTTP",
		Expect: Expect{Possible: true, Method: method.HTTPStatus}},
		&behaviour{web: page(403, nil, "<html><head><title>Forbidden</title></head><body>Forbidden</body></html>")})
	add(Scenario{Name: "status-451-http", URL: httpURL("status-451-http"), Note: "an unrecognised 451 over plain HTTP",
		Expect: Expect{Possible: true, Method: method.HTTPStatus}},
		&behaviour{web: page(451, nil, "<html><head><title>Unavailable For Legal Reasons</title></head><body>Unavailable</body></html>")})
	add(Scenario{Name: "reads-blocked-http", URL: httpURL("reads-blocked-http"), Note: "a 200 page that reads like an unknown filter's block page, over plain HTTP",
		Expect: Expect{Possible: true, Method: method.HTTPBlockpage}},
		&behaviour{web: page(200, nil, "<html><head><title>Blocked Notification Page</title></head><body><h1>This website has been blocked</h1><p>Access to this site is blocked under the acceptable use policy.</p></body></html>")})
	add(Scenario{Name: "reads-blocked-tls", Note: "the same page over the site's own certificate: the site's own words",
		Expect: Expect{Method: method.Reachable}},
		&behaviour{web: page(200, nil, "<html><head><title>Blocked Notification Page</title></head><body><h1>This website has been blocked</h1><p>Access to this site is blocked under the acceptable use policy.</p></body></html>")})
	add(Scenario{Name: "redirect-blockhost", URL: httpURL("redirect-blockhost"), Note: "plain HTTP redirected to an unknown filter's block page",
		Expect: Expect{Blocked: true, Method: method.HTTPStatus}},
		&behaviour{web: redirect(func(r *http.Request) string {
			return "http://filter.corp.invalid/blocked.html?category=collaboration&url=http%3A%2F%2F" + r.Host + "%2F"
		})})
	add(Scenario{Name: "redirect-blockhost-tls", Note: "the site itself, over its own certificate, redirects to a page named 'blocked'",
		Expect: Expect{Method: method.Reachable}},
		&behaviour{web: redirect(func(r *http.Request) string {
			return "http://filter.corp.invalid/blocked.html?category=collaboration&url=https%3A%2F%2F" + r.Host + "%2F"
		})})
	add(Scenario{Name: "redirect-unreachable", URL: httpURL("redirect-unreachable"), Note: "plain HTTP redirected to another site's server that does not resolve (a filter's internal block server)",
		Expect: Expect{Blocked: true, Method: method.HTTPStatus}},
		&behaviour{web: redirect(func(r *http.Request) string {
			return "http://gateway.corp.invalid:15871/?u=http%3A%2F%2F" + r.Host + "%2F"
		})})

	// Proxy.
	add(Scenario{Name: "proxy-refused", Proxy: n.Proxy, Note: "the proxy answers CONNECT with 403 (Squid ERR_ACCESS_DENIED)",
		Expect: Expect{Blocked: true, Method: method.ProxyRefused, Vendor: vendor("Squid")}}, &behaviour{proxy: "block"})
	add(Scenario{Name: "proxy-blockpage", Proxy: n.Proxy, URL: httpURL("proxy-blockpage"), Note: "the proxy serves its block page for a plain-HTTP request",
		Expect: Expect{Blocked: true, Method: method.HTTPBlockpage, Vendor: vendor("Squid")}}, &behaviour{proxy: "block"})
	add(Scenario{Name: "proxy-allowed", Proxy: n.Proxy, Expect: Expect{Method: method.Reachable}}, &behaviour{})
	add(Scenario{Name: "proxy-upstream-fail", Proxy: n.Proxy, Note: "the proxy cannot reach the site (ERR_CONNECT_FAIL)",
		Expect: Expect{Method: method.SiteDown}}, &behaviour{proxy: "upstream-fail"})

	// Captive portal and no network.
	add(Scenario{Name: "captive", URL: httpURL("captive"), CaptiveURL: n.CaptiveURL, Note: "every request is redirected to a Wi-Fi login page",
		Expect: Expect{Method: method.CaptivePortal}},
		&behaviour{web: redirect(func(*http.Request) string { return "http://portal." + Domain + ":" + port(n.HTTP) + "/login" })})
	n.hosts["portal."+Domain] = &behaviour{web: page(200, nil, "<html><head><title>Guest Wi-Fi</title></head><body><form>Accept the terms to get online</form></body></html>")}
	add(Scenario{Name: "captive-dns", CaptiveURL: n.CaptiveURL, Note: "the portal's resolver answers its private gateway address, and the connectivity check is redirected",
		Expect: Expect{Method: method.CaptivePortal}}, &behaviour{filterDNS: []netip.Addr{netip.MustParseAddr("192.168.1.1")}})
	add(Scenario{Name: "offline", DNS: "127.0.0.1:" + strconv.Itoa(deadUDP), CaptiveURL: "http://" + refused + "/generate_204",
		Note: "the resolver does not answer and nothing is reachable", Expect: Expect{Method: method.Offline}}, &behaviour{})

	sort.Slice(n.Scenarios, func(i, j int) bool { return n.Scenarios[i].Name < n.Scenarios[j].Name })
	close(n.ready)
	return n, nil
}

// Scenario finds a scenario by name.
func (n *Network) Scenario(name string) (Scenario, bool) {
	for _, s := range n.Scenarios {
		if s.Name == name {
			return s, true
		}
	}
	return Scenario{}, false
}

// ProbeArgs are the `detour probe` arguments for a scenario.
func (s Scenario) ProbeArgs(n *Network) []string {
	args := []string{s.URL, "--dns", s.DNS, "--public-ca-file", n.PublicCAFile, "--captive-url", s.CaptiveURL}
	if s.SecondDNS != "" {
		args = append(args, "--second-dns", s.SecondDNS)
	}
	if s.Proxy != "" {
		args = append(args, "--proxy", s.Proxy)
	}
	return args
}

// Close stops every server and removes temporary files.
func (n *Network) Close() {
	n.once.Do(func() {
		for i := len(n.closers) - 1; i >= 0; i-- {
			n.closers[i]()
		}
		if n.tmpDir != "" {
			_ = os.RemoveAll(n.tmpDir)
		}
	})
}

// lookup resolves an alias and finds a host's behaviour.
func (n *Network) lookup(host string) (*behaviour, bool) {
	<-n.ready
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if sc, ok := n.aliases[host]; ok {
		host = sc + "." + Domain
	}
	b, ok := n.hosts[host]
	return b, ok
}

func (n *Network) serveWeb(w http.ResponseWriter, r *http.Request) {
	b, ok := n.lookup(r.Host)
	if !ok {
		// The connectivity checks, asked for by address.
		switch r.URL.Path {
		case "/generate_204":
			w.WriteHeader(http.StatusNoContent)
		case "/captive/generate_204":
			http.Redirect(w, r, "http://portal."+Domain+":"+port(n.HTTP)+"/login", http.StatusFound)
		default:
			http.Error(w, "no such test host", http.StatusMisdirectedRequest)
		}
		return
	}
	if b.web != nil {
		b.web.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = fmt.Fprintf(w, "<html><head><title>Welcome</title></head><body><h1>%s works</h1><p>Shared documents, boards and calls.</p></body></html>", r.Host)
}

func (n *Network) serveHTTP(h http.Handler, cert *tlsCert) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("testnet: listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: quietLog()}
	if cert != nil {
		srv.TLSConfig = tlsConfig(cert)
		ln = tlsListener(ln, srv.TLSConfig)
	}
	go func() { _ = srv.Serve(ln) }()
	n.closers = append(n.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = srv.Close()
	})
	return ln.Addr().String(), nil
}

// serveTCP runs handle for each accepted connection, each in a goroutine.
func (n *Network) serveTCP(handle func(net.Conn)) (string, error) {
	return n.acceptLoop(func(c net.Conn) { go handle(c) })
}

// serveTCPInline runs handle in the accepting goroutine, for handlers that
// must act at once even on a loaded machine.
func (n *Network) serveTCPInline(handle func(net.Conn)) (string, error) {
	return n.acceptLoop(handle)
}

// acceptLoop listens on a fresh loopback port and passes every accepted
// connection to dispatch until the network closes.
func (n *Network) acceptLoop(dispatch func(net.Conn)) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("testnet: listen: %w", err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			dispatch(c)
		}
	}()
	n.closers = append(n.closers, func() { _ = ln.Close() })
	return ln.Addr().String(), nil
}

// resetConn aborts the connection at once (RST, not FIN).
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// resetAfterAnyClientHello reads the first TLS record, then aborts the
// connection whatever it names.
func resetAfterAnyClientHello(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(c, hdr); err == nil && hdr[0] == 0x16 {
		_, _ = io.ReadFull(c, make([]byte, int(hdr[3])<<8|int(hdr[4])))
	}
	resetConn(c)
}

// sniFilter behaves like a middlebox that filters by SNI: it reads the
// ClientHello and aborts the connection (RST) when it names a scenario host;
// a ClientHello naming nothing else is answered normally.
func sniFilter(c net.Conn, cert *tls.Certificate) {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	srv := tls.Server(c, &tls.Config{
		Certificates: []tls.Certificate{*cert},
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			if hello.ServerName != "" {
				resetConn(c)
				return nil, fmt.Errorf("testnet: %s is filtered", hello.ServerName)
			}
			return nil, nil
		},
	})
	if err := srv.Handshake(); err != nil {
		_ = c.Close()
		return
	}
	_ = srv.Close()
}

func closedPort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("testnet: listen: %w", err)
	}
	p := port(ln.Addr().String())
	_ = ln.Close()
	return p, nil
}

func closedUDPPort() (int, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testnet: listen udp: %w", err)
	}
	p := pc.LocalAddr().(*net.UDPAddr).Port
	_ = pc.Close()
	return p, nil
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(strings.TrimPrefix(addr, "http://"))
	return p
}
