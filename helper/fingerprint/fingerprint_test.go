package fingerprint

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/detour-project/detour/shared/fingerprints"
)

// mutate breaks a pattern so that it no longer occurs: one byte in the middle
// becomes '#', which no pattern contains.
func mutate(p string) string {
	if p == "" {
		return "#"
	}
	i := len(p) / 2
	return p[:i] + "#" + p[i+1:]
}

// spec is a response under construction, rendered by build.
type spec struct {
	status   int
	headers  http.Header
	redirect *url.URL
	title    []string
	body     []string
}

func (s spec) build() *Response {
	var b strings.Builder
	b.WriteString("<html><head>")
	if len(s.title) > 0 {
		b.WriteString("<title>" + strings.Join(s.title, " | ") + "</title>")
	}
	b.WriteString("</head><body>")
	for _, p := range s.body {
		b.WriteString("<p>" + p + "</p>\n")
	}
	b.WriteString("</body></html>")
	r := &Response{Status: s.status, Header: s.headers, Body: []byte(b.String())}
	if r.Header == nil {
		r.Header = http.Header{}
	}
	if s.redirect != nil {
		r.Redirects = []*url.URL{s.redirect}
	}
	return r
}

func cloneSpec(s spec) spec {
	c := s
	c.headers = s.headers.Clone()
	if s.redirect != nil {
		u := *s.redirect
		c.redirect = &u
	}
	c.title = append([]string(nil), s.title...)
	c.body = append([]string(nil), s.body...)
	return c
}

// matching builds a response satisfying every condition of r.
func matching(r fingerprints.Rule) spec {
	s := spec{status: 200, headers: http.Header{}}
	if len(r.Status) > 0 {
		s.status = r.Status[0]
	}
	for _, h := range r.Headers {
		v := "present"
		if h.Contains != "" {
			v = "x " + h.Contains + " y"
		}
		s.headers.Add(h.Name, v)
	}
	if rd := r.Redirect; rd != nil {
		u := &url.URL{Scheme: "http", Host: "filter.example", Path: "/"}
		if len(rd.Hosts) > 0 {
			u.Host = "blk." + rd.Hosts[0]
		}
		if rd.Port != 0 {
			u.Host += ":" + strconv.Itoa(rd.Port)
		}
		if rd.Path != "" {
			u.Path = "/x" + rd.Path + "/y"
		}
		q := url.Values{}
		for _, k := range rd.Query {
			q.Set(k, "1")
		}
		u.RawQuery = q.Encode()
		s.redirect = u
	}
	s.title = append(s.title, r.Title...)
	s.body = append(s.body, r.Body...)
	return s
}

// nearMisses breaks one condition of r at a time.
func nearMisses(r fingerprints.Rule) map[string]spec {
	base := matching(r)
	out := map[string]spec{}
	if len(r.Status) > 0 {
		s := cloneSpec(base)
		s.status = 200
		for _, st := range r.Status {
			if st == 200 {
				s.status = 418
			}
		}
		out["status"] = s
	}
	for i, h := range r.Headers {
		s := cloneSpec(base)
		if h.Contains == "" {
			s.headers.Del(h.Name)
		} else {
			s.headers.Set(h.Name, "x "+mutate(h.Contains)+" y")
		}
		out[fmt.Sprintf("header %d %s", i, h.Name)] = s
	}
	if rd := r.Redirect; rd != nil {
		if len(rd.Hosts) > 0 {
			s := cloneSpec(base)
			s.redirect.Host = strings.Replace(s.redirect.Host, rd.Hosts[0], "not"+rd.Hosts[0]+".example", 1)
			out["redirect host"] = s
		}
		if rd.Port != 0 {
			s := cloneSpec(base)
			s.redirect.Host = s.redirect.Hostname() + ":" + strconv.Itoa(rd.Port+1)
			out["redirect port"] = s
		}
		if rd.Path != "" {
			s := cloneSpec(base)
			s.redirect.Path = "/x" + mutate(rd.Path) + "/y"
			out["redirect path"] = s
		}
		if len(rd.Query) > 0 {
			s := cloneSpec(base)
			q := s.redirect.Query()
			q.Del(rd.Query[0])
			s.redirect.RawQuery = q.Encode()
			out["redirect query"] = s
		}
		s := cloneSpec(base)
		s.redirect = nil
		out["no redirect"] = s
	}
	for i, t := range r.Title {
		s := cloneSpec(base)
		s.title[i] = mutate(t)
		out[fmt.Sprintf("title %d", i)] = s
		// The same words in the body are not a title.
		s2 := cloneSpec(base)
		s2.title = nil
		s2.body = append(s2.body, r.Title...)
		out[fmt.Sprintf("title %d in body", i)] = s2
	}
	for i, p := range r.Body {
		s := cloneSpec(base)
		s.body[i] = mutate(p)
		out[fmt.Sprintf("body %d", i)] = s
	}
	return out
}

// ruleFires reports whether rule index of fingerprint id matches resp.
func ruleFires(set *Set, id string, index int, resp *Response) bool {
	found := make([]uint64, (len(set.patterns)+63)/64)
	set.body.scan(resp.Body, found)
	title := foldString(pageTitle(resp.Body))
	headers := map[string]string{}
	for _, h := range set.headers {
		if vs := resp.Header.Values(h); len(vs) > 0 {
			headers[h] = foldString(strings.Join(vs, ", "))
		}
	}
	for i := range set.rules {
		cr := &set.rules[i]
		if set.fps[cr.fp].ID == id && cr.index == index {
			_, ok := set.eval(cr, resp, found, title, headers)
			return ok
		}
	}
	panic("no such rule")
}

// TestEveryRule: for every rule of every fingerprint, a response built from
// the rule matches it, and breaking any one of its conditions does not.
func TestEveryRule(t *testing.T) {
	set := Default()
	n := 0
	for _, fp := range set.Fingerprints() {
		for ri, r := range fp.Rules {
			t.Run(fmt.Sprintf("%s/rule%d", fp.ID, ri), func(t *testing.T) {
				resp := matching(r).build()
				if !ruleFires(set, fp.ID, ri, resp) {
					t.Fatalf("rule does not match its own synthetic response: %+v", resp)
				}
				ms := set.Match(resp)
				got := false
				for _, m := range ms {
					got = got || m.ID == fp.ID
				}
				if !got {
					t.Fatalf("Match did not report %s: %+v", fp.ID, ms)
				}
				for name, s := range nearMisses(r) {
					if ruleFires(set, fp.ID, ri, s.build()) {
						t.Errorf("near-miss %q still matches", name)
					}
					n++
				}
			})
		}
	}
	if n < 100 {
		t.Fatalf("only %d near-misses generated", n)
	}
}

// TestSamples: each fingerprint's sample response (served by the test
// network) is recognised as that fingerprint, ahead of every other.
func TestSamples(t *testing.T) {
	set := Default()
	for _, fp := range set.Fingerprints() {
		t.Run(fp.ID, func(t *testing.T) {
			h := http.Header{}
			for k, v := range fp.Sample.Headers {
				h.Set(k, v)
			}
			resp := &Response{Status: fp.Sample.Status, Header: h, Body: []byte(fp.Sample.Body)}
			if fp.Sample.Location != "" {
				u, err := url.Parse(fp.Sample.Location)
				if err != nil {
					t.Fatal(err)
				}
				resp.Redirects = []*url.URL{u}
				if m, ok := set.MatchRedirect(u); !ok || m.ID != fp.ID {
					t.Errorf("MatchRedirect(%s) = %+v, %v", u, m, ok)
				}
			}
			m, ok := set.Best(resp)
			if !ok || m.ID != fp.ID || m.Kind != fp.Kind || m.Vendor != fp.Vendor {
				t.Fatalf("Best = %+v, %v; want %s", m, ok, fp.ID)
			}
			if len(m.Evidence) == 0 || m.Confidence <= 0 || m.Confidence > 1 {
				t.Errorf("match lacks evidence or confidence: %+v", m)
			}
		})
	}
}

func TestDNS(t *testing.T) {
	set := Default()
	for _, fp := range set.Fingerprints() {
		for _, d := range fp.DNS {
			a := netip.MustParseAddr(d.Addr)
			t.Run(fp.ID+"/"+d.Addr, func(t *testing.T) {
				m, ok := set.MatchDNS(a)
				if !ok || m.ID != fp.ID {
					t.Fatalf("MatchDNS(%s) = %+v, %v", a, m, ok)
				}
				// Near-miss: a neighbouring address that is not in the data.
				near := a.Prev()
				for _, ok := set.MatchDNS(near); ok; _, ok = set.MatchDNS(near) {
					near = near.Prev()
				}
				if m, ok := set.MatchDNS(near); ok {
					t.Errorf("MatchDNS(%s) = %+v", near, m)
				}
			})
		}
	}
	if m, ok := set.MatchDNS(netip.MustParseAddr("::ffff:208.91.112.55")); !ok || m.ID != "fortinet" {
		t.Errorf("IPv4-mapped FortiGuard address not recognised: %+v", m)
	}
	if m, _ := set.MatchDNS(netip.MustParseAddr("0.0.0.0")); m.Confidence >= 0.9*0.9 {
		t.Errorf("0.0.0.0 is shared by many filters; vendor confidence %v too high", m.Confidence)
	}
}

func TestIssuers(t *testing.T) {
	set := Default()
	for _, fp := range set.Fingerprints() {
		for _, p := range fp.TLSIssuers {
			t.Run(fp.ID+"/"+p, func(t *testing.T) {
				m, ok := set.MatchIssuer([]string{"CN=Some Leaf", "  " + strings.ToUpper(p) + " G2 "})
				if !ok || m.Kind != KindInspection {
					t.Fatalf("MatchIssuer(%q) = %+v, %v", p, m, ok)
				}
				if m.ID != fp.ID {
					// Another vendor's shorter pattern may be contained in this one; it must at least be this vendor's.
					t.Fatalf("MatchIssuer(%q) = %s, want %s", p, m.ID, fp.ID)
				}
				if m, ok := set.MatchIssuer([]string{mutate(p)}); ok {
					t.Errorf("near-miss %q matched %+v", mutate(p), m)
				}
			})
		}
	}
	// Public CAs are not inspection CAs.
	for _, n := range []string{"DigiCert Global Root G2", "ISRG Root X1", "GlobalSign", "Amazon RSA 2048 M02", "Microsoft Azure RSA TLS Issuing CA 04", "Google Trust Services"} {
		if m, ok := set.MatchIssuer([]string{n}); ok {
			t.Errorf("public CA %q matched %+v", n, m)
		}
	}
}

// TestOrdinaryPages: pages that merely mention a vendor, or are a site's own
// error, match nothing.
func TestOrdinaryPages(t *testing.T) {
	set := Default()
	cases := []struct {
		name string
		resp *Response
	}{
		{"news article about Zscaler", &Response{Status: 200, Header: http.Header{}, Body: []byte("<html><title>Zscaler reports results</title><p>Zscaler, the cloud security company, reported revenue.</p></html>")}},
		{"nginx 403", &Response{Status: 403, Header: http.Header{"Server": {"nginx"}}, Body: []byte("<html><head><title>403 Forbidden</title></head><body><center><h1>403 Forbidden</h1></center><hr><center>nginx</center></body></html>")}},
		{"sign-in redirect", &Response{Status: 302, Header: http.Header{}, Redirects: []*url.URL{mustURL("https://accounts.google.com/ServiceLogin?continue=https://docs.google.com/&service=wise")}}},
		{"squid passes a page", &Response{Status: 200, Header: http.Header{"Via": {"1.1 proxy (squid/5.7)"}, "Server": {"nginx"}}, Body: []byte("<html><title>Docs</title>ok</html>")}},
		{"cloudflare-served page", &Response{Status: 200, Header: http.Header{"Server": {"cloudflare"}, "Cf-Ray": {"8a1b"}}, Body: []byte("<html><title>Welcome</title><p>Our product</p></html>")}},
		{"akamai-served page", &Response{Status: 200, Header: http.Header{"Server": {"AkamaiGHost"}}, Body: []byte("<html><title>Welcome</title>Reference # of our catalogue</html>")}},
		{"site 404", &Response{Status: 404, Header: http.Header{}, Body: []byte("<html><title>Page not found</title><p>This page has been removed.</p></html>")}},
		{"site 503", &Response{Status: 503, Header: http.Header{"Retry-After": {"60"}}, Body: []byte("<html><title>Down for maintenance</title></html>")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ms := set.Match(c.resp)
			if c.name == "nginx 403" {
				// A web server's own default page is recognised as the
				// site's, never as a block.
				if len(ms) != 1 || ms[0].Kind != KindNotBlock || ms[0].Reason != "server-default" {
					t.Errorf("nginx's page: %+v", ms)
				}
				return
			}
			if len(ms) > 0 {
				t.Errorf("matched %+v", ms)
			}
		})
	}
}

func TestBodyLimitAndCase(t *testing.T) {
	set := Default()
	big := strings.Repeat("a", MaxBody) + "Access to the web page you were trying to visit has been blocked in accordance with company policy"
	if ms := set.Match(&Response{Status: 200, Header: http.Header{}, Body: []byte(big)}); len(ms) > 0 {
		t.Errorf("text past %d bytes was matched: %+v", MaxBody, ms)
	}
	m, ok := set.Best(&Response{Status: 200, Header: http.Header{}, Body: []byte("ACCESS TO THE WEB PAGE YOU WERE TRYING TO VISIT HAS BEEN BLOCKED IN ACCORDANCE WITH COMPANY POLICY")})
	if !ok || m.ID != "paloalto" {
		t.Errorf("upper-case page not matched: %+v", m)
	}
}

func TestTitle(t *testing.T) {
	for in, want := range map[string]string{
		"<html><HEAD><TITLE lang=en> Web Page Blocked </TITLE>": "Web Page Blocked",
		"<title>a</title><title>b</title>":                      "a",
		"no title here":                                         "",
		"<title>unterminated":                                   "unterminated",
	} {
		if got := pageTitle([]byte(in)); got != want {
			t.Errorf("pageTitle(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAutomatonAgainstNaive(t *testing.T) {
	pats := []string{"he", "she", "his", "hers", "a", "abcab", "bca", "ü-ml"}
	folded := make([]string, len(pats))
	for i, p := range pats {
		folded[i] = foldString(p)
	}
	a16 := newAutomaton(folded)
	a32 := *a16
	a32.next16 = nil // the wide table, used when states do not fit in 16 bits
	for name, a := range map[string]*automaton{"16-bit": a16, "32-bit": &a32} {
		for _, text := range []string{"", "ushers", "ABCABCA", "xyz", "Ü-ML ü-ml", "hishe"} {
			found := make([]uint64, 1)
			a.scan([]byte(text), found)
			lt := foldString(text)
			for i, p := range folded {
				if want := strings.Contains(lt, p); has(found, i) != want {
					t.Errorf("%s: %q in %q: got %v, want %v", name, p, text, has(found, i), want)
				}
			}
		}
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
