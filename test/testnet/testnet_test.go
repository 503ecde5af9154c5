package testnet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The probe's tests (helper/probe) exercise every scenario end to end; these
// check the network's own building blocks.

func start(t *testing.T) *Network {
	t.Helper()
	n, err := Start(Options{Aliases: map[string]string{"docs.example.com": "blockpage-zscaler"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

func query(t *testing.T, server, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, server)
	if err != nil {
		t.Fatalf("dns %s %s: %v", server, name, err)
	}
	return r
}

func TestDNS(t *testing.T) {
	n := start(t)
	cases := []struct {
		server, name string
		qtype        uint16
		rcode        int
		answer       string
	}{
		{n.DNS, "reachable." + Domain, dns.TypeA, dns.RcodeSuccess, "127.0.0.1"},
		{n.DNS, "dns-umbrella." + Domain, dns.TypeA, dns.RcodeSuccess, "146.112.61.106"},
		{n.DNS, "dns-umbrella." + Domain, dns.TypeAAAA, dns.RcodeSuccess, "::ffff:146.112.61.106"},
		{n.DNS, "dns-zero." + Domain, dns.TypeAAAA, dns.RcodeSuccess, "::"},
		{n.DNS, "dns-nxdomain." + Domain, dns.TypeA, dns.RcodeNameError, ""},
		{n.PublicDNS, "dns-nxdomain." + Domain, dns.TypeA, dns.RcodeSuccess, "127.0.0.1"},
		{n.PublicDNS, "dns-umbrella." + Domain, dns.TypeA, dns.RcodeSuccess, "127.0.0.1"},
		{n.PublicDNS, "dns-typo." + Domain, dns.TypeA, dns.RcodeNameError, ""},
		{n.DNS, "unknown.example", dns.TypeA, dns.RcodeNameError, ""},
		{n.DNS, "docs.example.com", dns.TypeA, dns.RcodeSuccess, "127.0.0.1"},
	}
	for _, c := range cases {
		r := query(t, c.server, c.name, c.qtype)
		if r.Rcode != c.rcode {
			t.Errorf("%s %s: rcode %s, want %s", c.server, c.name, dns.RcodeToString[r.Rcode], dns.RcodeToString[c.rcode])
			continue
		}
		got := ""
		if len(r.Answer) > 0 {
			switch a := r.Answer[0].(type) {
			case *dns.A:
				got = a.A.String()
			case *dns.AAAA:
				got = a.AAAA.String()
			}
		}
		if got != c.answer && !(c.answer == "::ffff:146.112.61.106" && got == "146.112.61.106") {
			t.Errorf("%s %s: answer %q, want %q", c.server, c.name, got, c.answer)
		}
	}
}

func clientFor(n *Network, pemCA []byte) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemCA)
	return &http.Client{
		Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool},
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				_, p, _ := net.SplitHostPort(addr)
				return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:"+p)
			},
		},
	}
}

func TestWebAndCAs(t *testing.T) {
	n := start(t)
	pub := clientFor(n, n.PublicCAPEM)
	get := func(c *http.Client, u string) (*http.Response, string) {
		t.Helper()
		resp, err := c.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	s, _ := n.Scenario("blockpage-zscaler")
	resp, body := get(pub, s.URL)
	if resp.StatusCode != 403 || !strings.Contains(body, "Zscaler") {
		t.Errorf("zscaler block page: %d %q", resp.StatusCode, body)
	}
	// An alias is served like its scenario.
	resp, body = get(pub, "https://docs.example.com:"+port(n.HTTPS)+"/")
	if !strings.Contains(body, "Website blocked") {
		t.Errorf("alias: %d %q", resp.StatusCode, body)
	}
	// The inspection server's chain does not verify against the public CA, but does against the inspection CA.
	s, _ = n.Scenario("tls-inspected")
	if _, err := pub.Get(s.URL); err == nil {
		t.Error("inspection certificate verified against the public CA")
	}
	resp, _ = get(clientFor(n, n.InspectionCAPEM), s.URL)
	if resp.TLS == nil || resp.TLS.PeerCertificates[len(resp.TLS.PeerCertificates)-1].Subject.CommonName != "Zscaler Root CA" {
		t.Error("inspection chain does not end in Zscaler Root CA")
	}
	resp, _ = get(pub, n.OnlineURL)
	if resp.StatusCode != 204 {
		t.Errorf("online check: %d", resp.StatusCode)
	}
	resp, _ = get(pub, n.CaptiveURL)
	if resp.StatusCode != 302 || !strings.Contains(resp.Header.Get("Location"), "portal.") {
		t.Errorf("captive check: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestTCPBehaviours(t *testing.T) {
	n := start(t)
	addr := func(name string) string {
		s, _ := n.Scenario(name)
		u, _ := url.Parse(s.URL)
		return "127.0.0.1:" + u.Port()
	}
	if _, err := net.DialTimeout("tcp", addr("site-down"), time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("site-down: %v, want connection refused", err)
	}
	// On loopback the reset may already be there when connect completes.
	c, err := net.DialTimeout("tcp", addr("tcp-reset"), time.Second)
	if err == nil {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = c.Read(make([]byte, 1))
		c.Close()
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("tcp-reset: %v, want reset", err)
	}
	if _, err := net.DialTimeout("tcp", addr("tcp-timeout"), 500*time.Millisecond); err == nil || !isTimeout(err) {
		t.Errorf("tcp-timeout: %v, want a timeout", err)
	}
	c, err = net.DialTimeout("tcp", addr("tls-reset"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// No reset before the ClientHello ...
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !isTimeout(err) {
		t.Errorf("tls-reset: before ClientHello: %v, want nothing", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	// ... and a reset after it.
	err = tls.Client(c, &tls.Config{ServerName: "tls-reset." + Domain}).Handshake()
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("tls-reset: handshake %v, want reset", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestProxy(t *testing.T) {
	n := start(t)
	pu, _ := url.Parse(n.Proxy)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(pu),
		TLSClientConfig: &tls.Config{RootCAs: func() *x509.CertPool { p := x509.NewCertPool(); p.AppendCertsFromPEM(n.PublicCAPEM); return p }()}}}
	s, _ := n.Scenario("proxy-allowed")
	resp, err := c.Get(s.URL)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("allowed via proxy: %v %v", resp, err)
	}
	resp.Body.Close()
	// Standard ports reach the network's own servers: an alias works through the proxy.
	resp, err = c.Get("https://docs.example.com/")
	if err != nil || resp.StatusCode != 403 {
		t.Fatalf("alias through the proxy on port 443: %v %v", resp, err)
	}
	resp.Body.Close()
	s, _ = n.Scenario("proxy-refused")
	if _, err := c.Get(s.URL); err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Errorf("refused tunnel: %v", err)
	}
	s, _ = n.Scenario("proxy-blockpage")
	resp, err = c.Get(s.URL)
	if err != nil || resp.StatusCode != 403 || !strings.Contains(resp.Header.Get("X-Squid-Error"), "ERR_ACCESS_DENIED") {
		t.Fatalf("block page via proxy: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestScenariosWellFormed(t *testing.T) {
	n := start(t)
	seen := map[string]bool{}
	for _, s := range n.Scenarios {
		if seen[s.Name] || s.Host == "" || s.Expect.Method == "" || s.DNS == "" || s.CaptiveURL == "" {
			t.Errorf("bad scenario %+v", s)
		}
		seen[s.Name] = true
		u, err := url.Parse(s.URL)
		if err != nil || u.Hostname() != s.Host || u.Port() == "" {
			t.Errorf("%s: url %q must name the host and a port", s.Name, s.URL)
		}
	}
	for _, must := range []string{"reachable", "dns-nxdomain", "dns-umbrella", "site-down", "tcp-reset", "tls-reset",
		"tls-inspected", "proxy-refused", "captive", "site-404", "site-503", "lookalike-cloudflare-challenge", "offline"} {
		if !seen[must] {
			t.Errorf("missing scenario %s", must)
		}
	}
}
