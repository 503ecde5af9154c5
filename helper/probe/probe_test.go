package probe

import (
	"context"
	"crypto/x509"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/detour-project/detour/shared/method"
	"github.com/detour-project/detour/test/testnet"
)

var (
	netOnce sync.Once
	tn      *testnet.Network
	tnErr   error
	dialsMu sync.Mutex
	dials   []string
)

// network starts one shared test network for the package and records
// every address the probe connects to.
func network(t *testing.T) *testnet.Network {
	t.Helper()
	netOnce.Do(func() {
		tn, tnErr = testnet.Start(testnet.Options{Aliases: map[string]string{
			"docs.example.com":    "blockpage-zscaler",
			"wiki.example.com":    "reachable",
			"board.example.com":   "site-down",
			"files.example.com":   "dns-nxdomain",
			"meet.example.com":    "reachable",
			"intranet.example":    "reachable",
			"catalog.example.com": "reachable",
		}})
		dialCheck = func(addr string) {
			dialsMu.Lock()
			dials = append(dials, addr)
			dialsMu.Unlock()
		}
	})
	if tnErr != nil {
		t.Fatal(tnErr)
	}
	return tn
}

func TestMain(m *testing.M) {
	code := m.Run()
	if tn != nil {
		tn.Close()
	}
	// Every connection the probe made went to loopback: a public block
	// address in a DNS answer is data, never a destination.
	if tn != nil && len(dials) == 0 {
		println("no connection was recorded: the loopback check saw nothing")
		code = 1
	}
	for _, d := range dials {
		ap, err := netip.ParseAddrPort(d)
		if err != nil || !ap.Addr().IsLoopback() {
			println("probe connected to a non-loopback address:", d)
			code = 1
		}
	}
	os.Exit(code)
}

func optionsFor(n *testnet.Network, s testnet.Scenario) Options {
	o := Options{DNS: s.DNS, Proxy: s.Proxy, CaptiveURL: s.CaptiveURL, PublicCAFile: n.PublicCAFile, Timeout: 4 * time.Second}
	if s.SecondDNS != "" {
		o.SecondDNS = []string{s.SecondDNS}
	}
	return o
}

func vendorString(v *string) string {
	if v == nil {
		return "<nil>"
	}
	return *v
}

// TestScenarios runs the real probe against every scenario of the test
// network and checks blocked, method and vendor.
func TestScenarios(t *testing.T) {
	n := network(t)
	if len(n.Scenarios) < 40 {
		t.Fatalf("only %d scenarios", len(n.Scenarios))
	}
	for _, s := range n.Scenarios {
		t.Run(s.Name, func(t *testing.T) {
			t.Parallel()
			v, err := Probe(context.Background(), s.URL, optionsFor(n, s))
			if err != nil {
				t.Fatal(err)
			}
			if v.Blocked != s.Expect.Blocked || v.Possible != s.Expect.Possible || v.Method != s.Expect.Method || vendorString(v.Vendor) != vendorString(s.Expect.Vendor) {
				t.Errorf("got blocked=%v possible=%v method=%s vendor=%s, want blocked=%v possible=%v method=%s vendor=%s\nevidence:\n  %s",
					v.Blocked, v.Possible, v.Method, vendorString(v.Vendor), s.Expect.Blocked, s.Expect.Possible, s.Expect.Method, vendorString(s.Expect.Vendor),
					strings.Join(v.Evidence, "\n  "))
			}
			if (v.Blocked || v.Possible) != method.IsBlock(v.Method) || (v.Blocked && v.Possible) || !method.Valid(v.Method) || len(v.Facts) != len(v.Evidence) {
				t.Errorf("inconsistent verdict %+v", v)
			}
			if v.Confidence <= 0 || v.Confidence > 1 || len(v.Evidence) == 0 || v.Host != s.Host {
				t.Errorf("verdict lacks confidence, evidence or host: %+v", v)
			}
		})
	}
}

// TestVariants covers settings the scenario list does not: catalog hosts,
// --connect-to, a machine that trusts the inspection CA, and no second
// resolver.
func TestVariants(t *testing.T) {
	n := network(t)
	catalog := func(host string) *string {
		if strings.HasSuffix(host, ".example.com") {
			id := strings.TrimSuffix(host, ".example.com")
			return &id
		}
		return nil
	}
	get := func(name string) testnet.Scenario {
		s, ok := n.Scenario(name)
		if !ok {
			t.Fatalf("no scenario %s", name)
		}
		return s
	}
	inspRoots := x509.NewCertPool()
	inspRoots.AppendCertsFromPEM(n.InspectionCAPEM)
	_, httpsPort, _ := net.SplitHostPort(n.HTTPS)
	_, refusedPort := splitURLPort(get("site-down").URL)
	cases := []struct {
		name    string
		url     string
		opts    func(o *Options)
		blocked bool
		method  string
		vendor  string
	}{
		{"connect-to block page, no DNS", "https://docs.example.com/", func(o *Options) {
			o.DNS = ""
			o.ConnectTo = []string{"docs.example.com:443:127.0.0.1:" + httpsPort}
		}, true, method.HTTPBlockpage, "Zscaler"},
		{"connect-to a catalog host on loopback is not a sinkhole", "https://wiki.example.com/", func(o *Options) {
			o.DNS = ""
			o.ConnectTo = []string{"::127.0.0.1:" + httpsPort}
		}, false, method.Reachable, ""},
		{"connect-to a closed port: site down, not blocked", "https://board.example.com/", func(o *Options) {
			o.DNS = ""
			o.ConnectTo = []string{"board.example.com:443:127.0.0.1:" + refusedPort}
		}, false, method.SiteDown, ""},
		{"catalog host denied without a second resolver", "https://files.example.com:" + httpsPort + "/", func(o *Options) {
			o.SecondDNS = nil
		}, true, method.DNSNXDomain, ""},
		{"non-catalog name unknown without a second resolver", get("dns-nxdomain").URL, func(o *Options) {
			o.SecondDNS = nil
			o.Catalog = nil
		}, false, method.SiteDown, ""},
		{"machine trusts the inspection CA", get("tls-inspected").URL, func(o *Options) {
			o.Roots = inspRoots
		}, true, method.TLSIntercepted, "Zscaler"},
		{"inspection CA file as the machine's store", get("tls-inspected").URL, func(o *Options) {
			o.CAFile = n.InspectionCAFile
		}, true, method.TLSIntercepted, "Zscaler"},
		{"catalog host via loopback resolver is believed", "https://meet.example.com:" + httpsPort + "/", nil, false, method.Reachable, ""},
		{"explicit proxy for a plain reachable site", get("reachable").URL, func(o *Options) {
			o.Proxy = n.Proxy
		}, false, method.Reachable, ""},
		{"a private CA the machine trusts, naming no product: the page loads", get("reachable").URL, func(o *Options) {
			o.PublicCAFile, o.CAFile = "", n.PublicCAFile
		}, false, method.Reachable, ""},
		{"a private CA the machine trusts: a 503 is still the site's", get("site-503").URL, func(o *Options) {
			o.PublicCAFile, o.CAFile = "", n.PublicCAFile
		}, false, method.SiteDown, ""},
		{"a CA neither public nor trusted: the browser refuses it", get("reachable").URL, func(o *Options) {
			o.PublicCAFile, o.Roots = "", x509.NewCertPool()
		}, true, method.TLSIntercepted, ""},
		{"captive portal recognised without a connectivity check", get("captive").URL, func(o *Options) {
			o.CaptiveURL = ""
		}, false, method.CaptivePortal, ""},
		{"offline without a connectivity check", get("offline").URL, func(o *Options) {
			o.CaptiveURL, o.DNS = "", get("offline").DNS
		}, false, method.Offline, ""},
		{"an expired certificate from a CA the machine trusts: the site's fault", get("tls-expired").URL, func(o *Options) {
			o.PublicCAFile, o.CAFile = "", n.PublicCAFile
		}, false, method.SiteDown, ""},
		{"host given as a bare name", "reachable." + testnet.Domain + ":" + httpsPort, nil, false, method.Reachable, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			o := Options{DNS: n.DNS, SecondDNS: []string{n.PublicDNS}, CaptiveURL: n.OnlineURL, PublicCAFile: n.PublicCAFile,
				Timeout: 4 * time.Second, Catalog: catalog}
			if c.opts != nil {
				c.opts(&o)
			}
			v, err := Probe(context.Background(), c.url, o)
			if err != nil {
				t.Fatal(err)
			}
			if v.Blocked != c.blocked || v.Method != c.method || vendorString(v.Vendor) != map[bool]string{true: c.vendor, false: "<nil>"}[c.vendor != ""] {
				t.Errorf("got blocked=%v method=%s vendor=%s, want %v %s %q\nevidence:\n  %s", v.Blocked, v.Method,
					vendorString(v.Vendor), c.blocked, c.method, c.vendor, strings.Join(v.Evidence, "\n  "))
			}
		})
	}
}

func splitURLPort(u string) (string, string) {
	u = strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://")
	u = strings.TrimSuffix(u, "/")
	h, p, _ := net.SplitHostPort(u)
	return h, p
}

// TestJudgeDNS covers answers the test network cannot give without sending
// packets off loopback: private and bogon answers for catalog hosts.
func TestJudgeDNS(t *testing.T) {
	cases := []struct {
		name     string
		catalog  bool
		resolver string
		addrs    []string
		method   string // "" means: connect to the addresses
	}{
		{"public address", true, "", []string{"93.184.216.34"}, ""},
		{"private answer for a catalog host", true, "", []string{"10.10.10.10"}, method.DNSSinkhole},
		{"private answer for an intranet host", false, "", []string{"10.10.10.10"}, ""},
		{"loopback for a catalog host via the system resolver", true, "", []string{"127.0.0.1"}, method.DNSSinkhole},
		{"loopback for a catalog host via a loopback test resolver", true, "127.0.0.1:5353", []string{"127.0.0.1"}, ""},
		{"documentation range", false, "", []string{"192.0.2.1"}, method.DNSSinkhole},
		{"unspecified, any host", false, "", []string{"0.0.0.0"}, method.DNSSinkhole},
		{"umbrella block address", false, "", []string{"146.112.61.104"}, method.DNSSinkhole},
		{"one good among bad", true, "", []string{"10.0.0.1", "93.184.216.34"}, ""},
		{"private answer from a loopback test resolver", false, "127.0.0.1:5353", []string{"10.1.2.3"}, method.DNSSinkhole},
		{"public A with an unspecified AAAA", false, "", []string{"93.184.216.34", "::"}, ""},
		{"IPv4-mapped umbrella address", false, "", []string{"::ffff:146.112.61.107"}, method.DNSSinkhole},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := newProber(Options{DNS: c.resolver})
			if err != nil {
				t.Fatal(err)
			}
			p.catalog = c.catalog
			var r dnsResult
			for _, a := range c.addrs {
				r.addrs = append(r.addrs, netip.MustParseAddr(a))
			}
			d := &dnsObs{resolver: p.res.String(), loopback: p.res.loopback(), res: r}
			usable := usableAddrs(d, c.catalog, p.fps)
			j := &judge{fps: p.fps}
			out := j.dns(&observation{catalog: c.catalog}, d, "svc.example.com")
			switch {
			case c.method == "" && (out.method != "" || len(usable) == 0):
				t.Errorf("want a connection, got %+v", out)
			case c.method != "" && (out.method != c.method || len(usable) > 0):
				t.Errorf("want %s, got %+v (usable %v)", c.method, out, usable)
			}
			for _, a := range usable {
				if classifyAddr(a) != addrPublic && c.catalog && !p.res.loopback() {
					t.Errorf("would connect to %s for a catalog host", a)
				}
			}
		})
	}
}

func TestConnectToParsing(t *testing.T) {
	good := map[string][4]string{
		"a.example:443:127.0.0.1:8443": {"a.example", "443", "127.0.0.1", "8443"},
		"::127.0.0.1:":                 {"", "", "127.0.0.1", ""},
		"[::1]:443:[::1]:8443":         {"::1", "443", "::1", "8443"},
	}
	for in, want := range good {
		got, err := splitConnectTo(in)
		if err != nil || got != want {
			t.Errorf("splitConnectTo(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"a:443:b", "a:x:b:1", "a:443:b:70000", "[::1:443:b:1"} {
		if _, err := splitConnectTo(bad); err == nil {
			t.Errorf("splitConnectTo(%q) accepted", bad)
		}
	}
}

func TestTidyEvidence(t *testing.T) {
	long := strings.Repeat("x", 3000)
	many := make([]string, 80)
	for i := range many {
		many[i] = "line\nwith\tcontrol"
	}
	got := tidyEvidence(append([]string{long}, many...))
	if len(got) != maxEvidence {
		t.Fatalf("%d sentences, want %d", len(got), maxEvidence)
	}
	if n := len([]rune(got[0])); n > maxEvidenceLen {
		t.Errorf("first sentence has %d runes", n)
	}
	if strings.ContainsAny(got[1], "\n\t") {
		t.Errorf("control characters kept: %q", got[1])
	}
}

// TestResolverIgnoringAAAA: a resolver that never answers AAAA must not cost
// the probe its whole DNS step.
func TestResolverIgnoringAAAA(t *testing.T) {
	n := network(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		if r.Question[0].Qtype != dns.TypeA {
			return // silence
		}
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(127, 0, 0, 1)})
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	defer func() { _ = srv.Shutdown() }()
	s, _ := n.Scenario("reachable")
	v, err := Probe(context.Background(), s.URL, Options{DNS: pc.LocalAddr().String(), PublicCAFile: n.PublicCAFile, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if v.Method != method.Reachable {
		t.Errorf("got %s: %v", v.Method, v.Evidence)
	}
	t.Logf("probe took %d ms", v.ElapsedMS)
	// Without the grace period it waits for the DNS client's 2 s read timeout.
	if v.ElapsedMS >= 1900 {
		t.Errorf("the probe waited %d ms for the unanswered AAAA", v.ElapsedMS)
	}
}

// TestSNIConfirmation: after a reset that follows the ClientHello, the probe
// asks again without the name; a server that then answers confirms that
// the name is what is filtered.
func TestSNIConfirmation(t *testing.T) {
	n := network(t)
	conf := map[string]float64{}
	for _, name := range []string{"tls-reset", "tls-reset-any"} {
		s, _ := n.Scenario(name)
		v, err := Probe(context.Background(), s.URL, optionsFor(n, s))
		if err != nil {
			t.Fatal(err)
		}
		if v.Method != method.TLSReset {
			t.Fatalf("%s: %s %v", name, v.Method, v.Evidence)
		}
		conf[name] = v.Confidence
	}
	if conf["tls-reset"] <= conf["tls-reset-any"] {
		t.Errorf("a confirmed SNI filter (%.2f) should be more certain than a server that cuts everything (%.2f)", conf["tls-reset"], conf["tls-reset-any"])
	}
}
