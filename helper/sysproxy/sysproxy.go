// Package sysproxy picks the proxy for a URL the way the person's browser
// does, so that a diagnosis sees the network as the browser sees it and the
// hub client gets out where the browser gets out. The proxy environment
// variables (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) win where they are set; then
// the system's settings: on Windows the WinHTTP/Internet Options proxy and
// PAC (auto-detect or an auto-config URL, evaluated by WinHTTP itself); on
// Linux and macOS the environment only, for now.
package sysproxy

import (
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpproxy"
)

// system answers for one URL from the platform's settings: nil is direct.
// It is replaced in tests.
var system = platformProxy

// envSet says whether any proxy environment variable is set, in which case
// the environment decides alone.
func envSet() bool {
	for _, k := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"} {
		if os.Getenv(k) != "" {
			return true
		}
	}
	return false
}

// cacheFor bounds how long an answer for a host is reused: evaluating a PAC
// file (or discovering one with WPAD) can take seconds.
const cacheFor = 5 * time.Minute

type cached struct {
	u   *url.URL
	at  time.Time
	err error
}

var (
	mu    sync.Mutex
	cache = map[string]cached{}
)

// ForURL returns the proxy for u, or nil for a direct connection.
func ForURL(u *url.URL) (*url.URL, error) {
	if envSet() {
		return httpproxy.FromEnvironment().ProxyFunc()(u)
	}
	key := u.Scheme + "://" + u.Host
	mu.Lock()
	c, ok := cache[key]
	mu.Unlock()
	if ok && time.Since(c.at) < cacheFor {
		return c.u, c.err
	}
	p, err := system(u)
	mu.Lock()
	cache[key] = cached{u: p, at: time.Now(), err: err}
	mu.Unlock()
	return p, err
}

// HTTP is ForURL for http.Transport.Proxy.
func HTTP(r *http.Request) (*url.URL, error) { return ForURL(r.URL) }

// ParseList picks the proxy for scheme from a WinHTTP/Internet Options
// proxy string: "host:port" for every scheme, or "http=h:p;https=h:p" (";"
// or whitespace between entries), or a PAC answer ("PROXY h:p; DIRECT").
// nil means direct.
func ParseList(s, scheme string) *url.URL {
	var any *url.URL
	for _, e := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ' ' || r == '\t' }) {
		e = strings.TrimSpace(e)
		switch strings.ToUpper(e) {
		case "DIRECT":
			if any == nil {
				return nil
			}
			continue
		case "PROXY", "HTTP", "HTTPS":
			continue // a PAC keyword; the host follows as the next entry
		}
		target, hostport := "", e
		if k, v, ok := strings.Cut(e, "="); ok {
			target, hostport = strings.ToLower(k), v
		}
		if hostport == "" {
			continue
		}
		pu := proxyURL(hostport)
		if pu == nil {
			continue
		}
		if target == scheme {
			return pu
		}
		if target == "" && any == nil {
			any = pu
		}
	}
	return any
}

func proxyURL(hostport string) *url.URL {
	if !strings.Contains(hostport, "://") {
		hostport = "http://" + hostport
	}
	u, err := url.Parse(hostport)
	if err != nil || u.Host == "" {
		return nil
	}
	return u
}

// Bypassed says whether host is in a proxy bypass list (ProxyOverride):
// entries separated by ";", "*" wildcards, and "<local>" for names without
// a dot and loopback addresses.
func Bypassed(list, host string) bool {
	h := strings.ToLower(host)
	if hh, _, err := net.SplitHostPort(h); err == nil {
		h = hh
	}
	for _, e := range strings.Split(strings.ToLower(list), ";") {
		e = strings.TrimSpace(e)
		switch {
		case e == "":
		case e == "<local>":
			if !strings.Contains(h, ".") || h == "127.0.0.1" || h == "::1" || h == "localhost" {
				return true
			}
		case match(e, h):
			return true
		}
	}
	return false
}

// match is a glob with "*" only.
func match(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for i, p := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(s, p)
		}
		j := strings.Index(s, p)
		if j < 0 {
			return false
		}
		s = s[j+len(p):]
	}
	return true
}

// Transport is http.DefaultTransport's settings with this package's proxy.
func Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = HTTP
	return t
}
