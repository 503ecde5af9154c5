// Package control is a hub's control measurement: GET /api/v1/control?host=H
// fetches https://H/ from where the hub sits (outside its members'
// networks, for a sector hub) and answers what it saw — status, final host,
// page title, body length and the TLS chain's root — so a helper whose own
// verdict is ambiguous can tell "the site refuses everyone" from "this
// network interferes", as OONI's web_connectivity does with its control.
//
// It answers for catalog hosts only (the catalog host a name belongs to,
// never the subdomain asked about, which may name a tenant), caches each
// answer for a minute, and rate-limits both each client address and the
// whole hub, so it cannot be used to scan anything or to load a site. The
// request carries no path, identifier or credential, and nothing about it
// is stored. A hub offers it only when `serve --control` says so.
package control

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Answer is what the hub saw when it fetched https://Host/.
type Answer struct {
	Host      string `json:"host"`       // the catalog host fetched
	Status    int    `json:"status"`     // final status after redirects; 0 on error
	FinalHost string `json:"final_host"` // host of the final URL
	Title     string `json:"title"`      // the page's title, at most 200 characters
	Length    int    `json:"length"`     // body bytes read (at most MaxBody)
	TLSRoot   string `json:"tls_root"`   // common name of the verified chain's root
	Public    bool   `json:"public"`     // the chain verified against the hub's roots
	// Resolved is false when the hub's resolver could not find the name
	// (or did not answer): then nothing says the name exists.
	Resolved  bool   `json:"resolved"`
	Error     string `json:"error,omitempty"`
	CheckedAt string `json:"checked_at"` // RFC 3339, when the hub fetched it
}

// MaxBody is how much of a page the hub reads.
const MaxBody = 256 << 10

// Config sets up the service. Zero values are the defaults.
type Config struct {
	// CatalogHost maps a host to the catalog host it belongs to, "" when it
	// is none (then the request is refused).
	CatalogHost func(host string) string
	// Dial connects for the fetch; nil is a dialer that refuses every
	// address that is not public unicast (no loopback, private, link-local
	// or metadata address: the catalog must not turn the hub into a way in).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Roots verifies the chain; nil is the system's roots.
	Roots *x509.CertPool
	// Timeout bounds one fetch (default 8 s).
	Timeout time.Duration
	// CacheFor is how long an answer is reused (default one minute).
	CacheFor time.Duration
	// PerClient and Total are requests a minute from one client address and
	// in all (defaults 20 and 300); a cached answer costs nothing.
	PerClient, Total int
	// Now is the clock (tests).
	Now func() time.Time
}

// Service answers control requests.
type Service struct {
	cfg    Config
	client *http.Client

	mu      sync.Mutex
	cache   map[string]cached
	clients map[string]*window
	total   window
	flights map[string]*flight
}

type cached struct {
	a   Answer
	exp time.Time
}

type flight struct {
	done chan struct{}
	a    Answer
}

// window counts requests in the current minute.
type window struct {
	start time.Time
	n     int
}

func (w *window) allow(now time.Time, limit int) bool {
	if now.Sub(w.start) >= time.Minute {
		w.start, w.n = now, 0
	}
	if w.n >= limit {
		return false
	}
	w.n++
	return true
}

// New builds the service.
func New(cfg Config) *Service {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 8 * time.Second
	}
	if cfg.CacheFor <= 0 {
		cfg.CacheFor = time.Minute
	}
	if cfg.PerClient <= 0 {
		cfg.PerClient = 20
	}
	if cfg.Total <= 0 {
		cfg.Total = 300
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Dial == nil {
		cfg.Dial = (&net.Dialer{Timeout: 5 * time.Second, Control: publicOnly}).DialContext
	}
	s := &Service{cfg: cfg, cache: map[string]cached{}, clients: map[string]*window{}, flights: map[string]*flight{}}
	s.client = &http.Client{
		Timeout: cfg.Timeout,
		Transport: &http.Transport{
			DialContext:         cfg.Dial,
			TLSClientConfig:     &tls.Config{RootCAs: cfg.Roots, MinVersion: tls.VersionTLS12},
			DisableKeepAlives:   true,
			TLSHandshakeTimeout: 5 * time.Second,
			Proxy:               nil, // the hub's own view, not a proxy's
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("more than 5 redirects")
			}
			if req.URL.Scheme != "https" {
				return fmt.Errorf("redirected to %s, not https", req.URL.Scheme)
			}
			return nil
		},
	}
	return s
}

// Routes adds GET /api/v1/control.
func (s *Service) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/control", s.handle)
}

// hostRE is a DNS name with a top-level label that is letters or an IDN
// (xn--), never an address.
var hostRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+([a-z]{2,63}|xn--[a-z0-9-]{1,59})$`)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func refuse(w http.ResponseWriter, status int, reason string) {
	writeJSON(w, status, map[string]string{"error": reason})
}

func (s *Service) handle(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if len(q) != 1 || len(q["host"]) != 1 {
		refuse(w, http.StatusBadRequest, "want exactly one parameter, host")
		return
	}
	host := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(q.Get("host"))), ".")
	if len(host) > 253 || !hostRE.MatchString(host) {
		refuse(w, http.StatusBadRequest, "host is not a host name")
		return
	}
	target := ""
	if s.cfg.CatalogHost != nil {
		target = s.cfg.CatalogHost(host)
	}
	if target == "" {
		refuse(w, http.StatusNotFound, "not a catalog host")
		return
	}
	now := s.cfg.Now()
	s.mu.Lock()
	if c, ok := s.cache[target]; ok && now.Before(c.exp) {
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, c.a)
		return
	}
	client := clientKey(r)
	cw := s.clients[client]
	if cw == nil {
		cw = &window{start: now}
		s.clients[client] = cw
	}
	if !cw.allow(now, s.cfg.PerClient) || !s.total.allow(now, s.cfg.Total) {
		s.mu.Unlock()
		w.Header().Set("Retry-After", "60")
		refuse(w, http.StatusTooManyRequests, "rate limited")
		return
	}
	s.sweep(now)
	// One fetch per host at a time: others wait for its answer.
	f, running := s.flights[target]
	if !running {
		f = &flight{done: make(chan struct{})}
		s.flights[target] = f
	}
	s.mu.Unlock()
	if !running {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.Timeout)
		f.a = s.fetch(ctx, target)
		cancel()
		s.mu.Lock()
		s.cache[target] = cached{a: f.a, exp: s.cfg.Now().Add(s.cfg.CacheFor)}
		delete(s.flights, target)
		s.mu.Unlock()
		close(f.done)
	}
	select {
	case <-f.done:
		writeJSON(w, http.StatusOK, f.a)
	case <-r.Context().Done():
	}
}

// sweep drops expired cache entries and idle client windows (mu held).
func (s *Service) sweep(now time.Time) {
	if len(s.cache) < 1024 && len(s.clients) < 4096 {
		return
	}
	for k, c := range s.cache {
		if !now.Before(c.exp) {
			delete(s.cache, k)
		}
	}
	for k, w := range s.clients {
		if now.Sub(w.start) >= time.Minute {
			delete(s.clients, k)
		}
	}
}

func clientKey(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}

var titleRE = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)

// fetch gets https://host/ as a browser would, without cookies or
// credentials, and says what came back.
func (s *Service) fetch(ctx context.Context, host string) Answer {
	a := Answer{Host: host, CheckedAt: s.cfg.Now().UTC().Format(time.RFC3339)}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/", nil)
	if err != nil {
		a.Error = err.Error()
		return a
	}
	req.Header.Set("User-Agent", "Mozilla/5.0 (compatible; Detour-control/1)")
	req.Header.Set("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")
	resp, err := s.client.Do(req)
	if err != nil {
		var de *net.DNSError
		a.Resolved = !errors.As(err, &de)
		a.Error = shortError(err)
		var uerr x509.UnknownAuthorityError
		if errors.As(err, &uerr) {
			a.Error = "the certificate is not from a public CA"
		}
		return a
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	a.Resolved = true
	a.Status = resp.StatusCode
	a.FinalHost = resp.Request.URL.Hostname()
	a.Length = len(body)
	if m := titleRE.FindSubmatch(body[:min(len(body), 16<<10)]); m != nil {
		t := strings.Join(strings.Fields(html.UnescapeString(string(m[1]))), " ")
		if r := []rune(t); len(r) > 200 {
			t = string(r[:200])
		}
		a.Title = t
	}
	if resp.TLS != nil && len(resp.TLS.VerifiedChains) > 0 {
		ch := resp.TLS.VerifiedChains[0]
		root := ch[len(ch)-1]
		a.TLSRoot = root.Subject.CommonName
		if a.TLSRoot == "" && len(root.Subject.Organization) > 0 {
			a.TLSRoot = root.Subject.Organization[0]
		}
		a.Public = true
	}
	return a
}

func shortError(err error) string {
	var ne *net.OpError
	if errors.As(err, &ne) && ne.Err != nil {
		err = ne.Err
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		if de.IsNotFound {
			return "the name does not exist"
		}
		return "DNS: " + de.Err
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// errNotPublic refuses a connection to an address that is not public.
var errNotPublic = errors.New("control: refusing an address that is not public unicast")

// publicOnly is the default dialer's check, before connect(2).
func publicOnly(network, address string, _ syscall.RawConn) error {
	h, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	a, err := netip.ParseAddr(h)
	if err != nil {
		return err
	}
	a = a.Unmap()
	if !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() ||
		netip.MustParsePrefix("100.64.0.0/10").Contains(a) || netip.MustParsePrefix("169.254.0.0/16").Contains(a) {
		return errNotPublic
	}
	return nil
}
