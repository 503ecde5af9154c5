package probe

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/detour-project/detour/helper/fingerprint"
	"github.com/detour-project/detour/shared/method"
)

// The corpus (shared/fingerprints/corpus) holds real products' block pages
// and behaviours, and look-alikes that are not an organisation's filter,
// each with where it came from. A case is a set of observations, so the
// judge can be run on it without a network.

type corpusCase struct {
	ID          string    `json:"id"`
	Product     string    `json:"product"`
	Kind        string    `json:"kind"` // "block" or "look-alike"
	Source      string    `json:"source"`
	Licence     string    `json:"licence"`
	Sends       string    `json:"sends"`
	Observation corpusObs `json:"observation"`
	Want        struct {
		Blocked  bool    `json:"blocked"`
		Possible bool    `json:"possible"`
		Method   string  `json:"method"`
		Vendor   *string `json:"vendor"`
	} `json:"want"`
}

type corpusObs struct {
	URL     string      `json:"url"`
	Catalog bool        `json:"catalog"`
	Ref     string      `json:"ref"` // "", "online", "captive", "unreachable"
	Hops    []corpusHop `json:"hops"`
}

type corpusHop struct {
	URL      string            `json:"url"`
	TLS      string            `json:"tls"` // "public", "inspected:CA NAME", "untrusted", "public-other-name"
	DNS      *corpusDNS        `json:"dns"`
	Fail     string            `json:"fail"` // "dns", "tcp-refused", "tcp-reset", "tcp-timeout", "tls-reset", "http-reset"
	NoSNI    *bool             `json:"no_sni"`
	Proxy    *corpusProxy      `json:"proxy"`
	Status   int               `json:"status"`
	Headers  map[string]string `json:"headers"`
	Body     string            `json:"body"`
	Location string            `json:"location"`
}

type corpusDNS struct {
	Addrs  []string    `json:"addrs"`
	NX     bool        `json:"nx"`
	Rcode  string      `json:"rcode"`
	Second []corpusDNS `json:"second"`
}

type corpusProxy struct {
	Plain         bool              `json:"plain"`
	ConnectStatus int               `json:"connect_status"`
	Headers       map[string]string `json:"headers"`
	Body          string            `json:"body"`
}

func loadCorpus(t *testing.T) []corpusCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "shared", "fingerprints", "corpus", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus files: %v", err)
	}
	var out []corpusCase
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var c corpusCase
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if c.ID+".json" != filepath.Base(f) {
			t.Errorf("%s: id %q does not name the file", f, c.ID)
		}
		out = append(out, c)
	}
	return out
}

func header(m map[string]string) http.Header {
	h := http.Header{}
	for k, v := range m {
		h.Set(k, v)
	}
	return h
}

func addrs(t *testing.T, ss []string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		a, err := netip.ParseAddr(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// observe turns a case into what the probe would have measured.
func (c corpusCase) observe(t *testing.T, fps *fingerprint.Set) *observation {
	u, err := url.Parse(c.Observation.URL)
	if err != nil {
		t.Fatal(err)
	}
	obs := &observation{url: u, host: u.Hostname(), catalog: c.Observation.Catalog}
	switch c.Observation.Ref {
	case "":
	case "online":
		obs.ref = &refResult{state: refOnline, host: "connectivitycheck.gstatic.com"}
	case "captive":
		obs.ref = &refResult{state: refCaptive, host: "connectivitycheck.gstatic.com", location: "http://192.168.1.1:8002/index.php?zone=guest"}
	case "unreachable":
		obs.ref = &refResult{state: refUnreachable, host: "connectivitycheck.gstatic.com", err: "connection refused"}
	default:
		t.Fatalf("ref %q", c.Observation.Ref)
	}
	for _, ch := range c.Observation.Hops {
		hu, err := url.Parse(ch.URL)
		if err != nil {
			t.Fatal(err)
		}
		h := hopObs{url: hu, port: defaultPort(hu)}
		if ch.DNS != nil {
			d := &dnsObs{resolver: "the system resolver", res: dnsResult{addrs: addrs(t, ch.DNS.Addrs), nx: ch.DNS.NX, rcode: ch.DNS.Rcode}}
			for _, s := range ch.DNS.Second {
				d.second = append(d.second, secondOpinion{resolver: "the resolver at 1.1.1.1:53", res: dnsResult{addrs: addrs(t, s.Addrs), nx: s.NX}})
			}
			h.dns = d
			usable := usableAddrs(d, obs.catalog, fps)
			if ch.Fail == "dns" {
				if len(usable) > 0 {
					t.Fatalf("fail=dns but the probe would connect to %v", usable)
				}
				h.sinkholed = len(d.res.addrs) > 0
			} else {
				h.tried = usable
			}
		}
		if ch.Proxy != nil {
			h.proxy = &proxyObs{host: "proxy.corp.example:3128"}
			if ch.Proxy.ConnectStatus != 0 {
				h.proxy.tunnelStatus = ch.Proxy.ConnectStatus
				h.proxy.tunnelHeader = header(ch.Proxy.Headers)
				h.proxy.tunnelBody = []byte(ch.Proxy.Body)
			}
			h.viaProxy = ch.Proxy.Plain
		} else if ch.Fail != "dns" {
			h.connected = "93.184.215.14:" + h.port
		}
		switch ch.Fail {
		case "", "dns":
		case "tcp-refused":
			h.connected, h.dialErr = "", failRefused
		case "tcp-reset":
			h.connected, h.dialErr = "", failReset
		case "tcp-timeout":
			h.connected, h.dialErr = "", failTimeout
		case "tls-reset":
			h.tlsErr, h.noSNI = failReset, ch.NoSNI
		case "http-reset":
			h.httpErr = failReset
		default:
			t.Fatalf("fail %q", ch.Fail)
		}
		if hu.Scheme == "https" && ch.Fail == "" && (ch.Proxy == nil || ch.Proxy.ConnectStatus == 0) {
			switch {
			case ch.TLS == "public":
				h.tls = &tlsInfo{public: true, trusted: true, nameOK: true, issuer: "R11"}
			case ch.TLS == "public-other-name":
				h.tls = &tlsInfo{public: true, trusted: true, issuer: "R11"}
			case ch.TLS == "untrusted":
				h.tls = &tlsInfo{nameOK: true, issuer: "Unknown CA"}
			case strings.HasPrefix(ch.TLS, "inspected:"):
				name := strings.TrimPrefix(ch.TLS, "inspected:")
				h.tls = &tlsInfo{trusted: true, nameOK: true, issuer: name}
				if m, ok := fps.MatchIssuer([]string{name}); ok {
					h.tls.match = &m
				}
			default:
				t.Fatalf("an https hop needs tls, got %q", ch.TLS)
			}
		}
		if ch.Fail == "" && (ch.Proxy == nil || ch.Proxy.ConnectStatus == 0) {
			h.answered = true
			h.status, h.header, h.body, h.location = ch.Status, header(ch.Headers), []byte(ch.Body), ch.Location
		}
		obs.hops = append(obs.hops, h)
	}
	return obs
}

// TestCorpus runs every case through the judge: verdict, blocked or
// possibly blocked, and the vendor, named only when the case names it.
func TestCorpus(t *testing.T) {
	cases := loadCorpus(t)
	fps := fingerprint.Default()
	looks := 0
	for _, c := range cases {
		if c.Kind == "look-alike" {
			looks++
		}
		t.Run(c.ID, func(t *testing.T) {
			if c.Product == "" || c.Source == "" || c.Licence == "" || c.Sends == "" || (c.Kind != "block" && c.Kind != "look-alike") {
				t.Errorf("case lacks provenance (product, source, licence, sends, kind)")
			}
			if !method.Valid(c.Want.Method) {
				t.Fatalf("want method %q is not in the vocabulary", c.Want.Method)
			}
			out, facts := judgeObservation(c.observe(t, fps), fps)
			blocked := method.IsBlock(out.method) && !out.possible
			possible := method.IsBlock(out.method) && out.possible
			if blocked != c.Want.Blocked || possible != c.Want.Possible || out.method != c.Want.Method || out.vendor != vendorString(c.Want.Vendor) && !(out.vendor == "" && c.Want.Vendor == nil) {
				var ev []string
				for _, f := range facts {
					ev = append(ev, Render(f))
				}
				t.Errorf("got blocked=%v possible=%v %s vendor=%q, want blocked=%v possible=%v %s vendor=%s\n  %s",
					blocked, possible, out.method, out.vendor, c.Want.Blocked, c.Want.Possible, c.Want.Method, vendorString(c.Want.Vendor),
					strings.Join(ev, "\n  "))
			}
			if c.Kind == "look-alike" && blocked {
				t.Errorf("a look-alike reported as a block")
			}
			for _, f := range facts {
				if _, ok := FactText[f.Code]; !ok {
					t.Errorf("fact %q has no English sentence", f.Code)
				}
			}
		})
	}
	if len(cases) < 60 || looks*3 < len(cases) {
		t.Errorf("%d cases, %d look-alikes: want at least 60, a third of them look-alikes", len(cases), looks)
	}
}
