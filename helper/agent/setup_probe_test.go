package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/detour-project/detour/helper/probe"
	"github.com/detour-project/detour/shared/method"
	"github.com/detour-project/detour/shared/protocol"
	"github.com/detour-project/detour/test/testnet"
)

// TestDiagnoseHandler runs the real probe through the agent's handler
// against the loopback test network, configured with the DETOUR_PROBE_*
// knobs as the browser tests do.
func TestDiagnoseHandler(t *testing.T) {
	n, err := testnet.Start(testnet.Options{Aliases: map[string]string{"docs.google.com": "blockpage-paloalto", "zoom.us": "site-503"}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	_, port, _ := net.SplitHostPort(n.HTTPS)
	t.Setenv(probe.EnvConnectTo, "docs.google.com:443:127.0.0.1:"+port+", zoom.us:443:127.0.0.1:"+port)
	t.Setenv(probe.EnvPublicCAFile, n.PublicCAFile)
	t.Setenv(probe.EnvCaptiveURL, n.OnlineURL)
	for _, k := range []string{probe.EnvDNS, probe.EnvCAFile, probe.EnvProxy, probe.EnvSecondDNS, probe.EnvTimeout} {
		t.Setenv(k, "")
	}
	env := &Env{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Reg: NewRegistry(nil)}
	if err := setupProbe(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	set, err := protocol.Load()
	if err != nil {
		t.Fatal(err)
	}
	ask := func(body string) (probe.Verdict, error) {
		req, err := protocol.ParseRequest([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		res, err := env.Reg.Dispatch(context.Background(), req)
		if err != nil {
			return probe.Verdict{}, err
		}
		b, _ := json.Marshal(res)
		// Every reply is a valid diagnose result under the shared schema.
		if err := set.ValidateResult("diagnose", b); err != nil {
			t.Errorf("reply does not match the schema: %v\n%s", err, b)
		}
		var v probe.Verdict
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		return v, nil
	}
	v, err := ask(`{"id":1,"type":"diagnose","url":"https://docs.google.com/document/d/SECRET/edit?usp=sharing"}`)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Blocked || v.Method != method.HTTPBlockpage || v.Vendor == nil || *v.Vendor != "Palo Alto Networks" ||
		v.Service == nil || *v.Service != "google-docs" {
		t.Errorf("verdict %+v", v)
	}
	if v.URL != "https://docs.google.com/" || strings.Contains(strings.Join(v.Evidence, " "), "SECRET") {
		t.Errorf("the path was kept: url %q, evidence %v", v.URL, v.Evidence)
	}
	v, err = ask(`{"id":2,"type":"diagnose","url":"https://zoom.us/j/123","signal":{"error":"net::ERR_HTTP_RESPONSE_CODE_FAILURE","status":503}}`)
	if err != nil || v.Blocked || v.Method != method.SiteDown {
		t.Errorf("site down: %+v %v", v, err)
	}
	// The browser's own policy block is invisible to the probe; its signal decides.
	v, err = ask(`{"id":3,"type":"diagnose","url":"https://zoom.us/","signal":{"error":"net::ERR_BLOCKED_BY_ADMINISTRATOR"}}`)
	if err != nil || !v.Blocked || v.Method != method.BrowserPolicy {
		t.Errorf("browser policy: %+v %v", v, err)
	}
	var pe *protocol.Error
	if _, err := ask(`{"id":4,"type":"diagnose","url":"https://example.org/"}`); !errors.As(err, &pe) || pe.Code != protocol.CodeNotInCatalog {
		t.Errorf("non-catalog host: %v", err)
	}
	for _, bad := range []string{`{"id":5,"type":"diagnose","url":"ftp://docs.google.com/"}`, `{"id":6,"type":"diagnose"}`, `{"id":7,"type":"diagnose","url":3}`} {
		if _, err := ask(bad); !errors.As(err, &pe) || pe.Code != protocol.CodeInvalidParams {
			t.Errorf("%s: %v", bad, err)
		}
	}
	// env.Diagnose serves the report subsystem the same way.
	if v, err := env.Diagnose(context.Background(), "https://docs.google.com/x"); err != nil || v.Method != method.HTTPBlockpage {
		t.Errorf("env.Diagnose: %+v %v", v, err)
	}
}

func TestDiagnoserCache(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	d := newDiagnoser(probe.Options{}, func(string) *string { return nil })
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	d.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	d.probe = func(ctx context.Context, raw string, o probe.Options) (probe.Verdict, error) {
		calls.Add(1)
		<-release
		if strings.Contains(raw, "fail") {
			return probe.Verdict{}, errors.New("bad")
		}
		return probe.Verdict{URL: raw, Method: method.Reachable, Evidence: []string{"e"}}, nil
	}
	// Concurrent askers share one probe.
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := d.diagnose(context.Background(), "https://a.example/"); err != nil || v.URL != "https://a.example/" {
				t.Errorf("%+v %v", v, err)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if c := calls.Load(); c != 1 {
		t.Errorf("%d probes for 5 concurrent askers", c)
	}
	// Cached within the TTL, probed again after it.
	v, _ := d.diagnose(context.Background(), "https://a.example/")
	v.Evidence[0] = "mutated"
	if v2, _ := d.diagnose(context.Background(), "https://a.example/"); v2.Evidence[0] != "e" || calls.Load() != 1 {
		t.Errorf("cache: %d calls, evidence %v", calls.Load(), v2.Evidence)
	}
	mu.Lock()
	now = now.Add(diagnoseCacheTTL + time.Second)
	mu.Unlock()
	_, _ = d.diagnose(context.Background(), "https://a.example/")
	if calls.Load() != 2 {
		t.Errorf("expired entry not probed again: %d calls", calls.Load())
	}
	// Failures are not cached.
	_, err1 := d.diagnose(context.Background(), "https://fail.example/")
	_, err2 := d.diagnose(context.Background(), "https://fail.example/")
	if err1 == nil || err2 == nil || calls.Load() != 4 {
		t.Errorf("failures: %v %v, %d calls", err1, err2, calls.Load())
	}
	// The cache stays bounded.
	for i := range diagnoseCacheSize + 50 {
		_, _ = d.diagnose(context.Background(), "https://h"+string(rune('a'+i%26))+strings.Repeat("x", i)+".example/")
	}
	if len(d.cache) > diagnoseCacheSize {
		t.Errorf("cache holds %d entries", len(d.cache))
	}
}

func TestOriginOf(t *testing.T) {
	for in, want := range map[string]string{
		"https://Docs.Google.com/document/d/1?x=2#y": "https://docs.google.com/",
		"http://example.com:8080/path":               "http://example.com:8080/",
		"HTTPS://zoom.us":                            "https://zoom.us/",
	} {
		if got, err := originOf(in); err != nil || got != want {
			t.Errorf("originOf(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "docs.google.com", "ftp://x/", "https:///path", "javascript:alert(1)"} {
		if got, err := originOf(bad); err == nil {
			t.Errorf("originOf(%q) = %q, want an error", bad, got)
		}
	}
}

func TestWithSignal(t *testing.T) {
	vendor := "Zscaler"
	cases := []struct {
		name    string
		v       probe.Verdict
		sig     *protocol.Signal
		blocked bool
		method  string
		conf    float64
	}{
		{"no signal", probe.Verdict{Method: method.Reachable, Confidence: 0.9}, nil, false, method.Reachable, 0.9},
		{"policy wins", probe.Verdict{Method: method.Reachable, Confidence: 0.9}, &protocol.Signal{Error: "net::ERR_BLOCKED_BY_ADMINISTRATOR"}, true, method.BrowserPolicy, 0.95},
		{"agreement raises", probe.Verdict{Blocked: true, Method: method.TLSReset, Confidence: 0.85}, &protocol.Signal{Error: "net::ERR_SSL_PROTOCOL_ERROR"}, true, method.TLSReset, 0.95},
		{"fills an unknown", probe.Verdict{Method: method.Unknown, Confidence: 0.2}, &protocol.Signal{Error: "net::ERR_TUNNEL_CONNECTION_FAILED"}, true, method.ProxyRefused, 0.5},
		{"firefox string", probe.Verdict{Method: method.Unknown, Confidence: 0.2}, &protocol.Signal{Error: "NS_ERROR_PROXY_FORBIDDEN"}, true, method.ProxyRefused, 0.5},
		{"never overrides site-down", probe.Verdict{Method: method.SiteDown, Confidence: 0.6}, &protocol.Signal{Error: "net::ERR_CONNECTION_RESET"}, false, method.SiteDown, 0.6},
		{"never overrides a captive portal", probe.Verdict{Method: method.CaptivePortal, Confidence: 0.85}, &protocol.Signal{Status: 403}, false, method.CaptivePortal, 0.85},
		{"ad blocker is nothing", probe.Verdict{Method: method.Unknown, Confidence: 0.2}, &protocol.Signal{Error: "net::ERR_BLOCKED_BY_CLIENT"}, false, method.Unknown, 0.2},
		{"unknown string is nothing", probe.Verdict{Method: method.Unknown, Confidence: 0.2}, &protocol.Signal{Error: "net::ERR_SOMETHING_NEW"}, false, method.Unknown, 0.2},
		{"status fills", probe.Verdict{Method: method.Unknown, Confidence: 0.2}, &protocol.Signal{Status: 451}, true, method.HTTPStatus, 0.5},
		{"redirect to a known block host decides", probe.Verdict{Method: method.Reachable, Confidence: 0.9}, &protocol.Signal{RedirectHost: "block.opendns.com"}, true, method.HTTPBlockpage, 0.8},
		{"redirect to an unknown host is nothing", probe.Verdict{Method: method.Reachable, Confidence: 0.9}, &protocol.Signal{RedirectHost: "login.microsoftonline.com"}, false, method.Reachable, 0.9},
		{"redirect names the vendor of a block", probe.Verdict{Blocked: true, Method: method.HTTPStatus, Confidence: 0.6}, &protocol.Signal{RedirectHost: "gateway.zscalertwo.net"}, true, method.HTTPStatus, 0.6},
		{"redirect never overrides site-down", probe.Verdict{Method: method.SiteDown, Confidence: 0.6}, &protocol.Signal{RedirectHost: "block.opendns.com"}, false, method.SiteDown, 0.6},
		{"vendor kept on agreement", probe.Verdict{Blocked: true, Method: method.HTTPStatus, Vendor: &vendor, Confidence: 0.6}, &protocol.Signal{Status: 403}, true, method.HTTPStatus, 0.7},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := withSignal(c.v, c.sig)
			if got.Blocked != c.blocked || got.Method != c.method || (got.Confidence-c.conf) > 1e-9 || (c.conf-got.Confidence) > 1e-9 {
				t.Errorf("got %v %s %.2f, want %v %s %.2f", got.Blocked, got.Method, got.Confidence, c.blocked, c.method, c.conf)
			}
			if got.Blocked != method.IsBlock(got.Method) {
				t.Errorf("inconsistent %+v", got)
			}
			if c.sig != nil && strings.HasPrefix(c.name, "redirect") && got.Blocked && (got.Vendor == nil || *got.Vendor == "") {
				t.Errorf("a known block host should name its vendor: %+v", got)
			}
		})
	}
}
