// Package control tests the control measurement end to end on loopback:
// the real probe on the test network asks a hub running server/control,
// whose "outside world" is a TLS server on loopback that answers as the
// real site would for everyone.
package control

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/detour-project/detour/helper/probe"
	"github.com/detour-project/detour/server/control"
	"github.com/detour-project/detour/shared/method"
	"github.com/detour-project/detour/test/testnet"
)

func TestMain(m *testing.M) {
	os.Setenv(probe.EnvLoopbackOnly, "1")
	os.Exit(m.Run())
}

// world is the site as everyone outside the filtered network sees it.
type world struct {
	srv    *httptest.Server
	status atomic.Int32
	hits   atomic.Int32
	down   atomic.Bool
}

// hub is a hub offering (or not) the control measurement.
type hub struct {
	srv     *httptest.Server
	asked   atomic.Int32
	queries chan string
}

func newWorld(t *testing.T) *world {
	w := &world{}
	w.status.Store(200)
	w.srv = httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.hits.Add(1)
		rw.WriteHeader(int(w.status.Load()))
		_, _ = rw.Write([]byte("<html><head><title>Docs</title></head><body>the site</body></html>"))
	}))
	t.Cleanup(w.srv.Close)
	return w
}

func newHub(t *testing.T, w *world, offer bool) *hub {
	h := &hub{queries: make(chan string, 32)}
	pool := x509.NewCertPool()
	pool.AddCert(w.srv.Certificate())
	addr := w.srv.Listener.Addr().String()
	svc := control.New(control.Config{
		CatalogHost: func(host string) string {
			if host == "docs.example.com" {
				return host
			}
			return ""
		},
		Roots: pool,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			if w.down.Load() {
				return nil, &net.DNSError{Err: "no such host", Name: "docs.example.com", IsNotFound: true}
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	})
	mux := http.NewServeMux()
	svc.Routes(mux)
	mux.HandleFunc("GET /api/v1/capabilities", func(rw http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(rw).Encode(map[string]bool{"control": offer})
	})
	h.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/v1/control") {
			h.asked.Add(1)
			h.queries <- r.URL.RawQuery + " auth=" + r.Header.Get("Authorization") + " cookie=" + r.Header.Get("Cookie")
		}
		mux.ServeHTTP(rw, r)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func start(t *testing.T) *testnet.Network {
	n, err := testnet.Start(testnet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

func probeWith(t *testing.T, n *testnet.Network, scenario string, ctl *probe.Control, second bool) probe.Verdict {
	t.Helper()
	s, ok := n.Scenario(scenario)
	if !ok {
		t.Fatalf("no scenario %s", scenario)
	}
	id := "docs"
	o := probe.Options{DNS: s.DNS, CaptiveURL: s.CaptiveURL, PublicCAFile: n.PublicCAFile, Timeout: 6 * time.Second,
		Catalog: func(string) *string { return &id }, Control: ctl}
	if second {
		o.SecondDNS = []string{n.PublicDNS}
	}
	v, err := probe.Probe(context.Background(), s.URL, o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func control4(h *hub) *probe.Control {
	return &probe.Control{Hub: func() string { return h.srv.URL }, HostFor: func(string) string { return "docs.example.com" }}
}

func codes(v probe.Verdict) string {
	var c []string
	for _, f := range v.Facts {
		c = append(c, f.Code)
	}
	return strings.Join(c, " ")
}

func TestControlTellsTheSiteFromTheNetwork(t *testing.T) {
	n := start(t)
	w := newWorld(t)
	h := newHub(t, w, true)
	ctl := control4(h)

	// Without a hub the bare 403 over plain HTTP is only possibly blocked.
	v := probeWith(t, n, "status-403-http", nil, true)
	if v.Blocked || !v.Possible || v.Method != method.HTTPStatus {
		t.Fatalf("without control: %+v", v)
	}

	// The site refuses everyone: the hub sees the same 403.
	w.status.Store(403)
	v = probeWith(t, n, "status-403-http", ctl, true)
	if v.Blocked || v.Possible || v.Method != method.Reachable || !strings.Contains(codes(v), "control.same") {
		t.Errorf("site refuses everyone: %+v\n%s", v, strings.Join(v.Evidence, "\n"))
	}
	// Only the catalog host went to the hub: no path, no subdomain, no credential.
	if q := <-h.queries; q != "host=docs.example.com auth= cookie=" {
		t.Errorf("the hub was asked %q", q)
	}
	// Asked again within the minute: the helper's cache answers.
	probeWith(t, n, "status-403-http", ctl, true)
	if got := h.asked.Load(); got != 1 {
		t.Errorf("hub asked %d times for one host within a minute", got)
	}

	// This network interferes: outside, the site answers 200.
	w2 := newWorld(t)
	h2 := newHub(t, w2, true)
	v = probeWith(t, n, "status-403-http", control4(h2), true)
	if !v.Blocked || v.Possible || v.Method != method.HTTPStatus || !strings.Contains(codes(v), "control.differs") {
		t.Errorf("network interferes: %+v\n%s", v, strings.Join(v.Evidence, "\n"))
	}

	// A reachable site is never sent to the hub.
	h3 := newHub(t, newWorld(t), true)
	if v = probeWith(t, n, "reachable-http", control4(h3), true); v.Method != method.Reachable || h3.asked.Load() != 0 {
		t.Errorf("unambiguous verdict asked the hub: %+v, %d asks", v, h3.asked.Load())
	}
}

func TestControlOnlyWhenOffered(t *testing.T) {
	n := start(t)
	w := newWorld(t)
	w.status.Store(403)
	h := newHub(t, w, false)
	v := probeWith(t, n, "status-403-http", control4(h), true)
	if !v.Possible || h.asked.Load() != 0 || w.hits.Load() != 0 {
		t.Errorf("a hub that does not offer control was asked: %+v, %d asks", v, h.asked.Load())
	}
}

func TestControlForHiddenNames(t *testing.T) {
	n := start(t)
	w := newWorld(t)
	h := newHub(t, w, true)
	// NXDOMAIN for a catalog host, and no second resolver to ask: the hub
	// reaching the site confirms the name exists.
	v := probeWith(t, n, "dns-nxdomain", control4(h), false)
	if !v.Blocked || v.Method != method.DNSNXDomain || v.Confidence < 0.9 || !strings.Contains(codes(v), "control.exists") {
		t.Errorf("hidden name: %+v\n%s", v, strings.Join(v.Evidence, "\n"))
	}
	// The hub cannot find the name either: it exists nowhere, not blocked.
	w2 := newWorld(t)
	w2.down.Store(true)
	v = probeWith(t, n, "dns-nxdomain", control4(newHub(t, w2, true)), false)
	if v.Blocked || v.Method != method.SiteDown || !strings.Contains(codes(v), "control.nowhere") {
		t.Errorf("down everywhere: %+v\n%s", v, strings.Join(v.Evidence, "\n"))
	}
}
