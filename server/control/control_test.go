package control

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// outside is the world the hub sees: one TLS server on loopback that every
// catalog host's name is dialled to.
type outside struct {
	srv   *httptest.Server
	hits  atomic.Int32
	hosts chan string
}

func newOutside(t *testing.T, status int, title string) *outside {
	o := &outside{hosts: make(chan string, 64)}
	o.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		select {
		case o.hosts <- r.Host + " " + r.URL.RequestURI() + " cookie=" + r.Header.Get("Cookie"):
		default:
		}
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		_, _ = w.Write([]byte("<html><head><title>" + title + "</title></head><body>hello</body></html>"))
	}))
	t.Cleanup(o.srv.Close)
	return o
}

func (o *outside) config() Config {
	pool := x509.NewCertPool()
	pool.AddCert(o.srv.Certificate())
	addr := o.srv.Listener.Addr().String()
	return Config{
		Roots: pool,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
}

func catalog(host string) string {
	for _, h := range []string{"docs.example.com", "api.example.com", "example.com"} {
		if host == h || strings.HasSuffix(host, "."+h) {
			return h
		}
	}
	return ""
}

func ask(t *testing.T, h http.Handler, query, from string) (int, Answer, http.Header) {
	t.Helper()
	req := httptest.NewRequest("GET", "/api/v1/control?"+query, nil)
	if from != "" {
		req.RemoteAddr = from
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var a Answer
	if rec.Code == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
			t.Fatalf("answer is not JSON: %v %s", err, rec.Body)
		}
	}
	return rec.Code, a, rec.Header()
}

func TestControlAnswersForCatalogHostsOnly(t *testing.T) {
	o := newOutside(t, 403, "Just a moment...")
	cfg := o.config()
	cfg.CatalogHost = catalog
	mux := http.NewServeMux()
	New(cfg).Routes(mux)

	code, a, _ := ask(t, mux, "host=tenant.docs.example.com", "192.0.2.1:1234")
	if code != 200 || a.Host != "docs.example.com" || a.Status != 403 || a.Title != "Just a moment..." || !a.Public || a.Length == 0 || a.FinalHost != "docs.example.com" || a.TLSRoot == "" {
		t.Fatalf("got %d %+v", code, a)
	}
	// The hub fetched the catalog host's front page, never the subdomain
	// asked about, and sent no cookie.
	if got := <-o.hosts; got != "docs.example.com / cookie=" {
		t.Errorf("the outside world saw %q", got)
	}
	cases := []struct {
		query string
		code  int
	}{
		{"host=intranet.corp.example", 404},
		{"host=127.0.0.1", 400},
		{"host=xn--80ak6aa92e.xn--p1ai", 404}, // an IDN is a host name, just not a catalog one
		{"host=docs.example.com:8443", 400},
		{"host=docs.example.com&path=/secret", 400},
		{"host=docs.example.com&host=example.com", 400},
		{"", 400},
		{"host=" + strings.Repeat("a", 300) + ".com", 400},
	}
	for _, c := range cases {
		if code, _, _ := ask(t, mux, c.query, "192.0.2.1:1234"); code != c.code {
			t.Errorf("%q: %d, want %d", c.query, code, c.code)
		}
	}
}

func TestControlCachesAndRateLimits(t *testing.T) {
	o := newOutside(t, 200, "Docs")
	now := time.Unix(1_700_000_000, 0)
	cfg := o.config()
	cfg.CatalogHost = catalog
	cfg.PerClient = 2
	cfg.Total = 3
	cfg.Now = func() time.Time { return now }
	mux := http.NewServeMux()
	New(cfg).Routes(mux)

	for i := 0; i < 5; i++ {
		if code, _, _ := ask(t, mux, "host=docs.example.com", "192.0.2.1:1"); code != 200 {
			t.Fatalf("ask %d: %d", i, code)
		}
	}
	if n := o.hits.Load(); n != 1 {
		t.Errorf("a cached answer fetched again: %d fetches", n)
	}
	// One client: its second new host is its last this minute.
	if code, _, _ := ask(t, mux, "host=example.com", "192.0.2.1:1"); code != 200 {
		t.Fatalf("second host: %d", code)
	}
	if code, _, hdr := ask(t, mux, "host=api.example.com", "192.0.2.1:1"); code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Errorf("over one client's limit: %d %v", code, hdr)
	}
	// A cached answer is still given.
	if code, _, _ := ask(t, mux, "host=example.com", "192.0.2.1:1"); code != 200 {
		t.Errorf("cached answer refused: %d", code)
	}
	// The whole hub: a third fetch from another client is the last.
	if code, _, _ := ask(t, mux, "host=api.example.com", "192.0.2.2:1"); code != 200 {
		t.Errorf("another client: %d", code)
	}
	now = now.Add(2 * time.Minute) // caches expire, and a new minute begins
	if code, _, _ := ask(t, mux, "host=docs.example.com", "192.0.2.1:1"); code != 200 {
		t.Errorf("a new minute: %d", code)
	}
	if n := o.hits.Load(); n != 4 {
		t.Errorf("%d fetches, want 4 (three hosts, then one expired answer again)", n)
	}
}

func TestControlTotalLimit(t *testing.T) {
	o := newOutside(t, 200, "Docs")
	now := time.Unix(1_700_000_000, 0)
	cfg := o.config()
	cfg.CatalogHost = catalog
	cfg.Total = 2
	cfg.Now = func() time.Time { return now }
	mux := http.NewServeMux()
	New(cfg).Routes(mux)
	ask(t, mux, "host=docs.example.com", "192.0.2.1:1")
	ask(t, mux, "host=example.com", "192.0.2.2:1")
	if code, _, _ := ask(t, mux, "host=api.example.com", "192.0.2.3:1"); code != http.StatusTooManyRequests {
		t.Errorf("over the hub's total: %d", code)
	}
}

// TestControlRefusesPrivateAddresses: with the default dialer the hub never
// connects to loopback or private addresses, whatever a name resolves to.
func TestControlRefusesPrivateAddresses(t *testing.T) {
	o := newOutside(t, 200, "x")
	addr := o.srv.Listener.Addr().String()
	cfg := Config{CatalogHost: catalog, Timeout: 3 * time.Second}
	s := New(cfg)
	// Send every name to the loopback server through the real guard.
	base := s.client.Transport.(*http.Transport)
	guarded := (&net.Dialer{Control: publicOnly}).DialContext
	base.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) { return guarded(ctx, network, addr) }
	mux := http.NewServeMux()
	s.Routes(mux)
	code, a, _ := ask(t, mux, "host=docs.example.com", "192.0.2.1:1")
	if code != 200 || a.Status != 0 || !a.Resolved || !strings.Contains(a.Error, "not public") || o.hits.Load() != 0 {
		t.Errorf("got %d %+v, %d hits", code, a, o.hits.Load())
	}
	for _, bad := range []string{"127.0.0.1:443", "10.1.2.3:443", "169.254.169.254:80", "[::1]:443", "100.64.0.1:443", "192.168.0.1:443"} {
		if err := publicOnly("tcp", bad, nil); err == nil {
			t.Errorf("%s allowed", bad)
		}
	}
	if err := publicOnly("tcp", "93.184.215.14:443", nil); err != nil {
		t.Errorf("a public address refused: %v", err)
	}
}
