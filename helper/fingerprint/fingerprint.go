// Package fingerprint recognises web filters, proxies, CDN challenges and
// captive portals from what they answer: an HTTP response (status, headers,
// redirect chain, page title and body), a DNS answer, or the names in a TLS
// certificate chain. The facts live in shared/fingerprints; this package
// compiles them once and matches a response in one pass over its body.
package fingerprint

import (
	"bytes"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/detour-project/detour/shared/fingerprints"
)

// MaxBody is how much of a body is examined; the probe reads no more.
const MaxBody = 256 << 10

// Kinds of match. Block and NotBlock come from the data; Inspection is a
// TLS-inspection CA recognised by name.
const (
	KindBlock      = fingerprints.KindBlock
	KindNotBlock   = fingerprints.KindNotBlock
	KindInspection = "inspection"
)

// Response is what the matcher looks at. Redirects are the URLs the chain
// was sent to (each Location, resolved), not the URL first asked for.
type Response struct {
	Status    int
	Header    http.Header
	Redirects []*url.URL
	Body      []byte // only the first MaxBody bytes are examined
}

// Match is one fingerprint that matched.
type Match struct {
	ID         string   // fingerprint id
	Vendor     string   // product name to report
	Kind       string   // KindBlock, KindNotBlock or KindInspection
	Reason     string   // for KindNotBlock: why it is not a block
	Confidence float64  // fingerprint confidence × rule weight
	Rule       int      // index of the rule that matched (-1 for DNS and CA matches)
	Evidence   []string // what was seen, in plain words
}

// Set is a compiled fingerprint set, safe for concurrent use.
type Set struct {
	fps      []fingerprints.Fingerprint
	rules    []rule
	body     *automaton
	patterns []string // body patterns, folded, by id
	headers  []string // canonical header names any rule looks at
	dns      map[netip.Addr]dnsEntry
	issuers  []issuer
}

type rule struct {
	fp, index int
	weight    float64
	status    []int
	headers   []fingerprints.Header // Contains folded
	redirect  *fingerprints.Redirect
	title     []string // folded
	body      []int    // pattern ids
}

type dnsEntry struct {
	fp   int
	note string
}

type issuer struct {
	fp      int
	pattern string // folded
}

var (
	defaultOnce sync.Once
	defaultSet  *Set
	defaultErr  error
)

// Default is the embedded fingerprint set, compiled on first use.
func Default() *Set {
	defaultOnce.Do(func() {
		f, err := fingerprints.Load()
		if err == nil {
			defaultSet, err = Compile(f)
		}
		defaultErr = err
	})
	if defaultErr != nil {
		// The embedded data is checked by tests in both packages.
		panic(fmt.Sprintf("fingerprint: embedded data: %v", defaultErr))
	}
	return defaultSet
}

// Compile builds a matcher from fingerprint data.
func Compile(f *fingerprints.File) (*Set, error) {
	s := &Set{fps: f.Fingerprints, dns: map[netip.Addr]dnsEntry{}}
	patternID := map[string]int{}
	headerSeen := map[string]bool{}
	for i, fp := range f.Fingerprints {
		for j, r := range fp.Rules {
			cr := rule{fp: i, index: j, weight: r.Weight, status: r.Status, redirect: r.Redirect}
			if cr.weight == 0 {
				cr.weight = 1
			}
			for _, h := range r.Headers {
				name := http.CanonicalHeaderKey(h.Name)
				cr.headers = append(cr.headers, fingerprints.Header{Name: name, Contains: foldString(h.Contains)})
				if !headerSeen[name] {
					headerSeen[name] = true
					s.headers = append(s.headers, name)
				}
			}
			for _, t := range r.Title {
				cr.title = append(cr.title, foldString(t))
			}
			for _, b := range r.Body {
				p := foldString(b)
				id, ok := patternID[p]
				if !ok {
					id = len(s.patterns)
					patternID[p] = id
					s.patterns = append(s.patterns, p)
				}
				cr.body = append(cr.body, id)
			}
			if r.Redirect != nil {
				rd := *r.Redirect
				rd.Path = foldString(rd.Path)
				rd.Query = nil
				for _, q := range r.Redirect.Query {
					rd.Query = append(rd.Query, foldString(q))
				}
				cr.redirect = &rd
			}
			if len(cr.headers) == 0 && cr.redirect == nil && len(cr.title) == 0 && len(cr.body) == 0 && len(cr.status) == 0 {
				return nil, fmt.Errorf("fingerprint %s rule %d: no conditions", fp.ID, j)
			}
			s.rules = append(s.rules, cr)
		}
		for _, d := range fp.DNS {
			a, err := netip.ParseAddr(d.Addr)
			if err != nil {
				return nil, fmt.Errorf("fingerprint %s: dns address: %w", fp.ID, err)
			}
			s.dns[a.Unmap()] = dnsEntry{fp: i, note: d.Note}
			s.dns[a] = dnsEntry{fp: i, note: d.Note}
		}
		for _, p := range fp.TLSIssuers {
			s.issuers = append(s.issuers, issuer{fp: i, pattern: foldString(p)})
		}
	}
	s.body = newAutomaton(s.patterns)
	return s, nil
}

// Len is the number of fingerprints in the set.
func (s *Set) Len() int { return len(s.fps) }

// Fingerprints are the data the set was compiled from.
func (s *Set) Fingerprints() []fingerprints.Fingerprint { return s.fps }

// Match returns every fingerprint that matches r (at most one match per
// fingerprint: its strongest rule), strongest first.
func (s *Set) Match(r *Response) []Match {
	body := r.Body
	if len(body) > MaxBody {
		body = body[:MaxBody]
	}
	found := make([]uint64, (len(s.patterns)+63)/64)
	s.body.scan(body, found)
	title := foldString(pageTitle(body))
	headers := make(map[string]string, len(s.headers))
	for _, h := range s.headers {
		if vs := r.Header.Values(h); len(vs) > 0 {
			headers[h] = foldString(strings.Join(vs, ", "))
		}
	}
	best := map[int]Match{}
	for i := range s.rules {
		cr := &s.rules[i]
		ev, ok := s.eval(cr, r, found, title, headers)
		if !ok {
			continue
		}
		fp := s.fps[cr.fp]
		m := Match{ID: fp.ID, Vendor: fp.Vendor, Kind: fp.Kind, Reason: fp.Reason,
			Confidence: fp.Confidence * cr.weight, Rule: cr.index, Evidence: ev}
		if old, seen := best[cr.fp]; !seen || m.Confidence > old.Confidence {
			best[cr.fp] = m
		}
	}
	out := make([]Match, 0, len(best))
	for _, m := range best {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Confidence != out[j].Confidence {
			return out[i].Confidence > out[j].Confidence
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Best is the strongest match, if any.
func (s *Set) Best(r *Response) (Match, bool) {
	ms := s.Match(r)
	if len(ms) == 0 {
		return Match{}, false
	}
	return ms[0], true
}

func (s *Set) eval(cr *rule, r *Response, found []uint64, title string, headers map[string]string) ([]string, bool) {
	for _, id := range cr.body {
		if !has(found, id) {
			return nil, false
		}
	}
	var ev []string
	if len(cr.status) > 0 {
		ok := false
		for _, st := range cr.status {
			ok = ok || st == r.Status
		}
		if !ok {
			return nil, false
		}
		ev = append(ev, "status "+strconv.Itoa(r.Status))
	}
	for _, h := range cr.headers {
		v, present := headers[h.Name]
		if !present || !strings.Contains(v, h.Contains) {
			return nil, false
		}
		if h.Contains == "" {
			ev = append(ev, fmt.Sprintf("a %s header", h.Name))
		} else {
			ev = append(ev, fmt.Sprintf("%s header contains %q", h.Name, h.Contains))
		}
	}
	for _, t := range cr.title {
		if !strings.Contains(title, t) {
			return nil, false
		}
		ev = append(ev, fmt.Sprintf("page title contains %q", t))
	}
	if cr.redirect != nil {
		u := matchRedirect(cr.redirect, r.Redirects)
		if u == nil {
			return nil, false
		}
		ev = append(ev, "redirected to "+u.Redacted())
	}
	for _, id := range cr.body {
		ev = append(ev, fmt.Sprintf("page text contains %q", s.patterns[id]))
	}
	return ev, true
}

func matchRedirect(rd *fingerprints.Redirect, urls []*url.URL) *url.URL {
	for _, u := range urls {
		if u != nil && redirectMatches(rd, u) {
			return u
		}
	}
	return nil
}

func redirectMatches(rd *fingerprints.Redirect, u *url.URL) bool {
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if len(rd.Hosts) > 0 {
		ok := false
		for _, h := range rd.Hosts {
			ok = ok || hostUnder(host, h)
		}
		if !ok {
			return false
		}
	}
	if rd.Port != 0 && u.Port() != strconv.Itoa(rd.Port) {
		return false
	}
	if rd.Path != "" && !strings.Contains(foldString(u.EscapedPath()), rd.Path) && !strings.Contains(foldString(u.Path), rd.Path) {
		return false
	}
	if len(rd.Query) > 0 {
		q := map[string]bool{}
		for k := range u.Query() {
			q[foldString(k)] = true
		}
		for _, k := range rd.Query {
			if !q[k] {
				return false
			}
		}
	}
	return true
}

// hostUnder reports whether host is domain or a subdomain of it.
func hostUnder(host, domain string) bool {
	return host == domain || strings.HasSuffix(host, "."+domain)
}

// MatchRedirect reports the block fingerprint whose redirect rule the URL
// matches on its own, so a prober can stop before following it to a
// filter's block server.
func (s *Set) MatchRedirect(u *url.URL) (Match, bool) {
	var best Match
	found := false
	for i := range s.rules {
		cr := &s.rules[i]
		if cr.redirect == nil || len(cr.status) > 0 || len(cr.headers) > 0 || len(cr.title) > 0 || len(cr.body) > 0 {
			continue
		}
		if !redirectMatches(cr.redirect, u) {
			continue
		}
		fp := s.fps[cr.fp]
		m := Match{ID: fp.ID, Vendor: fp.Vendor, Kind: fp.Kind, Reason: fp.Reason,
			Confidence: fp.Confidence * cr.weight, Rule: cr.index, Evidence: []string{"redirected to " + u.Redacted()}}
		if !found || m.Confidence > best.Confidence {
			best, found = m, true
		}
	}
	return best, found
}

// MatchDNS reports whether addr is a filter's known block address.
func (s *Set) MatchDNS(addr netip.Addr) (Match, bool) {
	e, ok := s.dns[addr]
	if !ok {
		e, ok = s.dns[addr.Unmap()]
	}
	if !ok {
		return Match{}, false
	}
	fp := s.fps[e.fp]
	conf := fp.Confidence
	if addr.Unmap().IsUnspecified() {
		// Many DNS filters answer 0.0.0.0 or ::; the vendor is only a guess.
		conf *= 0.5
	}
	return Match{ID: fp.ID, Vendor: fp.Vendor, Kind: fp.Kind, Confidence: conf, Rule: -1,
		Evidence: []string{fmt.Sprintf("the resolver answered %s, a known %s block address (%s)", addr, fp.Vendor, e.note)}}, true
}

// MatchIssuer looks for a TLS-inspection CA among certificate names (the
// issuer and subject CN, O and OU of each certificate in the chain). Call it
// only for a chain that does not verify against public roots: a public CA's
// name is never an inspection CA's.
func (s *Set) MatchIssuer(names []string) (Match, bool) {
	for _, n := range names {
		fn := foldString(n)
		for _, is := range s.issuers {
			if strings.Contains(fn, is.pattern) {
				fp := s.fps[is.fp]
				return Match{ID: fp.ID, Vendor: fp.Vendor, Kind: KindInspection, Confidence: fp.Confidence, Rule: -1,
					Evidence: []string{fmt.Sprintf("the certificate chain names %q, a %s TLS-inspection CA", n, fp.Vendor)}}, true
			}
		}
	}
	return Match{}, false
}

// pageTitle extracts the text of the first <title> element, ASCII-case-
// insensitively, trimmed; "" when there is none.
func pageTitle(body []byte) string {
	i := indexFold(body, []byte("<title"))
	if i < 0 {
		return ""
	}
	rest := body[i+len("<title"):]
	gt := bytes.IndexByte(rest, '>')
	if gt < 0 {
		return ""
	}
	rest = rest[gt+1:]
	end := indexFold(rest, []byte("</title"))
	if end < 0 {
		end = min(len(rest), 512)
	}
	return strings.TrimSpace(string(rest[:min(end, 512)]))
}

// indexFold finds lower-case needle in haystack, folding ASCII case.
func indexFold(haystack, needle []byte) int {
	n := len(needle)
	for i := 0; i+n <= len(haystack); i++ {
		if lowerTable[haystack[i]] != needle[0] {
			continue
		}
		j := 1
		for j < n && lowerTable[haystack[i+j]] == needle[j] {
			j++
		}
		if j == n {
			return i
		}
	}
	return -1
}
